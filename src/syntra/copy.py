"""`syntra copy SRC DST`: images and artifacts between registries and archives, digests
kept. Transports as skopeo spells them: a registry reference, `oci:DIR[:TAG]`,
`oci-archive:FILE[:TAG]` and `docker-archive:FILE` (what `docker save` writes and
`docker load` reads: one platform, so the digest there is the config's, the image ID).

Everything reachable is gathered first (index, platform manifests, their blobs and,
with `referrers`, the cosign `.sig`/`.att` tags and OCI referrers of every digest), then
written the one way: blobs, manifests by digest, tags last. Registry blobs stream
through a temporary folder, and a blob the destination already holds is not fetched.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syntra import progress, refs
from syntra.config.model import Config
from syntra.errors import SyntraError
from syntra.oci import INDEX, MANIFEST, Blob, Document, digest_of, is_digest, layout_blob, push
from syntra.oci import platform_of as described_platform
from syntra.plan import Destination
from syntra.publish import Where, registry_for_ref
from syntra.supply.attach import attachment_tag

REF_NAME = "org.opencontainers.image.ref.name"


@dataclass
class Content:
    """What a copy writes: documents by digest (children before parents), blobs by
    digest (a file each), and tags."""

    top: str
    documents: dict[str, Document] = field(default_factory=dict)
    blobs: dict[str, Path] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    source_tag: str | None = None
    """The tag the source was named by: the destination's tag when it names none."""


# Reading ------------------------------------------------------------------------------


class _Registry:
    def __init__(self, where: Where, folder: Path, present: Callable[[str], bool]) -> None:
        self.where, self.folder, self.present = where, folder, present

    def document(self, digest: str) -> Document:
        return self.where.registry.get_manifest(self.where.path, digest)

    def optional(self, tag: str) -> Document | None:
        return self.where.registry.find_manifest(self.where.path, tag)

    def blob(self, digest: str) -> Path | None:
        if self.present(digest):  # the destination has it: not fetched, not sent
            return None
        target = self.folder / digest.replace(":", "-")
        if not target.exists():
            with progress.activity(f"pull {self.where.identity}@{progress.short(digest)}"):
                self.where.registry.download_blob(self.where.path, digest, target)
        return target


class _Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        try:  # read as an index: every entry a descriptor with a digest
            self.entries = Document((root / "index.json").read_bytes(), INDEX).children()
        except (OSError, ValueError) as exc:
            raise SyntraError(f"{root}: not an OCI image layout ({exc})") from None

    def document(self, digest: str) -> Document:
        try:
            data = layout_blob(self.root, digest).read_bytes()
        except OSError:
            raise SyntraError(f"{self.root}: {digest} is not in the layout") from None
        if digest_of(data) != digest:
            raise SyntraError(f"{self.root}: {digest} does not hash to its name")
        try:
            media = json.loads(data).get("mediaType") or MANIFEST
        except (ValueError, AttributeError):
            raise SyntraError(f"{self.root}: {digest} is not a manifest") from None
        return Document(data, str(media))

    def optional(self, tag: str) -> Document | None:
        found = [m for m in self.entries if (m.get("annotations") or {}).get(REF_NAME) == tag]
        return self.document(found[0]["digest"]) if found else None

    def blob(self, digest: str) -> Path | None:
        return layout_blob(self.root, digest)

    def top(self, tag: str | None) -> str:
        entries = self.entries
        if tag is not None:
            found = self.optional(tag)
            if found is None:
                raise SyntraError(f"{self.root}: no image tagged {tag}")
            return found.digest
        if len(entries) != 1:
            raise SyntraError(f"{self.root}: {len(entries)} images; name one with :TAG")
        return str(entries[0]["digest"])


def _walk(source: Any, content: Content, digest: str) -> None:
    """`digest` and everything it points at, children first."""
    if digest in content.documents:
        return
    document = source.document(digest)
    is_index = "manifests" in document.json()
    for child in document.children():
        if is_index:
            _walk(source, content, child["digest"])
        elif (path := source.blob(child["digest"])) is not None:
            content.blobs[child["digest"]] = path
    content.documents[digest] = document


def _referrers(source: Any, content: Content) -> None:
    """cosign's `.sig`/`.att` tags and the referrers (fallback tag) of every digest."""
    for digest in list(content.documents):
        for suffix in ("sig", "att", ""):
            tag = attachment_tag(digest, suffix)
            found = source.optional(tag)
            if found is None:
                continue
            if "manifests" in found.json():  # the referrers fallback index
                for listed in found.children():
                    _walk(source, content, listed["digest"])
            _walk(source, content, found.digest)
            content.tags[tag] = found.digest


