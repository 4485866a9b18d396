"""Writes that are never seen half-done, and names from elsewhere made safe as paths."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write through a temporary file in the same directory, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    replaced = False
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
        replaced = True
    finally:
        if not replaced:  # interrupted or failed: no temporary file left behind
            Path(temp).unlink(missing_ok=True)


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomic write that leaves an identical file (and its mtime) alone."""
    try:
        if path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    write_atomic(path, data)
    return True


def copy_atomic(source: Path, target: Path, mode: int = 0o644) -> None:
    """`source` to `target` through a temporary file: never seen half-written. The
    temporary file is a new one (O_EXCL), so a link planted where it goes is not
    written through."""
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    replaced = False
    try:
        with os.fdopen(fd, "wb") as handle, source.open("rb") as copied:
            shutil.copyfileobj(copied, handle, 1 << 20)
        os.chmod(temp, mode)
        os.replace(temp, target)
        replaced = True
    finally:
        if not replaced:
            Path(temp).unlink(missing_ok=True)


def confined(name: str, deepest: int = 32) -> str | None:
    """`name` (from an archive member, a layer title, a layout) as a relative path that
    stays inside the folder it is written to or read from (`./a//b` → `a/b`); None when
    it is absolute, climbs with `..`, uses `\\`, holds control characters, is empty or
    nests deeper than `deepest`. The one check for every outside name that becomes a
    path."""
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if (
        name.startswith("/")
        or ".." in parts
        or "\\" in name
        or not name.isprintable()
        or not parts
        or len(parts) > deepest
    ):
        return None
    return "/".join(parts)
