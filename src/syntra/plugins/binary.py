"""What a WebAssembly binary is, from its header (a core module or a component), and the
LEB128 numbers its sections are written in."""

from __future__ import annotations

from pathlib import Path

MODULE_VERSION = b"\x01\x00\x00\x00"
COMPONENT_VERSION = b"\x0d\x00\x01\x00"


def kind_of(data: bytes) -> str:
    """'module' or 'component', from the header (bytes 4-7 after the `\\0asm` magic)."""
    if data[:4] != b"\x00asm":
        raise ValueError("not a WebAssembly binary")
    if data[4:8] == MODULE_VERSION:
        return "module"
    if data[4:8] == COMPONENT_VERSION:
        return "component"
    raise ValueError(f"unknown WebAssembly version {data[4:8].hex()}")


def kind_of_file(path: Path) -> str:
    with path.open("rb") as handle:
        return kind_of(handle.read(8))


def uleb128(data: bytes | memoryview, at: int) -> tuple[int, int]:
    """The unsigned LEB128 number at `at`: (value, offset after it). IndexError when
    the data ends inside it."""
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at
