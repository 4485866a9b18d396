"""Publishing built images: per-platform manifests by digest, then the index, then tags.

The order is what makes a push safe to interrupt: a tag is written only after the
index and every manifest and blob it refers to are in the registry. The same
index assembly serves a multi-platform build on one machine and `syntra merge`
of digests pushed by separate CI runners, so both give the same index digest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from syntra import refs
from syntra.errors import SyntraError
from syntra.lockfile import Locked
from syntra.oci import (
    INDEX,
    Blob,
    Document,
    platform_of,
    push,
)
from syntra.oci.digest import Digest
from syntra.oci.layout import Layout, LayoutError
from syntra.oci.locate import Registries, Where, digest_in
from syntra.plan import Destination, ImagePlan, Plan
from syntra.records import ImageRecord, PlatformImage, TestResult, shared_fields


class Pinned(NamedTuple):
    """A base image pinned to the digest its tag points at, and whether its registry
    speaks plain HTTP."""

    reference: str
    insecure: bool


def resolve_base(registries: Registries, reference: str) -> Pinned:
    """`reference` pinned to the digest it points at now (`Context.pin` keeps it for
    the run)."""
    where, version = registries.for_ref(reference)
    registry = where.registry
    digest = digest_in(where, version)
    if digest is None:
        raise SyntraError(f"base image {reference} is not in its registry")
    return Pinned(Locked(reference, digest, {}).pinned, registry.insecure)


def locked_base(registries: Registries, locked: Locked) -> Pinned:
    """A base pinned by `syntra.lock`: its registry is not asked."""
    where, _ = registries.for_ref(locked.reference)
    return Pinned(locked.pinned, where.registry.insecure)


def note_base_blobs(registries: Registries, pinned: str, destination: Where) -> None:
    """When the base image lives on the destination's registry, tell its client which
    blobs the base holds, so the image mounts them instead of uploading them again. Only
    an optimisation: a base that cannot be read now is simply not noted."""
    where, digest = registries.for_ref(pinned)
    if where.registry is not destination.registry:
        return
    try:
        document = where.registry.get_manifest(where.path, digest)
        manifests = (
            [where.registry.get_manifest(where.path, d["digest"]) for d in document.children()]
            if document.is_index
            else [document]
        )
        for manifest in manifests:
            where.registry.note(where.path, [d["digest"] for d in manifest.children()])
    except (SyntraError, ValueError):
        return


@dataclass(frozen=True)
class LayoutImage:
    """The single image of an OCI layout, ready to push: its blobs and its manifest."""

    platform: PlatformImage
    manifest: Document
    blobs: list[Blob]
    layout: Path


BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


@dataclass(frozen=True)
class BuildFacts:
    """What a build used and who ran it, recorded with its platform image."""

    builder: str
    command: str
    base: str | None = None
    base_digest: str | None = None
    """The base's manifest for this platform, as its registry holds it."""
    inputs: str | None = None
    """The `inputs-<sha256>` tag of what the build was given."""


def base_digest(registries: Registries, pinned: str, platform: str) -> str | None:
    """The digest of `pinned`'s manifest for `platform` in its registry (the index's
    child, or the manifest itself); None when it cannot be read."""
    where, digest = registries.for_ref(pinned)
    try:
        document = where.registry.get_manifest(where.path, digest)
        if not document.is_index:
            return document.digest
        found = [d["digest"] for d in document.children() if platform_of(d) == platform]
    except (SyntraError, ValueError):
        return None
    return str(found[0]) if found else None


def read_layout(layout: Path, platform: str, facts: BuildFacts | None = None) -> LayoutImage:
    """The image in `layout`; with `facts`, its base annotations are set to the base the
    build was given (a builder names its own intermediate image, which no registry has)."""
    try:
        read = Layout.folder(layout)
        descriptor = read.entries[0]
        found = read.document(Digest(descriptor["digest"]), descriptor["size"])
        data, manifest = found.data, found.json()
        blobs = [  # each blob verified against its digest and size before it is pushed
            Blob(d["digest"], d["size"], path=read.blob(Digest(d["digest"]), d["size"], layout))
            for d in found.children()
        ]
        media_type = str(manifest.get("mediaType") or descriptor["mediaType"])
    except (ValueError, KeyError, IndexError, LayoutError) as exc:
        raise LayoutError(f"{layout}: not an OCI image layout the builder wrote ({exc})") from None
    if facts is not None:
        data = _with_base(data, manifest, facts)
    document = Document(data, media_type)
    content = len(data) + sum(blob.size for blob in blobs)
    described_image = PlatformImage(
        platform=platform,
        digest=document.digest,
        size=len(data),
        media_type=media_type,
        content_bytes=content,
        builder=facts.builder if facts else None,
        command=facts.command if facts else None,
        base=facts.base if facts else None,
        inputs=facts.inputs if facts else None,
    )
    return LayoutImage(described_image, document, blobs, layout)


