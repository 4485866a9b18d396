"""Compiling guests, whatever their language (wasm/languages/ holds each one).

Each language runs its compilers through `compiler.run_compiler` (a fixed environment);
the output is written through a temporary file, so a failed build leaves nothing
behind, and the compilers' versions are recorded beside it, for the SBOM.
"""

from __future__ import annotations

import json
from pathlib import Path

from syntra.fsutil import write_atomic
from syntra.plan import GuestPlan


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
