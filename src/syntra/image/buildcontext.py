"""The files of a build context, honouring `.dockerignore` the way BuildKit does.

Rules (docker/moby's patternmatcher): patterns are cleaned paths relative to the
context, `*` and `?` do not cross `/`, `**` crosses any number of directories, a
pattern that matches a directory excludes everything below it, `!` re-includes,
and the last matching pattern wins.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


@dataclass(frozen=True)
class _Rule:
    regex: re.Pattern[str]
    include: bool


def _translate(pattern: str) -> re.Pattern[str]:
    out, index = "", 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                out += "(?:.*/)?"
                index += 1
            else:
                out += ".*"
            continue
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif char == "[":
            end = pattern.find("]", index)
            if end == -1:
                out += re.escape(char)
            else:
                body = pattern[index + 1 : end].replace("\\", "\\\\")
                out += f"[{'^' + body[1:] if body.startswith('!') else body}]"
                index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out += re.escape(pattern[index])
        else:
            out += re.escape(char)
        index += 1
    # A pattern also matches everything below a directory it matches.
    return re.compile(f"^{out}(?:/.*)?$")


def parse_dockerignore(text: str) -> list[_Rule]:
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        include = line.startswith("!")
        pattern = posixpath.normpath(line[1:].strip() if include else line).lstrip("/")
        if pattern in ("", "."):
            continue
        rules.append(_Rule(_translate(pattern), include))
    return rules


@dataclass(frozen=True)
class BuildContext:
    """A context directory and the rules that decide which of its files are sent."""

    root: Path

    @cached_property
    def rules(self) -> list[_Rule]:
        ignore = self.root / ".dockerignore"
        return parse_dockerignore(ignore.read_text()) if ignore.is_file() else []

    def excluded(self, relative: str) -> bool:
        verdict = False
        for rule in self.rules:
            if rule.regex.match(relative):
                verdict = not rule.include
        return verdict

    def files(self) -> list[str]:
        """Relative POSIX paths of every file the builder will see, sorted."""
        found = []
        for folder, dirs, names in os.walk(self.root):
            base = Path(folder).relative_to(self.root).as_posix()
            prefix = "" if base == "." else base + "/"
            dirs.sort()
            found += [prefix + name for name in names if not self.excluded(prefix + name)]
        return sorted(found)

    def digest(self) -> str:
        """Changes when an included file is added, removed, changes content or mode, or
        (for a symlink) points elsewhere."""
        summary = hashlib.sha256()
        for relative in self.files():
            path = self.root / relative
            summary.update(relative.encode() + b"\0")
            summary.update(b"%o\0" % (path.lstat().st_mode & 0o7777))
            if path.is_symlink():
                summary.update(b"link:" + os.readlink(path).encode())
            else:
                summary.update(hashlib.sha256(path.read_bytes()).digest())
        return "sha256:" + summary.hexdigest()
