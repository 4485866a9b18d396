"""Files Syntra writes into the repository (ContainerSpecs/, .github/workflows/).

One mechanism for all of them: a file is written only when its text changed (its mtime
stays otherwise), drift is shown as unified diffs, and files Syntra generated earlier
but no longer generates are removed. Only files that carry their family's mark are
ever removed or reported stale: the project's own files beside them are left alone.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from syntra.fsutil import write_if_changed

HEAD_BYTES = 400
"""How far into a file its mark is looked for (headers come first)."""


@dataclass(frozen=True)
class Generated:
    """One generated file: its path relative to the repository root, and its text."""

    path: str
    text: str


@dataclass(frozen=True)
class Family:
    """Where a kind of generated file lives, and the mark its header carries."""

    folder: str
    patterns: tuple[str, ...]
    mark: str

    def stale(self, wanted: Iterable[str], root: Path) -> list[str]:
        """Files of this family on disk that are not `wanted` (paths from the root)."""
        wanted = set(wanted)
        found: set[str] = set()
        folder = root / self.folder
        for pattern in self.patterns if folder.is_dir() else ():
            for path in folder.glob(pattern):
                relative = str(path.relative_to(root))
                if relative not in wanted and self._marked(path):
                    found.add(relative)
        return sorted(found)

    def _marked(self, path: Path) -> bool:
        if not path.is_file() or path.is_symlink():
            return False
        return self.mark in path.read_text(errors="replace")[:HEAD_BYTES]


def write_generated(files: list[Generated], root: Path) -> list[str]:
    """Write the files whose text changed; their paths."""
    return [
        file.path for file in files if write_if_changed(root / file.path, file.text.encode("utf-8"))
    ]


def prune(family: Family, wanted: Iterable[str], root: Path) -> list[str]:
    """Remove the family's files that are not `wanted` any more, and the folders that
    leaves empty; their paths."""
    removed = family.stale(wanted, root)
    for relative in removed:
        path = root / relative
        path.unlink()
        folder = path.parent
        while folder != root / family.folder and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
    return removed


def drift(files: list[Generated], family: Family, root: Path) -> list[str]:
    """Unified diffs from what is on disk to what would be written; a stale file shows
    as its deletion."""
    stale = family.stale((file.path for file in files), root)
    expected = [*files, *(Generated(path, "") for path in stale)]
    diffs = []
    for file in expected:
        path = root / file.path
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != file.text:
            lines = difflib.unified_diff(
                current.splitlines(keepends=True),
                file.text.splitlines(keepends=True),
                fromfile=f"a/{file.path}",
                tofile=f"b/{file.path}" if file.text else "/dev/null",
            )
            diffs.append("".join(lines))
    return diffs
