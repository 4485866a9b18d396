"""Where image tests run: one platform of a built image, with its config, its files, a
way to run a command in it and a way to start its entrypoint.

- `buildah_box`: the OCI layout a Linux builder wrote; commands and servers through
  `buildah from oci:…` and `buildah run --isolation chroot` (foreign platforms under QEMU).
- `apple_boxes`: an image in Apple's `container` store; commands and servers through
  `container run`, the layout from `container image save`.

Either way, files and config are read from the layout itself: the layers unpacked in
order (whiteouts applied, every path resolved inside the image), so no mount is needed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from syntra import process
from syntra.errors import SyntraError
from syntra.oci import Document, platform_of
from syntra.oci import digest as digests
from syntra.oci.digest import Digest
from syntra.oci.layout import Archive, Layout

Completed = tuple[int | None, str, str]
"""Exit code (None: stopped by the timeout), stdout, stderr."""


class Server(Protocol):
    def alive(self) -> bool: ...

    def stop(self) -> None: ...


class Box(Protocol):
    config: dict[str, Any]
    """The image config's `config` object: Entrypoint, Cmd, Env, Labels…"""
    files: Rootfs
    """The image's filesystem, unpacked from its layers."""

    def run(self, argv: list[str], env: dict[str, str], timeout: int) -> Completed: ...

    def serve(self, port: int) -> Server: ...


BoxFactory = Callable[[], AbstractContextManager[Box]]


def _communicate(argv: list[str], timeout: int) -> Completed:
    done = process.run(argv, check=False, timeout=timeout)
    return (done.code, done.out, done.err) if done.code is not None else (None, "", "")


