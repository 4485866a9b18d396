"""The command line: argument parsing and every module that prints.

`main` answers `--version` before anything heavy is imported; the commands
themselves live in `syntra.cli.commands`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any


def main(argv: Sequence[str] | None = None) -> int:
    """`syntra`'s entry point (the console script and `python -m syntra`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        from syntra.version import installed_version

        print(f"syntra {installed_version()}")
        return 0
    from syntra.cli.commands import main as run

    return run(args)


def __getattr__(name: str) -> Any:
    """`syntra.cli.parser` (the argument parser, for docs and tests), loaded on first use."""
    if name != "parser":
        raise AttributeError(f"module 'syntra.cli' has no attribute {name!r}")
    from syntra.cli import commands

    return commands.parser
