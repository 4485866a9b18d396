"""`syntra copy SRC DST`: images and artifacts between registries and archives, digests
kept. Transports as skopeo spells them: a registry reference, `oci:DIR[:TAG]`,
`oci-archive:FILE[:TAG]` and `docker-archive:FILE` (what `docker save` writes and
`docker load` reads: one platform, so the digest there is the config's, the image ID).

Everything reachable is gathered first (index, platform manifests, their blobs and,
with `referrers`, the cosign `.sig`/`.att` tags and OCI referrers of every digest), then
written the one way: blobs, manifests by digest, tags last. Registry blobs stream
through a temporary folder, and a blob the destination already holds is not fetched.
Layouts and archives are read through `syntra.oci.layout` (archives in place, never
extracted; every blob checked against its digest and size as it is read).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from syntra import progress, refs
from syntra.errors import SyntraError, ToolError, one_line
from syntra.fsutil import copy_atomic, write_atomic
from syntra.oci import DOCKER_MANIFEST, Blob, Document, digest_of, is_digest, push
from syntra.oci import digest as digests
from syntra.oci import platform_of as described_platform
from syntra.oci.digest import Digest
from syntra.oci.layout import (
    Archive,
    Folder,
    Layout,
    LayoutError,
    blob_name,
    member_name,
    read_small,
    write_layout,
)
from syntra.oci.locate import Registries, Where, digest_in
from syntra.oci.media import MAX_DEPTH, MAX_LAYER
from syntra.plan import Destination
from syntra.supply.attach import attachment_tag


@dataclass
class Content:
    """What a copy writes: documents by digest (children before parents), blobs by
    digest (a file each), and tags."""

    top: Digest
    documents: dict[Digest, Document] = field(default_factory=dict)
    blobs: dict[Digest, Path] = field(default_factory=dict)
    tags: dict[str, Digest] = field(default_factory=dict)
    unchecked: set[Digest] = field(default_factory=set)
    """Blobs of a layout folder to be hashed in the read that sends them to a registry."""
    source_tag: str | None = None
    """The tag the source was named by: the destination's tag when it names none."""


# Reading ------------------------------------------------------------------------------


class _Source(Protocol):
    def document(self, digest: Digest) -> Document: ...

    def optional(self, tag: str) -> Document | None: ...

    def blob(self, digest: Digest, size: int) -> Path | None:
        """The blob as a verified file; None when the destination already has it."""


class _Registry:
    def __init__(self, where: Where, folder: Path, present: Callable[[str], bool]) -> None:
        self.where, self.folder, self.present = where, folder, present

    def document(self, digest: Digest) -> Document:
        return self.where.registry.get_manifest(self.where.path, digest)

    def optional(self, tag: str) -> Document | None:
        return self.where.registry.find_manifest(self.where.path, tag)

    def blob(self, digest: Digest, size: int) -> Path | None:
        if self.present(digest):  # the destination has it: not fetched, not sent
            return None
        target = self.folder / digests.file_name(digest)
        if not target.exists():
            with progress.activity(f"pull {self.where.identity}@{progress.short(digest)}"):
                self.where.registry.download_blob(self.where.path, digest, target, size, MAX_LAYER)
        return target


class _Layout:
    """An OCI layout (a folder, or an archive read in place); blobs verified as read,
    an archive's copied out into `folder`."""

    def __init__(self, layout: Layout, folder: Path, sends: bool) -> None:
        self.layout, self.folder, self.sends = layout, folder, sends
        self.unchecked: set[Digest] = set()

    def document(self, digest: Digest) -> Document:
        return self.layout.document(digest)

    def optional(self, tag: str) -> Document | None:
        found = self.layout.tagged(tag)
        return self.layout.document(Digest(found["digest"]), found["size"]) if found else None

    def blob(self, digest: Digest, size: int) -> Path | None:
        if self.sends and self.layout.files.on_disk(blob_name(digest)) is not None:
            self.unchecked.add(digest)  # hashed as it is uploaded: one read, not two
            return self.layout.blob(digest, size, self.folder, check=False)
        return self.layout.blob(digest, size, self.folder)


@dataclass
class _Prepared:
    """Documents and blobs already read and verified (a docker-archive's)."""

    documents: dict[Digest, Document]
    blobs: dict[Digest, Path]

    def document(self, digest: Digest) -> Document:
        return self.documents[digest]

    def optional(self, tag: str) -> Document | None:
        return None

    def blob(self, digest: Digest, size: int) -> Path | None:
        return self.blobs[digest]


