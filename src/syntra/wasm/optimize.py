"""wasm-opt (binaryen) on core modules, enabling exactly the features a module declares.

LLVM records the features a module uses in its `target_features` section; they
become binaryen's `--enable-…` flags, and the section itself is stripped with the
debug info and producers, which the runtime never reads. Binaryen cannot read
components: those are kept as built.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from syntra import process
from syntra.errors import ToolError
from syntra.fsutil import write_atomic
from syntra.plugins.binary import kind_of_file, uleb128

# LLVM feature name → binaryen flag where they differ.
_BINARYEN_NAMES = {
    "nontrapping-fptoint": "nontrapping-float-to-int",
    "simd128": "simd",
    "bulk-memory-opt": "bulk-memory",
    "call-indirect-overlong": "reference-types",
}


@dataclass(frozen=True)
class Optimized:
    kind: str
    size_before: int
    size_after: int
    note: str


def target_features(data: bytes) -> list[str]:
    """Features marked used (`+`) in a module's `target_features` custom section."""
    at, found = 8, []
    while at < len(data):
        section, at = data[at], at + 1
        size, at = uleb128(data, at)
        end = at + size
        if section == 0:
            length, name_at = uleb128(data, at)
            if data[name_at : name_at + length] == b"target_features":
                cursor = name_at + length
                count, cursor = uleb128(data, cursor)
                for _ in range(count):
                    prefix = chr(data[cursor])
                    length, cursor = uleb128(data, cursor + 1)
                    feature = data[cursor : cursor + length].decode()
                    cursor += length
                    if prefix == "+":
                        found.append(feature)
        at = end
    return found


def feature_flags(features: list[str]) -> list[str]:
    return sorted({f"--enable-{_BINARYEN_NAMES.get(name, name)}" for name in features})


def wasm_opt() -> str:
    program = shutil.which("wasm-opt")
    if program is None:
        raise ToolError("wasm-opt is not installed: apt-get install binaryen")
    return program


def optimize(raw: Path, output: Path, level: str) -> Optimized:
    """Write the optimised guest to `output` (or the component, unchanged)."""
    data = raw.read_bytes()
    kind = kind_of_file(raw)
    if kind == "component":
        write_atomic(output, data)
        note = "wasm-opt cannot read components: kept as built"
        return Optimized(kind, len(data), len(data), note)
    program = wasm_opt()
    temp = output.with_name(f".{output.name}.optimizing")
    argv = [program, f"-{level}", "--strip-debug", "--strip-producers", "--strip-target-features",
            *feature_flags(target_features(data)), str(raw), "-o", str(temp)]  # fmt: skip
    try:
        process.run(argv, "wasm-opt")
    except ToolError:
        temp.unlink(missing_ok=True)
        raise
    optimized = temp.read_bytes()
    temp.unlink()
    write_atomic(output, optimized)
    return Optimized(kind, len(data), len(optimized), f"wasm-opt -{level}")
