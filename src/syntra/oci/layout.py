"""The one reader of OCI image layouts, from a folder or from a tar archive.

A layout is untrusted input (a colleague's archive, a builder's output), so:

- a folder is read with every path part opened without following symbolic links, and
  only regular files are read: a blob that is a link, a FIFO or a device is refused;
- an archive is read member by member by name from the tar stream, never extracted: on
  opening, every member must be a regular file (not sparse) or a folder with a relative
  name free of `..` (a link, a device, a sparse file, an absolute name refuse the whole
  archive);
- every digest it names is parsed (`syntra.oci.digest`) before it becomes a path;
- every document and blob is streamed through its digest's hash and checked against the
  digest and the declared size before anything is made of it; documents are bounded.

Whatever is wrong is one line, exit 3 (a local file).
"""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, Protocol

import syntra.oci.digest as digests
from syntra.errors import ToolError, one_line
from syntra.fsutil import confined, copy_atomic, write_atomic
from syntra.oci.digest import Digest
from syntra.oci.media import INDEX, MANIFEST, MAX_DOCUMENT, Document, layout_blob

REF_NAME = "org.opencontainers.image.ref.name"
MAX_MEMBERS = 1 << 16
"""The most members an archive may hold."""
CHUNK = 1 << 20


class LayoutError(ToolError):
    """A layout or archive that cannot be read as one, or content that does not verify
    (exit 3: a local file)."""


class Files(Protocol):
    """Regular files by their path in the layout (`index.json`, `blobs/sha256/<hex>`)."""

    where: str

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]: ...

    def on_disk(self, name: str) -> Path | None:
        """The file itself, when the layout is a folder (else None: copy it out)."""


class Folder:
    """A layout folder; each part of a path opened with O_NOFOLLOW."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.where = str(root)

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        *folders, last = name.split("/")
        opened: list[int] = []
        try:
            try:
                opened.append(os.open(self.root, os.O_RDONLY | os.O_DIRECTORY))
                for part in folders:
                    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
                    opened.append(os.open(part, flags, dir_fd=opened[-1]))
                flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK  # a FIFO must not block
                descriptor = os.open(last, flags, dir_fd=opened[-1])
            except OSError as exc:
                raise LayoutError(f"{self.where}: {name}: {_reason(exc)}") from None
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                os.close(descriptor)
                raise LayoutError(f"{self.where}: {name} is not a regular file")
            os.set_blocking(descriptor, True)
            with os.fdopen(descriptor, "rb") as handle:
                yield handle
        finally:
            for folder in opened:
                os.close(folder)

    def on_disk(self, name: str) -> Path | None:
        return self.root / name


def _reason(exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "a symbolic link or not a folder on the way (refused)"
    if exc.errno == errno.ENOENT:
        return "not in the layout"
    return exc.strerror or str(exc)


class Archive:
    """A tar archive's regular files by name, read from the stream, never extracted."""

    def __init__(self, path: Path) -> None:
        self.where = str(path)
        self.members: dict[str, tarfile.TarInfo] = {}
        try:
            self.tar = tarfile.open(path)  # noqa: SIM115 (closed by `close`)
        except (OSError, tarfile.TarError, EOFError, ValueError) as exc:
            raise LayoutError(f"{path}: not a readable archive ({one_line(str(exc))})") from None
        try:
            for number, member in enumerate(self.tar, 1):
                if number > MAX_MEMBERS:
                    raise LayoutError(f"{path}: more than {MAX_MEMBERS} members")
                name = member_name(member.name, self.where)
                if member.isdir():
                    continue
                if member.issparse():  # holes the reader fills: sizes that do not add up
                    raise LayoutError(f"{path}: member '{one_line(member.name)}' is sparse")
                if not member.isreg():
                    kind = "a link" if member.issym() or member.islnk() else "not a regular file"
                    raise LayoutError(f"{path}: member '{one_line(member.name)}' is {kind}")
                self.members[name] = member
        except (OSError, tarfile.TarError, EOFError, ValueError) as exc:
            self.tar.close()
            raise LayoutError(f"{path}: not a readable archive ({one_line(str(exc))})") from None
        except LayoutError:
            self.tar.close()
            raise

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        member = self.members.get(name)
        if member is None:
            raise LayoutError(f"{self.where}: {one_line(name)} is not in the archive")
        handle = self.tar.extractfile(member)
        assert handle is not None  # a regular member always has a body
        with handle:
            yield handle

    def on_disk(self, name: str) -> Path | None:
        return None

    def close(self) -> None:
        self.tar.close()


def member_name(name: str, where: str) -> str:
    """A member's name as a path inside the archive (`./a//b` → `a/b`); absolute names,
    `..` and empty names are refused."""
    inside = confined(name)
    if inside is None:
        raise LayoutError(f"{where}: member '{one_line(name)}' escapes the archive (refused)")
    return inside


def read_small(files: Files, name: str, limit: int = MAX_DOCUMENT) -> bytes:
    """A whole file of at most `limit` bytes."""
    with files.open(name) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise LayoutError(f"{files.where}: {name} is larger than {limit >> 20} MiB")
    return data


