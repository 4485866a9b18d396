"""Where image tests run: one platform of a built image, with its config, its files, a
way to run a command in it and a way to start its entrypoint.

- `buildah_box`: the OCI layout a Linux builder wrote, through `buildah from oci:…`,
  `buildah run --isolation chroot` and `buildah mount` (foreign platforms under QEMU).
- `apple_boxes`: an image in Apple's `container` store, through `container run` for
  commands and servers; its files and config come from `container image save`, unpacked
  layer by layer (whiteouts applied), so no runtime is needed to read them.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from syntra.errors import SyntraError
from syntra.toolerrors import tool_failed

Completed = tuple[int, str, str]
"""Exit code (-1: stopped by the timeout), stdout, stderr."""


class Server(Protocol):
    def alive(self) -> bool: ...

    def stop(self) -> None: ...


class Box(Protocol):
    config: dict[str, Any]
    """The image config's `config` object: Entrypoint, Cmd, Env, Labels…"""
    root: Path
    """The image's filesystem, readable from here."""

    def run(self, argv: list[str], env: dict[str, str], timeout: int) -> Completed: ...

    def serve(self, port: int) -> Server: ...


BoxFactory = Callable[[], AbstractContextManager[Box]]


def _communicate(argv: list[str], timeout: int) -> Completed:
    process = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop_group(process)
        return -1, "", ""
    return process.returncode, out, err


def _stop_group(process: subprocess.Popen[Any]) -> None:
    """Stop the process group (the runtime and what it runs), hard after 5 s."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def _tool(program: str, install: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise SyntraError(f"image tests run the image with {program}: {install}")
    return found


def _output(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        what = f"{Path(argv[0]).name} {argv[1]}"
        raise tool_failed(what, done.returncode, done.stdout + done.stderr)
    return done.stdout.strip()


# buildah ----------------------------------------------------------------------


class _Process:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.process = process

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        _stop_group(self.process)


class BuildahBox:
    def __init__(self, name: str, config: dict[str, Any], root: Path) -> None:
        self.name, self.config, self.root = name, config, root

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
        return _Process(
            subprocess.Popen(
                self._argv(argv, {}),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )


@contextmanager
def buildah_box(layout: Path) -> Iterator[Box]:
    """A working container from the single image of an OCI layout; removed afterwards."""
    buildah = _tool("buildah", "apt-get install buildah")
    # buildah derives an image name from the layout's path and refuses paths with a
    # component starting with a dot (`.syntra/`) or capitals: reach it through a link.
    with tempfile.TemporaryDirectory(prefix="syntra-test-") as folder:
        link = Path(folder) / "layout"
        link.symlink_to(layout.resolve())
        name = _output([buildah, "from", "--quiet", f"oci:{link}"])
    try:
        inspected = json.loads(_output([buildah, "inspect", "--type", "container", name]))
        config = inspected.get("OCIv1", {}).get("config", {}) or {}
        yield BuildahBox(name, config, Path(_output([buildah, "mount", name])))
    finally:
        subprocess.run([buildah, "rm", name], capture_output=True, check=False)


# Apple's container CLI --------------------------------------------------------


class _Detached:
    def __init__(self, program: str, name: str) -> None:
        self.program, self.name = program, name

    def alive(self) -> bool:
        return True  # the CLI publishes the port before the process listens: poll the port

    def stop(self) -> None:
        for action in ("stop", "rm"):
            subprocess.run([self.program, action, self.name], capture_output=True, check=False)


class AppleBox:
    def __init__(
        self, program: str, reference: str, platform: str, config: dict[str, Any], root: Path
    ) -> None:
        self.program, self.reference, self.platform = program, reference, platform
        self.config, self.root = config, root

    def run(self, argv: list[str], env: dict[str, str], timeout: int) -> Completed:
        flags = [item for key, value in env.items() for item in ("--env", f"{key}={value}")]
        command = [self.program, "run", "--rm", "--platform", self.platform, *flags]
        command += ["--entrypoint", argv[0], self.reference, *argv[1:]]
        return _communicate(command, timeout)

    def serve(self, port: int) -> Server:
        name = f"syntra-test-{secrets.token_hex(4)}"
        published = f"127.0.0.1:{port}:{port}"
        _output([self.program, "run", "--detach", "--name", name, "--publish", published,
                 "--platform", self.platform, self.reference])  # fmt: skip
        return _Detached(self.program, name)


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / digest.replace(":", "/", 1)


def unpack(layout: Path, manifest: dict[str, Any], target: Path) -> None:
    """The image's filesystem: its layers in order, whiteouts applied."""
    for layer in manifest.get("layers", []):
        with tarfile.open(_blob(layout, layer["digest"]), "r:*") as archive:
            for member in archive:
                parts = Path(member.name).parts
                if member.name.startswith("/") or ".." in parts or not parts:
                    continue
                place = target.joinpath(*parts)
                if parts[-1] == ".wh..wh..opq":
                    for child in place.parent.iterdir() if place.parent.is_dir() else []:
                        _remove(child)
                elif parts[-1].startswith(".wh."):
                    _remove(place.with_name(parts[-1][4:]))
                elif not (member.ischr() or member.isblk() or member.isfifo()):
                    if place.is_symlink() or (place.exists() and not place.is_dir()):
                        place.unlink()
                    archive.extract(member, target, numeric_owner=True, filter="fully_trusted")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def apple_boxes(program: str, reference: str, save: Callable[[Path], None]) -> Iterator[
    dict[str, BoxFactory]
]:  # fmt: skip
    """One box per platform of `reference` in the CLI's store; `save` writes its OCI
    archive (`container image save`)."""
    with tempfile.TemporaryDirectory(prefix="syntra-test-") as folder:
        archive, layout = Path(folder) / "image.tar", Path(folder) / "layout"
        save(archive)
        with tarfile.open(archive) as opened:
            opened.extractall(layout, filter="data")
        top = json.loads((layout / "index.json").read_text())["manifests"][0]
        index = json.loads(_blob(layout, top["digest"]).read_text())
        boxes: dict[str, BoxFactory] = {}
        for number, entry in enumerate(index.get("manifests", [])):
            described = entry.get("platform") or {}
            keys = ("os", "architecture", "variant")
            platform = "/".join(str(described[key]) for key in keys if described.get(key))
            boxes[platform] = _apple_factory(program, reference, platform, layout, entry, number)
        yield boxes


def _apple_factory(
    program: str, reference: str, platform: str, layout: Path, entry: dict[str, Any], number: int
) -> BoxFactory:
    @contextmanager
    def box() -> Iterator[Box]:
        manifest = json.loads(_blob(layout, entry["digest"]).read_text())
        config = json.loads(_blob(layout, manifest["config"]["digest"]).read_text())
        root = layout.parent / f"root-{number}"
        root.mkdir(exist_ok=True)
        unpack(layout, manifest, root)
        yield AppleBox(program, reference, platform, config.get("config") or {}, root)

    return box
