"""Registry commands: what is in a registry, read without a pipeline — `inspect`,
`digest`, `tags`, `tree` (index → platforms → signatures, attestations and referrers),
`delete` and `pull` (wasm artifacts). All go through the one registry client; a
reference names its registry, and syntra.yaml (when there is one) brings credentials
and `insecure` for the registries it declares."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from syntra.errors import Refused, RegistryError, SyntraError, ToolError, one_line
from syntra.fsutil import confined, copy_atomic
from syntra.oci import Document, is_digest, platform_of
from syntra.oci.locate import Registries, Where, digest_in
from syntra.oci.media import (
    FILE_MEDIA_TYPES,
    MAX_DOCUMENT,
    TITLE,
    WASM_MAGIC,
    descriptor_digest,
)
from syntra.supply.attach import WEB_BUNDLE, Attachments, attachment_tag

if TYPE_CHECKING:
    from syntra.supply.verify import Trust

WASM = FILE_MEDIA_TYPES[".wasm"]


@dataclass(frozen=True)
class Target:
    where: Where
    digest: str
    manifest: Document

    @property
    def reference(self) -> str:
        return f"{self.where.identity}@{self.digest}"


def resolve(registries: Registries, reference: str, insecure: bool = False) -> Target:
    """The manifest `reference` names, by digest (verified against it)."""
    where, version = registries.for_ref(reference, insecure)
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
        and digest_in(target.where, tag) == target.digest
    ]
    if tagged and not force:
        raise SyntraError(
            f"{target.reference} is still tagged ({', '.join(sorted(tagged))}); "
            "delete the tags first, or --force"
        )
    registry.delete_manifest(path, target.digest)
    return f"deleted {target.reference}" + (f" and its tags {', '.join(tagged)}" if tagged else "")


@dataclass(frozen=True)
class PullRequest:
    """Where `pull` writes and what it checks first."""

    folder: Path | None = None
    """None: a new folder named after the artifact, in the current one."""
    force: bool = False
    """Replace files that are already there."""
    trust: Trust | None = None
    """What the signature must verify against; None: written unverified (and said so)."""


@dataclass(frozen=True)
class Pulled:
    reference: str
    folder: Path
    files: list[Path]
    verified: str | None
    """The signer the signature verified against; None when nothing was verified."""


def pull(target: Target, request: PullRequest) -> Pulled:
    """A wasm artifact's module or component: its signature verified (when there is
    trust), its title checked, its bytes checked against its digest and its media type,
    then written into the destination folder through a temporary file."""
    from syntra.plugins.remote import pull as pull_blob

    verified = _verified(target, request.trust)
    folder = _destination(target, request)
    layers = [c for c in target.manifest.children()[1:] if c["mediaType"] == WASM]
    name = f"{target.where.path.rsplit('/', 1)[-1]}.wasm"
    title = str((layers[0].get("annotations") or {}).get(TITLE) or name) if layers else name
    path = folder / file_name(title, WASM, deepest=1)
    _absent([path], request.force)
    with tempfile.TemporaryDirectory(prefix="syntra-pull-") as scratch:
        pulled = pull_blob(target.where, target.digest, None, Path(scratch))
        _is_wasm(pulled.wasm, target.reference, title)
        folder.mkdir(parents=True, exist_ok=True)
        copy_atomic(pulled.wasm, path)
    return Pulled(target.reference, folder, [path], verified)


def file_name(title: str, media_type: str, deepest: int) -> str:
    """The one check of a layer title that becomes a file name: a relative path at most
    `deepest` names deep that stays in its folder, no name hidden (`.git`, `.github`,
    `.syntra`…), and a suffix of FILE_MEDIA_TYPES whose media type is the layer's (a
    `.wasm` file is an `application/wasm` layer and the other way round)."""
    inside = confined(title, deepest)
    shown = one_line(title)
    if inside is None or any(part.startswith(".") for part in inside.split("/")):
        raise RegistryError(
            f"a layer titled '{shown}' is not a file name here (no folders above, no "
            "hidden names" + (", no path separators)" if deepest == 1 else ")")
        )
    expected = FILE_MEDIA_TYPES.get(PurePosixPath(inside).suffix)
    if expected is None:  # no conftest.py, Makefile or .pth dropped into a checkout
        raise RegistryError(
            f"a layer titled '{shown}' is not a file name here (its suffix must be one of "
            f"{', '.join(FILE_MEDIA_TYPES)})"
        )
    if media_type != expected:
        raise RegistryError(
            f"a layer titled '{shown}' is {one_line(media_type)}, not {expected} as its name says"
        )
    return inside


def _verified(target: Target, trust: Trust | None) -> str | None:
    """The signer `target`'s signature verifies against, checked before any file is
    fetched; Refused when it does not."""
    if trust is None:
        return None
    problems: list[str] = []
    signed, _ = trust.examine(Attachments(target.where.registry, target.where.path),
                              target.digest, problems)  # fmt: skip
    if not signed:
        said = f" ({'; '.join(problems)})" if problems else ""
        raise Refused(
            f"{target.reference}: refused: no valid signature by {trust.signer}{said}; "
            "nothing was written"
        )
    return trust.signer


def _destination(target: Target, request: PullRequest) -> Path:
    """The folder asked for, else a new one named after the artifact's repository (one
    already there only with `--force`: the registry chose its name, not the user)."""
    if request.folder is not None:
        return request.folder
    name = target.where.path.rsplit("/", 1)[-1]
    if confined(name, deepest=1) != name or name.startswith("."):
        raise RegistryError(f"{one_line(name)}: not a folder name; name the folder to write to")
    if (Path(name).exists() or Path(name).is_symlink()) and not request.force:
        raise ToolError(f"{name}: already there; --force writes into it, or name the folder")
    return Path(name)


def _absent(paths: list[Path], force: bool) -> None:
    """Refuse before anything is fetched when a file to write is already there."""
    there = [str(p) for p in paths if p.exists() or p.is_symlink()]
    if there and not force:
        shown = ", ".join(there[:3]) + (f" and {len(there) - 3} more" if len(there) > 3 else "")
        raise ToolError(f"{shown}: already there; --force replaces it")


def _no_links_between(folder: Path, names: list[str]) -> None:
    """Refuse before anything is fetched when a folder between `folder` and a file to
    write is a symbolic link: a planted `assets` → `../outside` would take the file out."""
    for name in names:
        parts = PurePosixPath(name).parts[:-1]
        for depth in range(1, len(parts) + 1):
            step = folder.joinpath(*parts[:depth])
            if step.is_symlink():
                raise ToolError(f"{step}: a symbolic link; pull writes only inside {folder}")


def _is_wasm(path: Path, reference: str, title: str) -> None:
    with path.open("rb") as handle:
        if handle.read(len(WASM_MAGIC)) != WASM_MAGIC:
            raise RegistryError(f"{reference}: the layer titled '{one_line(title)}' is not wasm")


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


def pull_bundle(target: Target, request: PullRequest) -> Pulled:
    """A web bundle's files, its signature verified (when there is trust), each file
    checked against its digest and media type, under the destination folder by their
    titles (each passing `file_name`); nothing is written when one does not."""
    manifest = target.manifest
    if manifest.is_index:
        raise SyntraError(f"{target.reference}: an index, not a web bundle's manifest")
    verified = _verified(target, request.trust)
    folder = _destination(target, request)
    layers = manifest.children()[1:]  # the config, then the files: at most MAX_CHILDREN
    names = [
        file_name(str((layer.get("annotations") or {}).get(TITLE, "")), layer["mediaType"], 8)
        for layer in layers
    ]
    if len(set(names)) != len(names):
        raise RegistryError(f"{target.reference}: two layers have the same title")
    _absent([folder / name for name in names], request.force)
    _no_links_between(folder, names)
    with tempfile.TemporaryDirectory(prefix="syntra-pull-") as scratch:
        fetched = []
        for layer, name in zip(layers, names, strict=True):
            path = Path(scratch) / name
            digest = descriptor_digest(layer)
            target.where.registry.download_blob(target.where.path, digest, path, layer["size"])
            if layer["mediaType"] == WASM:
                _is_wasm(path, target.reference, name)
            fetched.append((path, folder / name))
        for source, written in fetched:
            written.parent.mkdir(parents=True, exist_ok=True)
            copy_atomic(source, written)
    return Pulled(target.reference, folder, [written for _, written in fetched], verified)


def sbom(target: Target, trust: Trust, fmt: str, platform: str | None) -> dict[str, Any]:
    """The SBOM of `target` (a platform of it, for an index) out of an attestation whose
    signature verifies with `trust`; Refused when there is none."""
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
