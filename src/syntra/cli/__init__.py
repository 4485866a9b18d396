"""The command line: argument parsing and every module that prints.

`main` answers `--version` before anything heavy is imported; the commands
themselves live in `syntra.cli.commands`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """`syntra`'s entry point (the console script and `python -m syntra`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:
        from syntra.version import installed_version

        print(f"syntra {installed_version()}")
        return 0
    from syntra.cli.commands import main as run

    return run(args)