def gather(
    config: Config | None, spec: str, folder: Path, referrers: bool, all_tags: bool,
    present: Callable[[str], bool], insecure: bool,
) -> Content:  # fmt: skip
    """Everything to copy from `spec`, blobs materialised under `folder`."""
    kind, _, rest = spec.partition(":") if spec.split(":", 1)[0] in _LOCAL else ("", "", spec)
    if kind in ("oci", "oci-archive"):
        path, tag = _path_and_tag(rest)
        root = path
        if kind == "oci-archive":
            root = folder / "archive"
            _extract(path, root)
        source: Any = _Layout(root)
        top = source.top(tag)
        tags = {tag: top} if tag else {}
    elif kind == "docker-archive":
        source, top = _docker_archive(Path(rest), folder)
        tags = {}
    else:
        where, version = registry_for_ref(config, spec, insecure)
        source = _Registry(where, folder, present)
        top = version if is_digest(version) else where.registry.head_manifest(where.path, version)
        if top is None:
            raise SyntraError(f"{where.identity}:{version} is not in the registry")
        tags = {}
        if all_tags:
            for tag in where.registry.tags(where.path):
                if not tag.startswith("sha256-"):
                    found = where.registry.head_manifest(where.path, tag)
                    if found is not None:
                        tags[tag] = found
    content = Content(top)
    if kind not in ("oci", "oci-archive", "docker-archive") and not is_digest(version):
        content.source_tag = version
    for digest in {top, *tags.values()}:
        _walk(source, content, digest)
    content.tags.update(tags)
    if referrers:
        _referrers(source, content)
    return content


_LOCAL = ("oci", "oci-archive", "docker-archive")


def _path_and_tag(rest: str) -> tuple[Path, str | None]:
    path, _, tag = rest.partition(":")
    return Path(path), tag or None


def _extract(archive: Path, root: Path) -> None:
    try:
        with tarfile.open(archive) as opened:
            opened.extractall(root, filter="data")
    except (OSError, tarfile.TarError) as exc:
        raise SyntraError(f"{archive}: not a readable archive ({exc})") from None


def _docker_archive(archive: Path, folder: Path) -> tuple[Any, str]:
    """A `docker save` tar as a one-manifest layout (docker's schema 2 media types)."""
    root = folder / "docker"
    _extract(archive, root)
    try:
        (entry,) = json.loads((root / "manifest.json").read_text())
        config = (root / entry["Config"]).read_bytes()
        layer_paths = [root / name for name in entry["Layers"]]
    except (OSError, ValueError, KeyError) as exc:
        raise SyntraError(f"{archive}: not a docker-archive with one image ({exc})") from None
    layout = folder / "from-docker"
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    descriptors = []
    for path in layer_paths:  # layers stream: never whole in memory
        with path.open("rb") as handle:
            gzipped = handle.read(2) == b"\x1f\x8b"
            handle.seek(0)
            digest = "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()
        media = "application/vnd.docker.image.rootfs.diff.tar" + (".gzip" if gzipped else "")
        shutil.copyfile(path, blobs / digest.split(":")[1])
        descriptors.append({"mediaType": media, "digest": digest, "size": path.stat().st_size})
    (blobs / digest_of(config).split(":")[1]).write_bytes(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": descriptors,
        },
        separators=(",", ":"),
    ).encode()
    (blobs / digest_of(manifest).split(":")[1]).write_bytes(manifest)
    entry = {"mediaType": MANIFEST, "digest": digest_of(manifest), "size": len(manifest)}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return _Layout(layout), digest_of(manifest)


# Writing ------------------------------------------------------------------------------


def write(
    config: Config | None, spec: str, content: Content, insecure: bool, platform: str | None = None
) -> str:
    """Write `content` to `spec`; returns what the destination now holds (a reference)."""
    kind = spec.split(":", 1)[0] if spec.split(":", 1)[0] in _LOCAL else ""
    rest = spec.split(":", 1)[1] if kind else spec
    if kind == "oci":
        path, tag = _path_and_tag(rest)
        _write_layout(path, content, tag)
        return f"oci:{path}@{content.top}"
    if kind == "oci-archive":
        path, tag = _path_and_tag(rest)
        with tempfile.TemporaryDirectory(prefix="syntra-layout-") as scratch:
            _write_layout(Path(scratch) / "layout", content, tag)
            _tar(Path(scratch) / "layout", path)
        return f"oci-archive:{path}@{content.top}"
    if kind == "docker-archive":
        return _write_docker(Path(rest), content, platform)
    where, _ = registry_for_ref(config, spec, insecure)
    tags = {tag: content.documents[digest] for tag, digest in content.tags.items()}
    named = refs.parse_image_ref(spec).tag or (
        None if "@" in spec else content.source_tag  # untagged destination: the source's tag
    )
    if named:
        tags[named] = content.documents[content.top]
    blobs = [Blob(digest, path.stat().st_size, path=path) for digest, path in content.blobs.items()]
    push(where.registry, where.path, blobs=blobs, manifests=list(content.documents.values()),
         tags=tags)  # fmt: skip
    return f"{where.identity}@{content.top}"