def _walk(source: _Source, content: Content, digest: Digest, depth: int = 0) -> None:
    """`digest` and everything it points at, children first; each distinct document and
    blob read once, indexes nested at most MAX_DEPTH deep."""
    if digest in content.documents:
        return
    document = source.document(digest)
    is_index = document.is_index
    if is_index and depth >= MAX_DEPTH:
        raise document.malformed(f"nests indexes more than {MAX_DEPTH} deep")
    for child in document.children():
        child_digest = Digest(child["digest"])  # parsed by children()
        if is_index:
            _walk(source, content, child_digest, depth + 1)
        elif child_digest not in content.blobs and (
            path := source.blob(child_digest, child["size"])
        ):
            content.blobs[child_digest] = path
    content.documents[digest] = document


def _referrers(source: _Source, content: Content) -> None:
    """cosign's `.sig`/`.att` tags and the referrers (fallback tag) of every digest."""
    for digest in list(content.documents):
        for suffix in ("sig", "att", ""):
            tag = attachment_tag(digest, suffix)
            found = source.optional(tag)
            if found is None:
                continue
            if found.is_index:  # the referrers fallback index
                for listed in found.children():
                    _walk(source, content, Digest(listed["digest"]))
            _walk(source, content, found.digest)
            content.tags[tag] = found.digest


@dataclass(frozen=True)
class CopyOptions:
    """How `syntra copy` copies: with the referrers (signatures, attestations), every
    tag of the repository, over plain HTTP, and which platform an image store gets."""

    referrers: bool = False
    all_tags: bool = False
    insecure: bool = False
    platform: str | None = None


def gather(
    registries: Registries, spec: str, folder: Path, present: Callable[[str], bool],
    options: CopyOptions, sends: bool = False,
) -> Content:  # fmt: skip
    """Everything to copy from `spec`, blobs verified and, when not in place, copied
    under `folder`; when it `sends` to a registry, a layout folder's blobs are verified
    by the upload that reads them (`Content.unchecked`)."""
    kind, _, rest = spec.partition(":") if spec.split(":", 1)[0] in _LOCAL else ("", "", spec)
    with ExitStack() as opened:
        source: _Source
        source_tag = None
        if kind in ("oci", "oci-archive"):
            path, tag = _path_and_tag(rest)
            files: Folder | Archive = Folder(path)
            if kind == "oci-archive":
                files = Archive(path)
                opened.callback(files.close)
            layout = Layout(files)
            source = _Layout(layout, folder, sends)
            top = Digest(layout.top(tag)["digest"])
            tags = {tag: top} if tag else {}
        elif kind == "docker-archive":
            source, top = _docker_archive(Path(rest), folder)
            tags = {}
        else:
            where, version = registries.for_ref(spec, options.insecure)
            source = _Registry(where, folder, present)
            found = digest_in(where, version)
            if found is None:
                raise SyntraError(f"{where.identity}:{version} is not in the registry")
            top = digests.parse(found, where.identity)
            tags = {}
            source_tag = None if is_digest(version) else version
            if options.all_tags:
                for tag in where.registry.tags(where.path):
                    if not tag.startswith("sha256-"):
                        head = digest_in(where, tag)
                        if head is not None:
                            tags[tag] = digests.parse(head, where.identity)
        content = Content(top, source_tag=source_tag)
        for digest in {top, *tags.values()}:
            _walk(source, content, digest)
        content.tags.update(tags)
        if options.referrers:
            _referrers(source, content)
        if isinstance(source, _Layout):
            content.unchecked = source.unchecked
    return content


_LOCAL = ("oci", "oci-archive", "docker-archive")


def _path_and_tag(rest: str) -> tuple[Path, str | None]:
    path, _, tag = rest.partition(":")
    return Path(path), tag or None


def _docker_archive(path: Path, folder: Path) -> tuple[_Source, Digest]:
    """A `docker save` tar as one manifest (docker's schema 2 media types). Its
    manifest.json must name members of the archive; they are read from it, never from
    anywhere else."""
    archive = Archive(path)
    try:
        try:
            (entry,) = json.loads(read_small(archive, "manifest.json"))
            named = [entry["Config"], *entry["Layers"]]
            if not all(isinstance(name, str) for name in named):
                raise TypeError("Config and Layers are not names")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise LayoutError(f"{path}: not a docker-archive with one image ({exc})") from None
        members = [member_name(name, str(path)) for name in named]
        for name in members:
            if name not in archive.members:
                raise LayoutError(
                    f"{path}: manifest.json names '{one_line(name)}', not a file in the archive"
                )
        config = read_small(archive, members[0])
        blobs: dict[Digest, Path] = {digest_of(config): _saved(folder, config)}
        descriptors = []
        for name in members[1:]:  # layers stream: never whole in memory
            digest, size, gzipped = _copy_out(archive, name, folder)
            media = "application/vnd.docker.image.rootfs.diff.tar" + (".gzip" if gzipped else "")
            descriptors.append({"mediaType": media, "digest": digest, "size": size})
            blobs[digest] = folder / digests.file_name(digest)
    finally:
        archive.close()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": descriptors,
        },
        separators=(",", ":"),
    ).encode()
    document = Document(manifest, DOCKER_MANIFEST, local=True)
    return _Prepared({document.digest: document}, blobs), document.digest


