"""What a guest may allocate in one call, from `max_mem` and what its binary declares.

wasmtime's store limits cap each linear memory and each table on its own, and the
number of memories, tables and instances. So the count of each is capped at what the
binary defines (every core module and nested component counted once: a second
instantiation of one is refused), and `max_mem` is shared out: each of M memories
gets `max_mem / M` bytes, so all of them together stay within `max_mem`; each of T
tables gets `max_mem / 8 / T` elements (8 bytes an element, as wasmtime counts them),
so the tables together stay within `max_mem` too.
"""

from __future__ import annotations

from dataclasses import dataclass

from syntra.errors import SyntraError
from syntra.plugins.binary import uleb128

TABLE_ELEMENT_BYTES = 8
# Section ids (core: memory, table; component: core module, core instance, component).
_MEMORY, _TABLE = 5, 4
_CORE_MODULE, _CORE_INSTANCE, _COMPONENT = 1, 2, 4


@dataclass(frozen=True)
class Census:
    """Linear memories, tables and core instances a guest's binary defines."""

    memories: int = 0
    tables: int = 0
    instances: int = 0

    def __add__(self, other: Census) -> Census:
        return Census(
            self.memories + other.memories,
            self.tables + other.tables,
            self.instances + other.instances,
        )


@dataclass(frozen=True)
class StoreBounds:
    """The arguments of `wasmtime.Store.set_limits`."""

    memory_size: int
    table_elements: int
    instances: int
    tables: int
    memories: int


def bounds(max_mem: int, census: Census) -> StoreBounds:
    memories, tables = max(census.memories, 1), max(census.tables, 1)
    return StoreBounds(
        memory_size=max_mem // memories,
        table_elements=max_mem // TABLE_ELEMENT_BYTES // tables,
        instances=max(census.instances, 1),
        tables=census.tables,
        memories=census.memories,
    )


def census(data: bytes) -> Census:
    """Count what `data` (a module or component wasmtime already accepted) defines."""
    try:
        return _walk(memoryview(data))
    except (IndexError, ValueError) as exc:
        raise SyntraError(f"not a WebAssembly binary wasmtime would accept ({exc})") from None


def _walk(data: memoryview) -> Census:
    component = bytes(data[4:8]) != b"\x01\x00\x00\x00"
    found, at = Census(), 8
    while at < len(data):
        section = data[at]
        size, at = uleb128(data, at + 1)
        body = data[at : at + size]
        if len(body) != size:
            raise ValueError("a section runs past the end")
        at += size
        if component and section in (_CORE_MODULE, _COMPONENT):
            found += _walk(body)
        elif component and section == _CORE_INSTANCE:
            found += Census(instances=uleb128(body, 0)[0])
        elif not component and section == _MEMORY:
            found += Census(memories=uleb128(body, 0)[0])
        elif not component and section == _TABLE:
            found += Census(tables=uleb128(body, 0)[0])
    return found + (Census() if component else Census(instances=1))
