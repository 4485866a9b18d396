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


_NAMED_TYPES = frozenset({0x7F, 0x7E, 0x7D, 0x7C, 0x70, 0x6F})
"""i32, i64, f32, f64, funcref, externref: the value types the host can name."""


def unnamed_signature(data: bytes) -> str | None:
    """Why a core module's function types hold a value the host cannot name (None when
    they do not). wasmtime's C API aborts the whole process when asked for the kind of a
    v128, so a module is checked here, from its bytes, before any type of it is read."""
    at = 8
    try:
        while at < len(data):
            section = data[at]
            size, at = uleb128(data, at + 1)
            if section != 1:  # the type section
                at += size
                continue
            count, cursor = uleb128(data, at)
            for _ in range(count):
                if data[cursor] != 0x60:
                    return "it declares types other than function types"
                cursor += 1
                for _ in ("params", "results"):
                    length, cursor = uleb128(data, cursor)
                    kinds = set(data[cursor : cursor + length])
                    cursor += length
                    if 0x7B in kinds:
                        return "a function takes or returns v128 (SIMD), which no host call can"
                    if not kinds <= _NAMED_TYPES:
                        return "a function takes or returns a reference type the host cannot"
            return None
    except IndexError:
        return "its type section runs past its end"
    return None


def _name(data: bytes, at: int) -> tuple[str, int]:
    size, at = uleb128(data, at)
    if at + size > len(data):
        raise IndexError("a name runs past the end")
    return data[at : at + size].decode(), at + size


def _sections(data: bytes) -> list[tuple[int, int, int]]:
    """(id, start, end) of each section of a core module."""
    found, at = [], 8
    while at < len(data):
        size, body = uleb128(data, at + 1)
        found.append((data[at], body, body + size))
        at = body + size
    return found


def local_names(data: bytes) -> dict[str, list[str]]:
    """The local names (parameters first) the module's `name` section records for each
    exported function, by export name; empty where it records none, or when the section
    is damaged (the names are optional: a guest's release build seldom has them)."""
    try:
        sections = _sections(data)
        exported: dict[int, list[str]] = {}
        for section, start, _ in sections:
            if section != 7:  # the export section
                continue
            count, at = uleb128(data, start)
            for _ in range(count):
                name, at = _name(data, at)
                kind, (index, at) = data[at], uleb128(data, at + 1)
                if kind == 0:  # a function
                    exported.setdefault(index, []).append(name)
        named: dict[str, list[str]] = {}
        for section, start, end in sections:
            if section != 0 or _name(data, start)[0] != "name":
                continue
            at = _name(data, start)[1]
            while at < end:
                kind, (size, at) = data[at], uleb128(data, at + 1)
                if kind == 2:  # local names
                    functions, cursor = uleb128(data, at)
                    for _ in range(functions):
                        index, cursor = uleb128(data, cursor)
                        count, cursor = uleb128(data, cursor)
                        locals_: dict[int, str] = {}
                        for _ in range(count):
                            local, cursor = uleb128(data, cursor)
                            locals_[local], cursor = _name(data, cursor)
                        listed = [locals_.get(n, "") for n in range(len(locals_))]
                        for export in exported.get(index, []):
                            named[export] = listed
                at += size
        return named
    except (IndexError, UnicodeDecodeError):
        return {}
