"""How a guest's compiler runs, whatever its language: with a fixed environment
(SOURCE_DATE_EPOCH, no hash randomisation), through the one process runner. Apart from
`compile`, which finds the languages, so that a language module imports nothing that
finds it."""

from __future__ import annotations

import os
from pathlib import Path

from syntra import process


def run_compiler(
    argv: list[str], cwd: Path, what: str, epoch: int, extra: dict[str, str] | None = None
) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "PYTHONHASHSEED": "0", **(extra or {})}
    env["RUST_BACKTRACE"] = "0"  # componentize-py's frames would bury the guest's error
    process.run(argv, what, cwd=cwd, env=env)