def _tool(program: str, install: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise SyntraError(f"image tests run the image with {program}: {install}")
    return found


# buildah ----------------------------------------------------------------------


class BuildahBox:
    def __init__(self, name: str, config: dict[str, Any], files: Rootfs) -> None:
        self.name, self.config, self.files = name, config, files

    def _argv(self, argv: list[str], env: dict[str, str]) -> list[str]:
        flags = [item for key, value in env.items() for item in ("--env", f"{key}={value}")]
        buildah = _tool("buildah", "apt-get install buildah")
        return [buildah, "run", "--isolation", "chroot", *flags, self.name, "--", *argv]

    def run(self, argv: list[str], env: dict[str, str], timeout: int) -> Completed:
        return _communicate(self._argv(argv, env), timeout)

    def serve(self, port: int) -> Server:
        """The entrypoint and command, on the host's network (chroot isolation)."""
        argv = [*(self.config.get("Entrypoint") or []), *(self.config.get("Cmd") or [])]
        if not argv:
            raise SyntraError("the image has no entrypoint or command to start")
        return process.Background(self._argv(argv, {}))


def require_buildah() -> None:
    _tool("buildah", "apt-get install buildah")


@contextmanager
def _named_folder() -> Iterator[Path]:
    """A scratch folder whose path is a valid repository name (lowercase hex)."""
    base = Path("/tmp") if Path("/tmp").is_dir() else Path(tempfile.gettempdir())
    folder = base / f"syntra-test-{secrets.token_hex(8)}"
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def buildah_box(layout: Path) -> Iterator[Box]:
    """A working container from the single image of an OCI layout, for commands and
    servers; files and config are read from the layout. Container and image are removed
    afterwards."""
    buildah = _tool("buildah", "apt-get install buildah")
    read = Layout.folder(layout)
    top = read.entries[0] if read.entries else read.top(None)
    manifest = read.document(Digest(top["digest"]), top["size"])
    image = digests.hexdigest(Digest(manifest.children()[0]["digest"]))  # buildah's image id
    known = process.run([buildah, "inspect", "--type", "image", image], check=False)
    with _named_folder() as folder:
        # buildah derives an image name from the layout's path and refuses paths that are
        # not a valid repository name (a leading dot, capitals, a trailing `_`): a link.
        link = folder / "layout"
        link.symlink_to(layout.resolve())
        name = process.output([buildah, "from", "--quiet", f"oci:{link}"])
        try:
            layers, config = _image(read, manifest, folder)
            yield BuildahBox(name, config, unpack(layers, folder / "root"))
        finally:
            process.run([buildah, "rm", name], check=False)
            if not known.ok:  # `from` copied it into storage: do not let it pile up
                process.run([buildah, "rmi", image], check=False)


# Apple's container CLI --------------------------------------------------------


class _Detached:
    def __init__(self, program: str, name: str) -> None:
        self.program, self.name = program, name

    def alive(self) -> bool:
        return True  # the CLI publishes the port before the process listens: poll the port

    def stop(self) -> None:
        for action in ("stop", "rm"):
            process.run([self.program, action, self.name], check=False)


class AppleBox:
    def __init__(
        self, program: str, reference: str, platform: str, config: dict[str, Any], files: Rootfs
    ) -> None:
        self.program, self.reference, self.platform = program, reference, platform
        self.config, self.files = config, files

    def run(self, argv: list[str], env: dict[str, str], timeout: int) -> Completed:
        flags = [item for key, value in env.items() for item in ("--env", f"{key}={value}")]
        command = [self.program, "run", "--rm", "--platform", self.platform, *flags]
        command += ["--entrypoint", argv[0], self.reference, *argv[1:]]
        return _communicate(command, timeout)

    def serve(self, port: int) -> Server:
        name = f"syntra-test-{secrets.token_hex(4)}"
        published = f"127.0.0.1:{port}:{port}"
        server = _Detached(self.program, name)
        try:
            process.output([self.program, "run", "--detach", "--name", name, "--publish", published,
                     "--platform", self.platform, self.reference])  # fmt: skip
        except SyntraError:
            server.stop()  # it may exist though it did not start
            raise
        return server


@dataclass(frozen=True)
class Entry:
    """What a layer's tar header says of a path (ownership is not kept on disk when the
    unpacking user cannot chown)."""

    mode: int
    uid: int
    gid: int


@dataclass
class Rootfs:
    root: Path
    entries: dict[str, Entry] = field(default_factory=dict)
    """Image path (`/srv/index.html`) → its header, for the paths the layers wrote."""

    def resolve(self, path: str, follow_last: bool = True) -> Path:
        """`path` as the image sees it: symlinks followed inside the image (an absolute
        target starts at the image's root, `..` stops there), never onto the host."""
        parts = [part for part in path.split("/") if part not in ("", ".")]
        done: list[str] = []
        for _ in range(256):  # a bound on link hops
            if not parts:
                return self.root.joinpath(*done)
            part = parts.pop(0)
            if part == "..":
                done = done[:-1]
                continue
            candidate = self.root.joinpath(*done, part)
            if candidate.is_symlink() and (parts or follow_last):
                target = os.readlink(candidate)
                parts = [p for p in target.split("/") if p not in ("", ".")] + parts
                if target.startswith("/"):
                    done = []
                continue
            done.append(part)
        raise SyntraError(f"{path}: too many levels of symbolic links in the image")

    def entry(self, path: str) -> Entry | None:
        resolved = self.resolve(path)
        relative = "/" + resolved.relative_to(self.root).as_posix()
        return self.entries.get(relative.rstrip("/") or "/")


def _image(read: Layout, manifest: Document, scratch: Path) -> tuple[list[Path], dict[str, Any]]:
    """The image's layers as verified files, and its config's `config` object."""
    config, *layers = manifest.children()
    paths = [read.blob(Digest(d["digest"]), d["size"], scratch) for d in layers]
    body = Document(read.small(Digest(config["digest"]), config["size"]), "", local=True)
    return paths, dict(body.json().get("config") or {})


def unpack(layers: list[Path], target: Path) -> Rootfs:
    """The image's filesystem: each layer's whiteouts (which hide lower layers only), then
    its files; every path resolved inside the image, so nothing lands on the host."""
    files = Rootfs(target)
    target.mkdir(parents=True, exist_ok=True)
    for layer in layers:
        with tarfile.open(layer, "r:*") as archive:
            members = archive.getmembers()
            for member in members:
                name = "/" + member.name.lstrip("./")
                base = name.rsplit("/", 1)[-1]
                if base == ".wh..wh..opq":
                    folder = files.resolve(name.rsplit("/", 1)[0] or "/")
                    for child in folder.iterdir() if folder.is_dir() else []:
                        _remove(child)
                elif base.startswith(".wh."):
                    _remove(files.resolve(name.rsplit("/", 1)[0] + "/" + base[4:], False))
            for member in members:
                name = "/" + member.name.lstrip("./").rstrip("/")
                base = name.rsplit("/", 1)[-1]
                if base.startswith(".wh.") or member.ischr() or member.isblk() or member.isfifo():
                    continue
                parent = files.resolve(name.rsplit("/", 1)[0] or "/")
                place = parent / base if name != "/" else target
                _extract(archive, member, place)
                files.entries[name] = Entry(stat.S_IMODE(member.mode), member.uid, member.gid)
    return files


def _extract(archive: tarfile.TarFile, member: tarfile.TarInfo, place: Path) -> None:
    """One member at `place` (already resolved inside the image)."""
    place.parent.mkdir(parents=True, exist_ok=True)
    if member.isdir():
        if place.is_symlink() or (place.exists() and not place.is_dir()):
            place.unlink()
        place.mkdir(exist_ok=True)
        place.chmod(0o755)  # readable here; the header keeps the image's own mode
        return
    if place.is_symlink() or place.exists():
        _remove(place)
    if member.issym():
        place.symlink_to(member.linkname)
        return
    # A hard link is written as a copy of the member it links to.
    source = archive.getmember(member.linkname) if member.islnk() else member
    extracted = archive.extractfile(source)
    place.write_bytes(extracted.read() if extracted else b"")
    place.chmod(0o644)  # readable here; the header keeps the image's own mode


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def apple_boxes(
    program: str, reference: str, platforms: list[str], save: Callable[[Path], None]
) -> Iterator[
    dict[str, BoxFactory]
]:  # fmt: skip
    """One box per platform of `reference` in the CLI's store (each of `platforms` must be
    there); `save` writes its OCI archive (`container image save`)."""
    with tempfile.TemporaryDirectory(prefix="syntra-test-") as folder, ExitStack() as stack:
        archive = Path(folder) / "image.tar"
        save(archive)
        files = Archive(archive)  # read in place, never extracted
        stack.callback(files.close)
        read = Layout(files)
        top = read.entries[0] if read.entries else read.top(None)
        index = read.document(Digest(top["digest"]), top["size"])
        found: dict[str, dict[str, Any]] = {}
        for entry in index.children():
            found[platform_of(entry)] = entry
        missing = [platform for platform in platforms if platform not in found]
        if missing:
            raise SyntraError(f"{reference}: the built image has no {', '.join(missing)}")
        yield {
            platform: _apple_factory(
                program, reference, platform, read, found[platform], Path(folder) / f"root-{n}"
            )
            for n, platform in enumerate(platforms)
        }


def _apple_factory(
    program: str, reference: str, platform: str, read: Layout, entry: dict[str, Any], root: Path
) -> BoxFactory:
    @contextmanager
    def box() -> Iterator[Box]:
        manifest = read.document(Digest(entry["digest"]), entry["size"])
        layers, config = _image(read, manifest, root.parent)
        yield AppleBox(program, reference, platform, config, unpack(layers, root))

    return box
