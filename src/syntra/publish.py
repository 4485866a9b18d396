"""Publishing built images: per-platform manifests by digest, then the index, then tags.

The order is what makes a push safe to interrupt: a tag is written only after the
index and every manifest and blob it refers to are in the registry. The same
index assembly serves a multi-platform build on one machine and `syntra merge`
of digests pushed by separate CI runners, so both give the same index digest.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from syntra import refs
from syntra.config.model import Config
from syntra.errors import SyntraError
from syntra.fsutil import write_atomic
from syntra.layout import record_path
from syntra.plan import Destination, ImagePlan, Plan
from syntra.registry import INDEX, Registry, digest_of

DOCKER_HUB_API = "registry-1.docker.io"


@dataclass(frozen=True)
class PlatformImage:
    platform: str
    digest: str
    size: int
    media_type: str
    content_bytes: int
    """Manifest, config and (compressed) layers together: what a pull transfers."""


@dataclass(frozen=True)
class Where:
    """A repository: the client for its registry's API, its path there (namespace
    included), and the name people and signatures use for it (`docker.io/org/app`,
    whose API lives at registry-1.docker.io)."""

    registry: Registry
    path: str
    identity: str


def api_host(domain: str) -> str:
    return DOCKER_HUB_API if domain == "docker.io" else domain


def locate(config: Config, destination: Destination) -> Where:
    """The registry client and repository path for an artifact's destination."""
    if destination.registry is None:
        raise SyntraError("no registry to push to: add one under registries")
    host, _, namespace = destination.registry.partition("/")
    path = f"{namespace}/{destination.repository}" if namespace else destination.repository
    entry = next(r for r in config.registries.values() if r.url == destination.registry)
    registry = Registry(api_host(host), destination.insecure, entry.credentials)
    return Where(registry, path, f"{host}/{path}")


def registry_for_ref(config: Config, reference: str) -> tuple[Where, str]:
    """Where any image reference lives, and its tag or digest."""
    try:
        parsed = refs.parse_image_ref(reference)
    except ValueError as exc:
        raise SyntraError(str(exc)) from None
    domain = parsed.domain or "docker.io"
    path = parsed.path if "/" in parsed.path or parsed.domain else f"library/{parsed.path}"
    known = [r for r in config.registries.values() if r.url.split("/", 1)[0] == domain]
    insecure = any(r.insecure for r in known)
    credentials = known[0].credentials if known else None
    where = Where(Registry(api_host(domain), insecure, credentials), path, f"{domain}/{path}")
    return where, parsed.digest or parsed.tag or "latest"


_pinned: dict[str, tuple[str, bool]] = {}


def pin(config: Config, reference: str) -> tuple[str, bool]:
    """`reference` pinned to the digest it points at now, and whether it is plain HTTP.

    Resolved once per process, so the digest that decided a rebuild is the one built.
    """
    if reference not in _pinned:
        _pinned[reference] = _resolve(config, reference)
    return _pinned[reference]


def _resolve(config: Config, reference: str) -> tuple[str, bool]:
    where, version = registry_for_ref(config, reference)
    registry, path = where.registry, where.path
    digest = version if version.startswith("sha256:") else registry.head_manifest(path, version)
    if digest is None:
        raise SyntraError(f"base image {reference} is not in its registry")
    parsed = refs.parse_image_ref(reference)
    name = f"{parsed.domain}/{parsed.path}" if parsed.domain else parsed.path
    return f"{name}@{digest}", registry.insecure


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def push_layout(where: Where, layout: Path, platform: str) -> PlatformImage:
    """Push the single image in an OCI layout by digest: blobs, then its manifest."""
    descriptor = json.loads((layout / "index.json").read_text())["manifests"][0]
    data = _blob(layout, descriptor["digest"]).read_bytes()
    manifest = json.loads(data)
    for blob in [manifest["config"], *manifest["layers"]]:
        where.registry.push_blob(
            where.path, _blob(layout, blob["digest"]), blob["digest"], blob["size"]
        )
    media_type = manifest.get("mediaType", descriptor["mediaType"])
    digest = where.registry.put_manifest(where.path, digest_of(data), data, media_type)
    content = len(data) + sum(blob["size"] for blob in [manifest["config"], *manifest["layers"]])
    return PlatformImage(platform, digest, len(data), media_type, content)


def index_children(where: Where, reference: str) -> tuple[list[PlatformImage], list[str]]:
    """The platforms of the index at `reference`, and the digests of children it misses."""
    index = where.registry.get_manifest(where.path, reference).json()
    children, missing = [], []
    for entry in index.get("manifests", []):
        described = entry.get("platform", {})
        name = "/".join(
            part
            for part in (
                described.get("os"),
                described.get("architecture"),
                described.get("variant"),
            )
            if part
        )
        if where.registry.head_manifest(where.path, entry["digest"]) is None:
            missing.append(entry["digest"])
            continue
        manifest = where.registry.get_manifest(where.path, entry["digest"]).json()
        blobs = [manifest["config"], *manifest["layers"]]
        content = entry["size"] + sum(blob["size"] for blob in blobs)
        children.append(
            PlatformImage(name, entry["digest"], entry["size"], entry["mediaType"], content)
        )
    return children, missing


def read_record(root: Path, name: str) -> dict[str, Any]:
    """The record of a pushed artifact, or a clear error when it is missing or damaged."""
    path = record_path(root, name)
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        raise SyntraError(f"{name}: nothing pushed yet ({path} is missing)") from None
    except (OSError, ValueError) as exc:
        raise SyntraError(f"{path}: unreadable record ({exc}); push {name} again") from None
    if not isinstance(record, dict) or "digest" not in record:
        raise SyntraError(f"{path}: not a Syntra record; push {name} again")
    return record


def index_bytes(children: list[PlatformImage]) -> bytes:
    """The OCI index over `children`, serialised the same way every time."""
    manifests = []
    for child in children:
        platform = refs.parse_platform(child.platform)
        described: dict[str, Any] = {"architecture": platform.arch, "os": platform.os}
        if platform.variant:
            described["variant"] = platform.variant
        manifests.append(
            {
                "mediaType": child.media_type,
                "digest": child.digest,
                "size": child.size,
                "platform": described,
            }
        )
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}
    return json.dumps(index, separators=(",", ":")).encode()


def publish_index(where: Where, destination: Destination, children: list[PlatformImage]) -> str:
    """Put the index by digest, then point every tag at it: tags go last."""
    data = index_bytes(children)
    digest = where.registry.put_manifest(where.path, digest_of(data), data, INDEX)
    for tag in destination.tags:
        where.registry.put_manifest(where.path, tag, data, INDEX)
    return digest


# Records ------------------------------------------------------------------


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())


def image_record(
    plan: Plan,
    image: ImagePlan,
    digest: str,
    children: list[PlatformImage],
    uploaded: int,
    base: str | None = None,
) -> dict[str, Any]:
    """What later stages (SBOM, signing, release) need to know about a pushed image."""
    return {
        "kind": "image",
        "name": image.name,
        "registry": image.destination.registry,
        "repository": image.destination.repository,
        "digest": digest,
        "media_type": INDEX,
        "platforms": [asdict(child) for child in children],
        "tags": image.destination.tags,
        "refs": image.destination.refs,
        "version": plan.version,
        "source_commit": plan.git.get("commit"),
        "source_date_epoch": plan.source_date_epoch,
        "base": base,
        "uploaded_bytes": uploaded,
    }
