"""User-facing errors: one line each, printed without a traceback, exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

EXIT_USER_ERROR = 2


class SyntraError(Exception):
    """An error the user can fix; `str()` is the one line to print."""

    exit_code = EXIT_USER_ERROR


class Refused(SyntraError):
    """Something did not verify (a signature, a digest): exit code 1, like `syntra verify`."""

    exit_code = 1


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in a file."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def one_line(text: str) -> str:
    """Escape line breaks and other control characters: an error stays one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def count(number: int, noun: str) -> str:
    """`1 image`, `3 images`."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


class ConfigError(SyntraError):
    """A problem in syntra.yaml at a known position and config path."""

    def __init__(self, position: Position, path: str, message: str) -> None:
        self.position = position
        self.path = one_line(path)
        self.message = one_line(message)
        where = f"{position}: {self.path}: " if path else f"{position}: "
        super().__init__(where + self.message)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice `word` most likely meant: a close spelling, or one that starts the other
    (`production` for `prod`); None when nothing is close or `word` is itself a choice."""
    by_lower = {choice.lower(): choice for choice in choices}
    lower = word.lower()
    close = difflib.get_close_matches(lower, list(by_lower), n=1, cutoff=0.6)
    if not close:
        close = [c for c in by_lower if min(len(c), len(lower)) >= 3 and _prefixed(c, lower)][:1]
    if not close or by_lower[close[0]] == word:
        return None
    return by_lower[close[0]]


def _prefixed(a: str, b: str) -> bool:
    """One starts the other, and not as a small part of a much longer word."""
    return abs(len(a) - len(b)) <= 8 and (a.startswith(b) or b.startswith(a))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """'; did you mean 'x'?' for the closest choice, or '' when nothing is close."""
    found = closest(word, choices)
    return f"; did you mean '{found}'?" if found else ""
