"""The wasm3 worker: a separate process (standard library, pywasm3 and Syntra's WASI
policy, `wasi.py`, only) that a `Wasm3Sandbox` sends calls to, one JSON line each, and
kills when `max_ms` is over (wasm3 cannot interrupt a running call).

First line in: `{"wasm": PATH, "pages": N, "wasi": [[NAME, SIGNATURE], ...]}`. The
module's memories get a maximum of N pages (64 KiB each), so `memory.grow` past `max_mem`
fails inside the guest, as wasmtime's store limit makes it fail; its WASI preview 1
imports (pywasm3's signatures, `i(iiii)`) are linked to the policy's functions. Then per
call: `{"call": NAME, "args": [...]}` → `{"value": [...], "memory": BYTES, "ms": F,
"stdout": TEXT}`, `{"trap": TEXT, "memory": BYTES, "guest": TEXT}`, `{"exit": CODE,
"guest": TEXT}` or, should the worker itself fail, `{"failed": TEXT}`. Each call gets a
fresh runtime; `_initialize` (a WASI reactor's) runs first when the module has one.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from syntra.plugins.wasi import MODULE, Fault, GuestExit, Preview1, said

STACK_BYTES = 1 << 20
NATIVE_STACK_BYTES = 64 << 20
"""The calls' thread's own stack: wasm3 recurses on it for every wasm call, so with the
main thread's 8 MiB a deep recursion overflows it (SIGSEGV) before wasm3's STACK_BYTES
runs out; with this much, wasm3 traps (`stack overflow`) as wasmtime does."""
PAGE = 64 << 10


def _uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        value |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return value, pos


def _leb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def cap_memory(wasm: bytes, pages: int) -> bytes:
    """`wasm` with every memory's maximum lowered to `pages`; ValueError when a memory
    needs more than that at the start, or is shared or 64-bit."""
    out, pos = bytearray(wasm[:8]), 8
    while pos < len(wasm):
        size, body = _uleb(wasm, pos + 1)
        end = body + size
        if wasm[pos] != 5:  # not the memory section
            out += wasm[pos:end]
            pos = end
            continue
        count, at = _uleb(wasm, body)
        entries = bytearray(_leb(count))
        for _ in range(count):
            flags = wasm[at]
            if flags & ~1:
                raise ValueError("shared and 64-bit memories are not supported")
            minimum, at = _uleb(wasm, at + 1)
            maximum = pages
            if flags & 1:
                declared, at = _uleb(wasm, at)
                maximum = min(declared, pages)
            if minimum > maximum:
                raise ValueError(f"its memory starts at {minimum * PAGE} bytes, over max_mem")
            entries += b"\x01" + _leb(minimum) + _leb(maximum)
        out += b"\x05" + _leb(len(entries)) + entries
        pos = end
    return bytes(out)


def _memory(runtime: Any) -> int | None:
    """The size of the module's memory; None when it has none (pywasm3 then raises
    RuntimeError or TypeError)."""
    try:
        return len(runtime.get_memory(0))
    except (RuntimeError, TypeError):
        return None


class LinearMemory:
    """The runtime's memory 0 as the WASI policy reads and writes it."""

    def __init__(self, runtime: Any) -> None:
        try:
            self.view = runtime.get_memory(0)
        except (RuntimeError, TypeError):
            raise Fault("no memory") from None
        if self.view is None:
            raise Fault("no memory")

    def read(self, address: int, size: int) -> bytes:
        self._check(address, size)
        return bytes(self.view[address : address + size])

    def write(self, address: int, data: bytes) -> None:
        self._check(address, len(data))
        self.view[address : address + len(data)] = data

    def _check(self, address: int, size: int) -> None:
        if address < 0 or size < 0 or address + size > len(self.view):
            raise Fault(f"{address}+{size} is outside the guest's memory")


def _call(env: Any, wasm: bytes, imports: list[list[str]], request: Any) -> dict[str, Any]:
    """One call in a fresh runtime: its answer."""
    runtime = env.new_runtime(STACK_BYTES)
    wasi = Preview1(lambda: LinearMemory(runtime))
    try:
        module = env.parse_module(wasm)
        runtime.load(module)
        for name, signature in imports:
            module.link_function(MODULE, name, signature, wasi.function(name))
        try:
            runtime.find_function("_initialize")()
        except RuntimeError as exc:
            if "function lookup failed" not in str(exc):
                raise
        function = runtime.find_function(request["call"])
        started = time.perf_counter()
        value = function(*request["args"])
        elapsed = (time.perf_counter() - started) * 1000
    except GuestExit as exit:
        return {"exit": exit.code, "guest": said(wasi.stderr)}
    except RuntimeError as exc:
        return {"trap": str(exc), "memory": _memory(runtime), "guest": said(wasi.stderr)}
    values = list(value) if isinstance(value, tuple) else [] if value is None else [value]
    stdout = bytes(wasi.stdout).decode(errors="replace")
    return {"value": values, "memory": _memory(runtime), "ms": elapsed, "stdout": stdout}


def serve(lines: Any, reply: Any) -> None:
    setup = json.loads(next(lines))
    try:
        import wasm3
    except ImportError:
        reply({"error": "pywasm3 is not installed (pip install pywasm3)"})
        return
    with open(setup["wasm"], "rb") as handle:
        wasm = handle.read()
    env = wasm3.Environment()
    try:
        wasm = cap_memory(wasm, int(setup["pages"]))
        env.parse_module(wasm)
    except (ValueError, IndexError, RuntimeError) as exc:
        reply({"error": str(exc) or type(exc).__name__})
        return
    reply({"ready": True})
    for line in lines:
        request = json.loads(line)
        try:
            reply(_call(env, wasm, setup.get("wasi", []), request))
        except Exception as exc:  # the worker's own failure, not the guest's: one line
            reply({"failed": f"{type(exc).__name__}: {exc}"})


def _reply(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    threading.stack_size(NATIVE_STACK_BYTES)
    calls = threading.Thread(target=serve, args=(iter(sys.stdin.readline, ""), _reply))
    calls.start()
    calls.join()
