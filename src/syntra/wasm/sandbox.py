"""Running a guest's test calls under hard limits with wasmtime (host mode).

Each call gets a fresh store: linear memory capped by store limits, wall-clock time
by epoch interruption (a timer bumps the engine's epoch when `max_ms` is over),
and fuel when the guest sets it. Components get WASI preview 2 with nothing to
see: no files, no environment, no arguments. Compiled code is cached under
.syntra/wasm-cache, keyed by the wasm digest and the wasmtime version.
"""

from __future__ import annotations

import hashlib
import platform
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import wasmtime
import wasmtime.component as wc

from syntra.errors import SyntraError, did_you_mean
from syntra.fsutil import write_atomic
from syntra.plan import GuestPlan
from syntra.wasm import kind_of_file


@dataclass(frozen=True)
class CallResult:
    call: str
    args: list[Any]
    value: Any
    elapsed_ms: float
    memory_bytes: int


class GuestFailure(SyntraError):
    """A test call trapped, timed out, ran out of memory or fuel, or returned the wrong value."""


def _engine(fuel: bool) -> wasmtime.Engine:
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = fuel
    config.wasm_component_model = True
    return wasmtime.Engine(config)


def _cache_key(wasm: bytes, fuel: bool) -> str:
    target = f"{platform.system()}-{platform.machine()}"
    stamp = f"wasmtime {version('wasmtime')} fuel={fuel} target={target}".encode()
    return hashlib.sha256(hashlib.sha256(wasm).digest() + stamp).hexdigest()


def compiled(engine: wasmtime.Engine, path: Path, kind: str, cache: Path, fuel: bool) -> Any:
    """The module or component, from the compile cache when this exact code was compiled
    before. Deserialising machine code is only safe for bytes we wrote: each entry is
    stored with the SHA-256 of its bytes, checked before loading; a damaged entry (or one
    wasmtime refuses) is compiled again and replaced, and says so in one line."""
    data = path.read_bytes()
    key = _cache_key(data, fuel)
    cached, seal = cache / f"{key}.cwasm", cache / f"{key}.cwasm.sha256"
    loader = wc.Component if kind == "component" else wasmtime.Module
    if cached.is_file():
        stored = cached.read_bytes()
        sealed = seal.read_text().strip() if seal.is_file() else ""
        if hashlib.sha256(stored).hexdigest() == sealed:
            try:
                return loader.deserialize(engine, stored)
            except wasmtime.WasmtimeError:
                pass
        print(f"compile cache: {cached.name} was damaged; compiling again", file=sys.stderr)
    code = loader(engine, data) if kind == "module" else wc.Component(engine, data)
    serialized = bytes(code.serialize())
    write_atomic(cached, serialized)
    write_atomic(seal, hashlib.sha256(serialized).hexdigest().encode())
    return code


