"""Compiling guests, whatever their language (wasm/languages/ holds each one).

Compilers run with a fixed environment (SOURCE_DATE_EPOCH, no hash randomisation) and
write through a temporary file, so a failed build leaves nothing behind; the compilers'
versions are recorded beside the output, for the SBOM.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from syntra import process
from syntra.fsutil import write_atomic
from syntra.plan import GuestPlan


def run_compiler(
    argv: list[str], cwd: Path, what: str, epoch: int, extra: dict[str, str] | None = None
) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "PYTHONHASHSEED": "0", **(extra or {})}
    env["RUST_BACKTRACE"] = "0"  # componentize-py's frames would bury the guest's error
    process.run(argv, what, cwd=cwd, env=env)


def recorded_toolchain(tools: Path) -> dict[str, str]:
    """What `compile_guest` wrote to `tools`; empty when that file is gone or damaged."""
    try:
        found = json.loads(tools.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def compile_guest(
    guest: GuestPlan, root: Path, output: Path, epoch: int, cache: Path, tools: Path
) -> str | None:
    """Build `guest` into `output` (written atomically) and the compilers' versions into
    `tools`, for its SBOM; returns a caveat, if any."""
    from syntra.wasm.languages import language

    compiler = language(guest.language)
    temp = output.with_name(f".{output.name}.building")
    temp.parent.mkdir(parents=True, exist_ok=True)
    caveat = compiler.compile(guest, root, temp, epoch, cache)
    write_atomic(tools, json.dumps(compiler.toolchain(guest), sort_keys=True).encode())
    write_atomic(output, temp.read_bytes())
    temp.unlink()
    return caveat