def _saved(folder: Path, data: bytes) -> Path:
    target = folder / digests.file_name(digest_of(data))
    write_atomic(target, data)
    return target


def _copy_out(archive: Archive, name: str, folder: Path) -> tuple[Digest, int, bool]:
    """A member copied into `folder` under its digest: (digest, size, gzipped); never more
    than the size its tar header declares."""
    partial = folder / ".layer.part"
    hasher, size, head = hashlib.sha256(), 0, b""
    declared = archive.members[name].size
    try:
        with archive.open(name) as source, partial.open("wb") as sink:
            while chunk := source.read(1 << 20):
                size += len(chunk)
                if size > declared:
                    raise LayoutError(f"{archive.where}: {name} is larger than {declared} bytes")
                head = head or chunk[:2]
                hasher.update(chunk)
                sink.write(chunk)
        digest = Digest(f"sha256:{hasher.hexdigest()}")
        partial.replace(folder / digests.file_name(digest))
    finally:
        partial.unlink(missing_ok=True)
    return digest, size, head == b"\x1f\x8b"


# Writing ------------------------------------------------------------------------------


def write_content(
    registries: Registries, spec: str, content: Content, insecure: bool, platform: str | None = None
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
    where, _ = registries.for_ref(spec, insecure)
    tags = {tag: content.documents[digest] for tag, digest in content.tags.items()}
    named = refs.parse_image_ref(spec).tag or (
        None if "@" in spec else content.source_tag  # untagged destination: the source's tag
    )
    if named:
        tags[named] = content.documents[content.top]
    blobs = [
        Blob(digest, path.stat().st_size, path=path, verify=digest in content.unchecked)
        for digest, path in content.blobs.items()
    ]
    push(where.registry, where.path, blobs=blobs, manifests=list(content.documents.values()),
         tags=tags)  # fmt: skip
    return f"{where.identity}@{content.top}"


def present_in(registries: Registries, spec: str, insecure: bool) -> Callable[[str], bool]:
    """Whether a registry destination already holds a blob (never, for files)."""
    if spec.split(":", 1)[0] in _LOCAL:
        return lambda digest: False
    where, _ = registries.for_ref(spec, insecure)
    return lambda digest: where.registry.has_blob(where.path, digest)


def _write_layout(root: Path, content: Content, tag: str | None) -> None:
    named = dict(content.tags)
    if tag:
        named[tag] = content.top
    write_layout(root, content.documents, content.blobs, named, content.top)


def _tar(folder: Path, archive: Path) -> None:
    """A tar of `folder`, the same bytes every time (sorted, no times, no owners)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(f".{archive.name}.part")
    try:
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
    finally:
        partial.unlink(missing_ok=True)


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
    if top.is_index:
        wanted = platform or host_platform()
        found = [c for c in top.children() if described_platform(c) == wanted]
        if not found:
            raise SyntraError(f"docker-archive holds one platform, and the image has no {wanted}")
        manifest = content.documents[found[0]["digest"]]
    if manifest.is_index:  # an index of indexes: no one image to save
        raise SyntraError(f"docker-archive holds one image, and {manifest.digest} is an index")
    listed = manifest.children()  # the config, then the layers
    config = content.blobs[Digest(listed[0]["digest"])]
    with tempfile.TemporaryDirectory(prefix="syntra-docker-") as scratch:
        folder = Path(scratch)
        names = []
        for descriptor in listed:
            name = blob_name(Digest(descriptor["digest"]))
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            copy_atomic(content.blobs[Digest(descriptor["digest"])], folder / name)
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
    registries: Registries, source: str, destination: str, options: CopyOptions
) -> tuple[Content, str]:
    try:
        with scratch() as folder:
            present = present_in(registries, destination, options.insecure)
            sends = destination.split(":", 1)[0] not in _LOCAL
            content = gather(registries, source, folder, present, options, sends)
            written = write_content(
                registries, destination, content, options.insecure, options.platform
            )
    except OSError as exc:  # a folder or archive that cannot be read or written
        raise ToolError(f"copy: {exc.filename or ''}: {exc.strerror or exc}") from None
    return content, written


def mirror(
    registries: Registries, source: Where, digest: str, destinations: list[Destination]
) -> None:
    """The digest pushed to `source` copied, digests kept, to each further registry of
    the artifact, with its tags (its signatures are made there by `supply`)."""
    for destination in destinations:
        there = registries.locate(destination)
        with scratch() as folder:
            present = present_in(registries, there.identity, there.registry.insecure)
            plain = CopyOptions(insecure=source.registry.insecure)
            content = gather(registries, f"{source.identity}@{digest}", folder, present, plain)
            content.tags = dict.fromkeys(destination.tags, content.top)
            write_content(registries, there.identity, content, there.registry.insecure)