class Sandbox:
    def __init__(self, guest: GuestPlan, wasm: Path, cache: Path) -> None:
        self.guest = guest
        self.stderr = cache / f"{guest.name}.stderr"
        self.kind = kind_of_file(wasm)
        self.limits = guest.limits
        self.fuel = self.limits.get("fuel")
        self.engine = _engine(self.fuel is not None)
        try:
            self.code = compiled(self.engine, wasm, self.kind, cache, self.fuel is not None)
        except wasmtime.WasmtimeError as exc:
            raise SyntraError(f"wasmtime cannot load it: {exc}") from None

    def _store(self) -> wasmtime.Store:
        store = wasmtime.Store(self.engine)
        store.set_limits(memory_size=int(self.limits["max_mem"] or 0))
        store.set_epoch_deadline(1)
        if self.fuel is not None:
            store.set_fuel(int(self.fuel))
        return store

    def _function(self, store: wasmtime.Store, name: str) -> tuple[Any, Any]:
        """The callable export `name`, and the memory to measure (core modules)."""
        function: Any
        if self.kind == "component":
            wasi = wasmtime.WasiConfig()
            self.stderr.parent.mkdir(parents=True, exist_ok=True)
            self.stderr.write_bytes(b"")
            wasi.stderr_file = str(self.stderr)  # the guest's own account of a failure
            store.set_wasi(wasi)
            linker = wc.Linker(self.engine)
            linker.add_wasip2()
            component = linker.instantiate(store, self.code)
            index = self.code.get_export_index(name)
            function = component.get_func(store, index) if index is not None else None
            memory = None
        else:
            exports = wasmtime.Instance(store, self.code, []).exports(store)
            function = exports.get(name)
            memory = exports.get("memory")
        if function is None:
            hint = did_you_mean(name, self.export_names(store))
            raise GuestFailure(f"no exported function '{name}'{hint}")
        return function, memory

    def export_names(self, store: wasmtime.Store) -> list[str]:
        if self.kind == "component":
            return list(self.code.type.exports(self.engine))
        return [export.name for export in self.code.exports]

    @staticmethod
    def check_arity(store: wasmtime.Store, function: Any, name: str, args: list[Any]) -> None:
        params = function.type(store).params
        if len(params) != len(args):
            shown = ", ".join(str(p[0]) if isinstance(p, tuple) else str(p) for p in params)
            raise GuestFailure(
                f"{name}({shown}) takes {len(params)} argument{'' if len(params) == 1 else 's'}, "
                f"the test gives {len(args)}"
            )

    def call(self, name: str, args: list[Any]) -> CallResult:
        store = self._store()
        limit_ms = int(self.limits["max_ms"] or 0)
        timer = threading.Timer(limit_ms / 1000, self.engine.increment_epoch)
        started = time.perf_counter()
        timer.start()
        memory = None
        try:
            function, memory = self._function(store, name)
            self.check_arity(store, function, name, args)
            value = function(store, *args)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            elapsed = (time.perf_counter() - started) * 1000
            raise GuestFailure(self._explain(name, args, exc, elapsed, memory, store)) from None
        finally:
            timer.cancel()
        elapsed = (time.perf_counter() - started) * 1000
        used = memory.data_len(store) if memory is not None else 0
        return CallResult(name, args, value, elapsed, used)

    def _explain(
        self, name: str, args: list[Any], exc: Exception, elapsed: float, memory: Any, store: Any
    ) -> str:
        where = f"{name}({', '.join(map(str, args))})"
        text = str(exc)
        max_mem = int(self.limits["max_mem"] or 0)
        if "interrupt" in text:
            return f"{where}: stopped by max_ms={self.limits['max_ms']} after {elapsed:.0f} ms"
        if "fuel" in text:
            return f"{where}: stopped by fuel={self.fuel} (all fuel consumed)"
        used = memory.data_len(store) if memory is not None else None
        said = self._guest_said()
        if (
            "memory" in text.lower()
            or "MemoryError" in said
            or (used is not None and used >= max_mem)
        ):
            shown = f"{used} bytes in use" if used is not None else "an allocation was refused"
            return f"{where}: stopped by max_mem={max_mem} bytes ({shown})"
        first = _cause(text) or type(exc).__name__
        reason = next((line for line in said.splitlines() if "Error" in line), "")
        return f"{where}: trapped: {first}" + (
            f" (guest: {reason.strip()[:200]})" if reason else ""
        )

    def _guest_said(self) -> str:
        """What the guest wrote to stderr for this call (empty for core modules)."""
        return self.stderr.read_text(errors="replace") if self.stderr.is_file() else ""


def run_tests(guest: GuestPlan, wasm: Path, cache: Path) -> Iterator[CallResult]:
    """Every test call of `guest`, as each passes; a failure raises GuestFailure naming it."""
    sandbox = Sandbox(guest, wasm, cache)
    for test in guest.tests:
        result = sandbox.call(test["call"], list(test["args"]))
        expected = test.get("expect")
        if expected is not None and result.value != expected:
            raise GuestFailure(
                f"{test['call']}({', '.join(map(str, test['args']))}) "
                f"returned {result.value}, expected {expected}"
            )
        yield result


def _cause(text: str) -> str:
    """wasmtime's own cause (`wasm trap: call stack exhausted`), not its backtrace."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    after = lines[lines.index("Caused by:") + 1 :] if "Caused by:" in lines else []
    return (after or [line for line in lines if "trap" in line.lower()] or lines or [""])[0]
