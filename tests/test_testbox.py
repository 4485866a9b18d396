"""Unpacking image layers for file tests: whiteouts as the OCI spec says, and nothing an
image holds ever reaches outside the folder it is unpacked into."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from syntra.image.testbox import unpack


def _layer(layout: Path, members: list[tuple[str, str, bytes | str]]) -> dict[str, str]:
    """A tar layer of (kind, name, content-or-link-target) members."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for kind, name, content in members:
            info = tarfile.TarInfo(name)
            info.uid, info.gid, info.mode = 1000, 1001, 0o640
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o750
                archive.addfile(info)
            elif kind == "link":
                info.type, info.linkname = tarfile.SYMTYPE, str(content)
                archive.addfile(info)
            else:
                data = content if isinstance(content, bytes) else content.encode()
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}"}


def test_whiteouts_and_links_stay_inside_the_image(tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    (host / "victim").write_text("keep me")
    layout = tmp_path / "layout"
    lower = _layer(layout, [("dir", "etc", ""), ("file", "etc/old", "lower"),
                            ("file", "etc/gone", "lower"), ("link", "escape", str(host)),
                            ("link", "up", "../../../../../../.."), ("dir", "opaque", ""),
                            ("file", "opaque/lower", "lower")])  # fmt: skip
    upper = _layer(layout, [("file", "escape/planted", "x"), ("file", "escape/.wh.victim", ""),
                            ("file", "opaque/new", "upper"), ("file", "opaque/.wh..wh..opq", ""),
                            ("file", "etc/.wh.gone", ""),
                            ("file", "up/etc/passwd", "root")])  # fmt: skip
    blobs = layout / "blobs" / "sha256"
    files = unpack([blobs / lower["digest"][7:], blobs / upper["digest"][7:]], tmp_path / "root")
    assert (host / "victim").read_text() == "keep me"  # the host is untouched
    assert sorted(p.name for p in host.iterdir()) == ["victim"]
    root = tmp_path / "root"
    planted = files.resolve("/escape/planted")  # the link's target, inside the image
    assert planted.is_relative_to(root) and planted.read_text() == "x"
    assert files.resolve("/etc/old").read_text() == "lower"
    assert not files.resolve("/etc/gone").exists()  # a whiteout hides the lower file
    # An opaque whiteout hides the lower layer's entries, not its own layer's.
    assert sorted(p.name for p in files.resolve("/opaque").iterdir()) == ["new"]
    # `..` stops at the image's root: `up/etc/passwd` is the image's /etc/passwd.
    assert files.resolve("/up/etc/passwd") == root / "etc" / "passwd"
    entry = files.entry("/etc/old")
    assert entry is not None and (entry.uid, entry.gid, entry.mode) == (1000, 1001, 0o640)
    assert files.resolve("/../../etc/passwd") == root / "etc" / "passwd"