def blob_name(digest: Digest) -> str:
    return f"blobs/{digests.algorithm(digest)}/{digests.hexdigest(digest)}"


class Layout:
    """An OCI image layout: its index entries, and documents and blobs verified as read."""

    def __init__(self, files: Files) -> None:
        self.files = files
        self.where = files.where
        index = Document(read_small(files, "index.json"), INDEX, local=True)
        try:
            self.entries = index.children()
        except ValueError as exc:
            raise LayoutError(f"{self.where}: not an OCI image layout ({exc})") from None

    @classmethod
    def folder(cls, root: Path) -> Layout:
        return cls(Folder(root))

    def _check(
        self, digest: Digest, size: int | None, handle: IO[bytes], sink: IO[bytes] | None
    ) -> None:
        """Stream `handle` through the hash (into `sink`); refuse past `size` or a mismatch."""
        hasher, seen = digests.hasher(digest), 0
        bound = size if size is not None else MAX_DOCUMENT
        while chunk := handle.read(CHUNK):
            seen += len(chunk)
            if seen > bound:
                raise LayoutError(f"{self.where}: {digest} is larger than {bound} bytes")
            hasher.update(chunk)
            if sink is not None:
                sink.write(chunk)
        if size is not None and seen != size:
            raise LayoutError(f"{self.where}: {digest} is {seen} bytes, not {size}")
        if hasher.hexdigest() != digests.hexdigest(digest):
            raise LayoutError(f"{self.where}: {digest} does not hash to its name")

    def small(self, digest: Digest, size: int | None = None) -> bytes:
        """A blob of at most MAX_DOCUMENT bytes (a manifest, a config), verified."""
        data = read_small(self.files, blob_name(digest))
        self._check(digest, size, io.BytesIO(data), None)
        return data

    def document(self, digest: Digest, size: int | None = None) -> Document:
        """A manifest or index, verified; its media type from its body (else a manifest)."""
        data = self.small(digest, size)
        document = Document(data, MANIFEST, local=True)
        try:
            media = document.json().get("mediaType") or MANIFEST
        except ValueError:
            raise LayoutError(f"{self.where}: {digest} is not a manifest") from None
        return Document(data, str(media), local=True)

    def blob(self, digest: Digest, size: int, scratch: Path, check: bool = True) -> Path:
        """The blob as a verified file: the layout's own (a folder), else copied out of
        the archive into `scratch` through a temporary file. `check` False leaves a
        folder's blob to be hashed in the read that uses it (`Blob.verify`): only its
        kind and size are checked here."""
        name = blob_name(digest)
        in_place = self.files.on_disk(name)
        with self.files.open(name) as handle:
            if in_place is not None and not check:
                if os.fstat(handle.fileno()).st_size != size:
                    raise LayoutError(f"{self.where}: {digest} is not {size} bytes")
                return in_place
            if in_place is not None:
                self._check(digest, size, handle, None)
                return in_place
            target = scratch / digests.file_name(digest)
            partial = target.with_name(f".{target.name}.part")
            try:
                with partial.open("wb") as sink:
                    self._check(digest, size, handle, sink)
                partial.replace(target)
            finally:
                partial.unlink(missing_ok=True)
            return target

    def tagged(self, tag: str) -> dict[str, Any] | None:
        """The index entry named `tag`, or None."""
        found = [m for m in self.entries if (m.get("annotations") or {}).get(REF_NAME) == tag]
        return found[0] if found else None

    def top(self, tag: str | None) -> dict[str, Any]:
        """The entry named `tag`, or the only one."""
        if tag is not None:
            found = self.tagged(tag)
            if found is None:
                raise LayoutError(f"{self.where}: no image tagged {tag}")
            return dict(found)
        if len(self.entries) != 1:
            raise LayoutError(f"{self.where}: {len(self.entries)} images; name one with :TAG")
        return self.entries[0]


def write_layout(
    root: Path,
    documents: Mapping[Digest, Document],
    blobs: Mapping[Digest, Path],
    named: Mapping[str, Digest],
    top: Digest,
) -> None:
    """An OCI image layout at `root`: each blob and document through a temporary file,
    then index.json listing `named` (tag → digest), or `top` alone when nothing is."""
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(root / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    for digest, path in blobs.items():
        target = layout_blob(root, digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():  # named by its digest, written whole: one there is this one
            copy_atomic(path, target)
    for digest, document in documents.items():
        write_atomic(layout_blob(root, digest), document.data)
    entries = [
        {
            "mediaType": documents[digest].media_type,
            "digest": digest,
            "size": len(documents[digest].data),
            "annotations": {REF_NAME: name},
        }
        for name, digest in sorted(named.items())
    ] or [
        {
            "mediaType": documents[top].media_type,
            "digest": top,
            "size": len(documents[top].data),
        }
    ]
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}
    write_atomic(root / "index.json", json.dumps(index, separators=(",", ":")).encode())
