"""User-facing errors: one line each, printed without a traceback, exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

EXIT_USER_ERROR = 2


class SyntraError(Exception):
    """An error the user can fix; `str()` is the one line to print."""

    exit_code = EXIT_USER_ERROR


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in a file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ConfigError(SyntraError):
    """A problem in syntra.yaml at a known position and config path."""

    def __init__(self, position: Position, path: str, message: str) -> None:
        self.position = position
        self.path = path
        self.message = message
        where = f"{position}: {path}: " if path else f"{position}: "
        super().__init__(where + message)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
