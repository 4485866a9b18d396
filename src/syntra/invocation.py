"""The command this process was started as: a build fact, recorded with what it pushes
and named by the provenance (`doit docker:server`, `syntra merge server`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

_command: list[str] = []


def started_as(argv: Sequence[str]) -> None:
    """Set by an entry point that is not the process's own argv (the CLI run in-process)."""
    _command[:] = list(argv)


def invocation() -> str:
    program = Path(sys.argv[0])
    name = program.parent.name if program.name == "__main__.py" else program.name  # python -m
    return " ".join(_command or [name, *sys.argv[1:]])