def present_in(config: Config | None, spec: str, insecure: bool) -> Callable[[str], bool]:
    """Whether a registry destination already holds a blob (never, for files)."""
    if spec.split(":", 1)[0] in _LOCAL:
        return lambda digest: False
    where, _ = registry_for_ref(config, spec, insecure)
    return lambda digest: where.registry.has_blob(where.path, digest)


def _write_layout(root: Path, content: Content, tag: str | None) -> None:
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    for digest, path in content.blobs.items():
        target = blobs / digest.split(":")[1]
        if not target.exists():  # named by its digest: one there is this one
            shutil.copyfile(path, target)
    for digest, document in content.documents.items():
        (blobs / digest.split(":")[1]).write_bytes(document.data)
    named = dict(content.tags)
    if tag:
        named[tag] = content.top
    entries = [
        {
            "mediaType": content.documents[digest].media_type,
            "digest": digest,
            "size": len(content.documents[digest].data),
            "annotations": {REF_NAME: name},
        }
        for name, digest in sorted(named.items())
    ] or [
        {
            "mediaType": content.documents[content.top].media_type,
            "digest": content.top,
            "size": len(content.documents[content.top].data),
        }
    ]
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}
    (root / "index.json").write_text(json.dumps(index, separators=(",", ":")))


def _tar(folder: Path, archive: Path) -> None:
    """A tar of `folder`, the same bytes every time (sorted, no times, no owners)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f".{archive.name}.part")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as out:
        for path in sorted(folder.rglob("*")):
            info = tarfile.TarInfo(str(path.relative_to(folder)))
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                out.addfile(info)
            else:
                info.size, info.mode = path.stat().st_size, 0o644
                with path.open("rb") as handle:
                    out.addfile(info, handle)
    partial.replace(archive)


def host_platform() -> str:
    """`linux/<arch>` of this machine, as images name it: what docker-archive and `load`
    take from an index unless told otherwise."""
    import platform

    machine = platform.machine()
    return "linux/" + {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _write_docker(archive: Path, content: Content, platform: str | None) -> str:
    """`docker save`'s layout for one platform image (of an index: `platform`, by default
    this host's)."""
    top = content.documents[content.top]
    manifest = top
    if "manifests" in top.json():
        wanted = platform or host_platform()
        found = [c for c in top.children() if described_platform(c) == wanted]
        if not found:
            raise SyntraError(f"docker-archive holds one platform, and the image has no {wanted}")
        manifest = content.documents[found[0]["digest"]]
    body = manifest.json()
    config = content.blobs[body["config"]["digest"]]
    with tempfile.TemporaryDirectory(prefix="syntra-docker-") as scratch:
        folder = Path(scratch)
        (folder / "blobs" / "sha256").mkdir(parents=True)
        names = []
        for descriptor in [body["config"], *body["layers"]]:
            name = f"blobs/sha256/{descriptor['digest'].split(':')[1]}"
            shutil.copyfile(content.blobs[descriptor["digest"]], folder / name)
            names.append(name)
        entry = {"Config": names[0], "RepoTags": [], "Layers": names[1:]}
        (folder / "manifest.json").write_text(json.dumps([entry]))
        _tar(folder, archive)
    image_id = "sha256:" + hashlib.sha256(config.read_bytes()).hexdigest()
    return f"docker-archive:{archive} (image ID {image_id})"


@contextmanager
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="syntra-copy-") as folder:
        yield Path(folder)


def copy(
    config: Config | None, source: str, destination: str, *, referrers: bool = False,
    all_tags: bool = False, insecure: bool = False, platform: str | None = None,
) -> tuple[Content, str]:  # fmt: skip
    try:
        with scratch() as folder:
            present = present_in(config, destination, insecure)
            content = gather(config, source, folder, referrers, all_tags, present, insecure)
            written = write(config, destination, content, insecure, platform)
    except OSError as exc:  # a folder or archive that cannot be read or written
        raise SyntraError(f"copy: {exc.filename or ''}: {exc.strerror or exc}") from None
    return content, written


def mirror(config: Config, source: Where, digest: str, destinations: list[Destination]) -> None:
    """The digest pushed to `source` copied, digests kept, to each further registry of
    the artifact, with its tags (its signatures are made there by `supply`)."""
    from syntra.publish import locate

    for destination in destinations:
        there = locate(config, destination)
        with scratch() as folder:
            present = present_in(config, there.identity, there.registry.insecure)
            content = gather(
                config, f"{source.identity}@{digest}", folder, False, False, present,
                source.registry.insecure,
            )  # fmt: skip
            content.tags = dict.fromkeys(destination.tags, digest)
            write(config, there.identity, content, there.registry.insecure)
