"""User-facing errors: one line each, printed without a traceback.

The class says what failed, and so the exit code (README, "Exit codes"):
1 something did not verify, 2 configuration or usage, 3 a build or tool, 4 a registry.
`SYNTRA_DEBUG=1` prints the traceback as well.
"""

from __future__ import annotations

import difflib
import os
import traceback
from collections.abc import Iterable
from dataclasses import dataclass

EXIT_REFUSED = 1
EXIT_USER_ERROR = 2
EXIT_TOOL = 3
EXIT_REGISTRY = 4
DEBUG_ENV = "SYNTRA_DEBUG"


class SyntraError(Exception):
    """An error the user can fix; `str()` is the one line to print. Exit code 2:
    configuration, usage, missing input."""

    exit_code = EXIT_USER_ERROR


class Refused(SyntraError):
    """Something did not verify (a signature, a digest): exit code 1, like `syntra verify`."""

    exit_code = EXIT_REFUSED


class ToolError(SyntraError):
    """A build or a tool failed (podman, swift, componentize-py, wasm-opt, syft), or a
    local file could not be written: exit code 3."""

    exit_code = EXIT_TOOL


class RegistryError(SyntraError):
    """A registry refused, failed or could not be reached: exit code 4."""

    exit_code = EXIT_REGISTRY


class TooLarge(RegistryError):
    """A registry answer, declared or sent, past its kind's bound: exit code 4, and never
    taken for a signature or attestation that merely fails to verify."""


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


def as_error(exc: SyntraError | OSError) -> SyntraError:
    """A SyntraError as it is; a file that cannot be read or written (a read-only or
    full disk, a folder in the way) as one line naming it, exit code 3."""
    if isinstance(exc, SyntraError):
        return exc
    where = f"{exc.filename}: " if exc.filename else ""
    return ToolError(one_line(f"{where}{exc.strerror or exc}"))


def failure(exc: SyntraError | OSError) -> SyntraError:
    """The one handling of a failed stage run or command, for doit's tasks and the CLI
    alike: the error as one line (`as_error`), with the traceback printed first when
    SYNTRA_DEBUG=1. Called inside the `except` that caught `exc`."""
    if os.environ.get(DEBUG_ENV) == "1":
        traceback.print_exc()
    return as_error(exc)


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
