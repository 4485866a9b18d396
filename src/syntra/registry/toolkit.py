"""Registry commands: what is in a registry, read without a pipeline — `inspect`,
`digest`, `tags`, `tree` (index → platforms → signatures, attestations and referrers),
`delete` and `pull` (wasm artifacts). All go through the one registry client; a
reference names its registry, and syntra.yaml (when there is one) brings credentials
and `insecure` for the registries it declares."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from syntra.config.model import Config
from syntra.errors import SyntraError
from syntra.fsutil import confined, copy_atomic
from syntra.oci import Document, is_digest, platform_of
from syntra.oci.locate import Where, digest_in, registry_for_ref
from syntra.oci.media import MAX_DOCUMENT, TITLE, descriptor_digest
from syntra.supply.attach import WEB_BUNDLE, Attachments, attachment_tag

if TYPE_CHECKING:
    from syntra.supply.verify import Trust


@dataclass(frozen=True)
class Target:
    where: Where
    digest: str
    manifest: Document

    @property
    def reference(self) -> str:
        return f"{self.where.identity}@{self.digest}"


def resolve(config: Config | None, reference: str, insecure: bool = False) -> Target:
    """The manifest `reference` names, by digest (verified against it)."""
    where, version = registry_for_ref(config, reference, insecure)
    digest = digest_in(where, version)
    if digest is None:
        raise SyntraError(f"{where.identity}:{version} is not in the registry")
    return Target(where, digest, where.registry.get_manifest(where.path, digest))


def inspect(target: Target, platform: str | None = None) -> dict[str, Any]:
    """Index or manifest, platforms, sizes, created, labels and annotations."""
    body = target.manifest.json()
    found: dict[str, Any] = {
        "reference": target.reference,
        "digest": target.digest,
        "mediaType": target.manifest.media_type,
        "annotations": body.get("annotations", {}),
    }
    if target.manifest.is_index:
        children = [c for c in target.manifest.children() if platform in (None, platform_of(c))]
        if platform and not children:
            shown = ", ".join(platform_of(c) for c in target.manifest.children())
            raise SyntraError(f"{target.reference} has no {platform} (it has {shown})")
        read: dict[str, dict[str, Any]] = {}  # each distinct child fetched once
        for child in children:
            if child["digest"] not in read:
                read[child["digest"]] = _image(target.where, child["digest"])
        found["platforms"] = [
            {"platform": platform_of(child), **read[child["digest"]]} for child in children
        ]
    else:
        found |= _image(target.where, target.digest)
    return found


def _image(where: Where, digest: str) -> dict[str, Any]:
    manifest = where.registry.get_manifest(where.path, digest)
    body = manifest.json()
    listed = manifest.children()  # checked: digests and sizes
    config_descriptor, layers = ({}, []) if manifest.is_index else (listed[0], listed[1:])
    described: dict[str, Any] = {
        "digest": digest,
        "size": len(manifest.data) + sum(d["size"] for d in listed),
        "layers": len(layers),
        "artifactType": body.get("artifactType") or config_descriptor.get("mediaType"),
        "annotations": body.get("annotations", {}),
    }
    if str(config_descriptor.get("mediaType", "")).endswith("image.config.v1+json"):
        blob = where.registry.get_blob(
            where.path, config_descriptor["digest"], config_descriptor["size"], MAX_DOCUMENT
        )
        config = Document(blob, str(config_descriptor["mediaType"])).json()
        described["created"] = config.get("created")
        settings = config.get("config")
        described["labels"] = (settings.get("Labels") if isinstance(settings, dict) else None) or {}
    return described


def tree(target: Target) -> dict[str, Any]:
    """What `cosign tree` and `oras discover` show: each digest with its signatures,
    attestations (predicate types) and referrers, in both layouts (tags and the
    Referrers API, or its fallback tag)."""
    attachments = Attachments(target.where.registry, target.where.path)
    node = {
        "reference": target.reference,
        "digest": target.digest,
        **_attached(attachments, target.digest),
    }
    if target.manifest.is_index:
        node["platforms"] = [
            {
                "platform": platform_of(child),
                "digest": child["digest"],
                **_attached(attachments, child["digest"]),
            }
            for child in target.manifest.children()
        ]
    return node


def _attached(attachments: Attachments, digest: str) -> dict[str, Any]:
    signatures = [d["digest"] for d, _ in attachments.layers(digest, "sig")]
    attestations = [
        str((d.get("annotations") or {}).get("predicateType", ""))
        for d, _ in attachments.layers(digest, "att")
    ]
    referrers = [
        {
            "digest": listed["digest"],
            "artifactType": listed.get("artifactType", ""),
            "predicateType": (listed.get("annotations") or {}).get(
                "dev.sigstore.bundle.predicateType",
                (listed.get("annotations") or {}).get("predicateType"),
            ),
        }
        for listed in attachments.referrers(digest)
    ]
    return {
        "signatures": {"tag": attachment_tag(digest, "sig"), "layers": signatures},
        "attestations": {"tag": attachment_tag(digest, "att"), "predicateTypes": attestations},
        "referrers": referrers,
    }


def delete(target: Target, version: str, force: bool) -> str:
    """Delete the tag `version`, or the manifest when `version` is a digest; a manifest
    that tags still point at is refused unless `force`."""
    registry, path = target.where.registry, target.where.path
    if not is_digest(version):
        registry.delete_manifest(path, version)
        return f"deleted tag {target.where.identity}:{version}"
    tagged = [
        tag
        for tag in registry.tags(path)
        if not tag.startswith(attachment_tag(target.digest))
        and registry.head_manifest(path, tag) == target.digest
    ]
    if tagged and not force:
        raise SyntraError(
            f"{target.reference} is still tagged ({', '.join(sorted(tagged))}); "
            "delete the tags first, or --force"
        )
    registry.delete_manifest(path, target.digest)
    return f"deleted {target.reference}" + (f" and its tags {', '.join(tagged)}" if tagged else "")


def pull(config: Config | None, reference: str, folder: Path, insecure: bool) -> Path:
    """A wasm artifact's module or component, checked against its digest, written to
    `folder/<title>` through a temporary file."""
    from syntra.plugins.remote import pull as pull_blob

    where, version = registry_for_ref(config, reference, insecure)
    with tempfile.TemporaryDirectory(prefix="syntra-pull-") as scratch:
        pulled = pull_blob(where, version, None, Path(scratch))
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / _file_name(pulled.title, f"{where.path.rsplit('/', 1)[-1]}.wasm")
        copy_atomic(pulled.wasm, target)
    return target


def _file_name(title: str, otherwise: str) -> str:
    """The artifact's title as a file name in the target folder (its last part; `..`,
    hidden names and control characters are not file names here)."""
    name = confined(title.rsplit("/", 1)[-1], deepest=1)
    return name if name and not name.startswith(".") else otherwise


def web_bundle(target: Target) -> Target:
    """`target` when it is a web bundle, else the one web bundle attached to it."""
    if target.manifest.json().get("artifactType") == WEB_BUNDLE:
        return target
    attachments = Attachments(target.where.registry, target.where.path)
    found = [
        str(r["digest"])
        for r in attachments.referrers(target.digest)
        if r.get("artifactType") == WEB_BUNDLE
    ]
    if len(found) != 1:
        said = f"has {len(found)}: name one by digest ({', '.join(found)})" if found else "has none"
        raise SyntraError(f"{target.reference}: no single web bundle attached ({said})")
    registry = target.where.registry
    return Target(target.where, found[0], registry.get_manifest(target.where.path, found[0]))


def pull_bundle(target: Target, folder: Path) -> list[Path]:
    """A web bundle's files, each checked against its digest, under `folder` by their
    titles (relative paths that stay inside it; anything else is refused)."""
    written = []
    manifest = target.manifest
    if manifest.is_index:
        raise SyntraError(f"{target.reference}: an index, not a web bundle's manifest")
    for layer in manifest.children()[1:]:  # the config, then the files: at most MAX_CHILDREN
        title = str((layer.get("annotations") or {}).get(TITLE, ""))
        inside = confined(title, deepest=8)
        if inside is None:
            raise SyntraError(f"{target.reference}: a layer titled {title!r} would leave {folder}")
        path = folder / inside
        digest = descriptor_digest(layer)
        target.where.registry.download_blob(target.where.path, digest, path, layer["size"])
        written.append(path)
    return written


def sbom(target: Target, trust: Trust, fmt: str, platform: str | None) -> dict[str, Any]:
    """The SBOM of `target` (a platform of it, for an index) out of an attestation whose
    signature verifies with `trust`; Refused when there is none."""
    from syntra.errors import Refused
    from syntra.supply.sbom import FORMATS

    digest = target.digest
    if target.manifest.is_index:
        children = target.manifest.children()
        chosen = [c for c in children if platform in (None, platform_of(c))]
        if len(chosen) != 1:
            shown = ", ".join(platform_of(c) for c in children)
            raise SyntraError(f"{target.reference}: name one platform with --platform ({shown})")
        digest = chosen[0]["digest"]
    attachments = Attachments(target.where.registry, target.where.path)
    for statement in trust.statements(attachments, digest):
        if statement.get("predicateType") == FORMATS[fmt]:
            predicate: dict[str, Any] = statement["predicate"]
            return predicate
    raise Refused(
        f"{target.where.identity}@{digest}: no {fmt} SBOM attestation that verifies with "
        f"{trust.signer}"
    )