def _with_base(data: bytes, manifest: dict[str, Any], facts: BuildFacts) -> bytes:
    annotations = {
        k: v
        for k, v in (manifest.get("annotations") or {}).items()
        if k not in (BASE_NAME, BASE_DIGEST)
    }
    if facts.base and facts.base_digest:
        annotations |= {BASE_NAME: facts.base, BASE_DIGEST: facts.base_digest}
    if annotations == manifest.get("annotations", {}):
        return data
    if annotations:
        manifest["annotations"] = annotations
    else:
        manifest.pop("annotations", None)
    return json.dumps(manifest, separators=(",", ":")).encode()


class Sent(NamedTuple):
    """What `push_images` left: the index's digest (None without a destination), and the
    bytes it sent."""

    digest: str | None
    uploaded: int


def push_images(
    where: Where,
    images: list[LayoutImage],
    destination: Destination | None = None,
    cache_tags: dict[str, LayoutImage] | None = None,
) -> Sent:
    """Every platform's blobs together, their manifests, then (with a destination) the
    index over them and its tags, and `cache_tags` on platform images."""
    index = index_document([image.platform for image in images]) if destination else None
    tags = {tag: image.manifest for tag, image in (cache_tags or {}).items()}
    if index and destination:
        tags |= dict.fromkeys(destination.tags, index)
    uploaded = push(
        where.registry,
        where.path,
        blobs=[blob for image in images for blob in image.blobs],
        manifests=[image.manifest for image in images] + ([index] if index else []),
        tags=tags or None,
    )
    return Sent(index.digest if index else None, uploaded)


def index_children(where: Where, reference: str) -> tuple[list[PlatformImage], list[str]]:
    """The platforms of the index at `reference`, and the digests of children it misses."""
    index = where.registry.get_manifest(where.path, reference)
    children, missing = [], []
    try:
        for entry in index.children():
            name = platform_of(entry)
            manifest = where.registry.find_manifest(where.path, entry["digest"])
            if manifest is None:
                missing.append(entry["digest"])
                continue
            content = entry["size"] + sum(blob["size"] for blob in manifest.children())
            children.append(
                PlatformImage(
                    platform=name,
                    digest=entry["digest"],
                    size=entry["size"],
                    media_type=entry["mediaType"],
                    content_bytes=content,
                )
            )
    except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError included
        raise SyntraError(f"{where.identity}:{reference}: malformed index ({exc})") from None
    return children, missing


def index_document(children: list[PlatformImage]) -> Document:
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
    return Document(json.dumps(index, separators=(",", ":")).encode(), INDEX)


def publish_index(where: Where, destination: Destination, children: list[PlatformImage]) -> str:
    """Put the index by digest, then point every tag at it: tags go last."""
    index = index_document(children)
    push(where.registry, where.path, manifests=[index], tags=dict.fromkeys(destination.tags, index))
    return index.digest


@dataclass(frozen=True)
class Pushed:
    """What one push left in the registry: the index, its platform images, the bytes
    uploaded, and the image tests that passed before it."""

    digest: str
    children: list[PlatformImage]
    uploaded: int = 0
    tested: list[TestResult] | None = None


def image_record(plan: Plan, image: ImagePlan, pushed: Pushed) -> ImageRecord:
    """What later stages (SBOM, signing, release) need to know about a pushed image; the
    base is each child's, as its build recorded it."""
    children = pushed.children
    return ImageRecord(
        **shared_fields(plan, image.name, image.destination, pushed.digest, pushed.uploaded),
        media_type=INDEX,
        platforms=children,
        base=next((child.base for child in children if child.base), None),
        tests=pushed.tested or [],
    )
