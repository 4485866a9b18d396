"""Running a guest's test calls under hard limits with wasmtime (host mode), and with
wasm3 too when the guest names it in `runtimes:` (wasm3host.py): any difference fails.

Each call gets a fresh store: linear memory capped by store limits, wall-clock time
by epoch interruption (a timer bumps the engine's epoch when `max_ms` is over),
and fuel when the guest sets it. Components get WASI preview 2 with nothing to
see: no files, no environment, no arguments. Compiled code is cached under
the wasm cache (`layout.wasm_cache`), keyed by the wasm digest and the wasmtime version.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, Protocol

import wasmtime
import wasmtime.component as wc

from syntra.errors import SyntraError, count, did_you_mean
from syntra.fsutil import write_atomic
from syntra.plan import GuestPlan
from syntra.wasm import kind_of_file
from syntra.wasm.values import close_enough, lift, lower, type_name


@dataclass(frozen=True)
class CallResult:
    call: str
    args: list[Any]
    value: Any
    elapsed_ms: float
    memory_bytes: int | None
    """Linear memory at the end of the call (core modules; a component's is not visible)."""
    fuel_used: int | None


class GuestFailure(SyntraError):
    """A call trapped, timed out, ran out of memory or fuel, or returned the wrong value."""


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


def compiled(
    engine: wasmtime.Engine, path: Path, kind: str, cache: Path, fuel: bool
) -> tuple[Any, bool]:
    """The module or component, from the compile cache when this exact code was compiled
    before. Deserialising machine code is only safe for bytes we wrote: each entry is
    stored with the SHA-256 of its bytes, checked before loading; a damaged entry (or one
    wasmtime refuses) is compiled again and replaced, and says so in one line. Returns
    the code and whether it came from the cache."""
    data = path.read_bytes()
    key = _cache_key(data, fuel)
    cached, seal = cache / f"{key}.cwasm", cache / f"{key}.cwasm.sha256"
    loader = wc.Component if kind == "component" else wasmtime.Module
    if cached.is_file():
        stored = cached.read_bytes()
        sealed = seal.read_text().strip() if seal.is_file() else ""
        if hashlib.sha256(stored).hexdigest() == sealed:
            try:
                return loader.deserialize(engine, stored), True
            except wasmtime.WasmtimeError:
                pass
        print(f"compile cache: {cached.name} was damaged; compiling again", file=sys.stderr)
    code = loader(engine, data) if kind == "module" else wc.Component(engine, data)
    serialized = bytes(code.serialize())
    try:
        write_atomic(cached, serialized)
        write_atomic(seal, hashlib.sha256(serialized).hexdigest().encode())
    except OSError as exc:  # a read-only cache: run without it
        print(f"compile cache: cannot write {cache} ({exc.strerror}); not cached", file=sys.stderr)
    return code, False


class Sandbox:
    """One guest, compiled once; every call gets a fresh store under the limits, so a
    trap leaves nothing behind for the next call."""

    def __init__(self, name: str, wasm: Path, limits: Mapping[str, Any], cache: Path) -> None:
        self.name = name
        self.kind = kind_of_file(wasm)
        self.limits = limits
        self.fuel = limits.get("fuel")
        self.engine = _engine(self.fuel is not None)
        started = time.perf_counter()
        try:
            self.code, self.cache_hit = compiled(
                self.engine, wasm, self.kind, cache, self.fuel is not None
            )
        except wasmtime.WasmtimeError as exc:
            raise SyntraError(f"wasmtime cannot load it: {exc}") from None
        self.compile_ms = (time.perf_counter() - started) * 1000

    def _store(self) -> wasmtime.Store:
        store = wasmtime.Store(self.engine)
        store.set_limits(memory_size=int(self.limits["max_mem"] or 0))
        store.set_epoch_deadline(1)
        if self.fuel is not None:
            store.set_fuel(int(self.fuel))
        return store

    def _function(self, store: wasmtime.Store, name: str, stderr: Path) -> tuple[Any, Any]:
        """The callable export `name`, and the memory to measure (core modules)."""
        function: Any
        if self.kind == "component":
            wasi = wasmtime.WasiConfig()
            wasi.stderr_file = str(stderr)  # the guest's own account of a failure
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
            initialize = exports.get("_initialize")  # a WASI reactor's constructors
            if callable(initialize) and name != "_initialize":
                initialize(store)
        if not callable(function):
            hint = did_you_mean(name, list(self.exports()))
            raise GuestFailure(f"no exported function '{name}'{hint}")
        return function, memory

    def exports(self) -> dict[str, str]:
        """Exported functions with their signatures, in WIT's spelling for components."""
        found = {}
        if self.kind == "component":
            for name, item in self.code.type.exports(self.engine).items():
                ty = item.ty
                if isinstance(ty, wc.FuncType):
                    params = ", ".join(f"{p}: {type_name(t)}" for p, t in ty.params)
                    result = f" -> {type_name(ty.result)}" if ty.result is not None else ""
                    found[name] = f"func({params}){result}"
            return found
        return core_exports(self.code)

    def close(self) -> None:
        """Nothing to release: each call's store is gone when the call is."""

    def _signature(self, store: wasmtime.Store, function: Any) -> tuple[list[Any], Any]:
        """(parameter types, result type) of a function export."""
        ty = function.type(store)
        if self.kind == "component":
            return [t for _, t in ty.params], ty.result
        results = list(ty.results)
        return list(ty.params), results[0] if len(results) == 1 else None

    def call(self, name: str, args: Sequence[Any]) -> CallResult:
        """Call `name` with JSON-like `args`, converted by its parameter types."""
        store = self._store()
        limit_ms = int(self.limits["max_ms"] or 0)
        timer = threading.Timer(limit_ms / 1000, self.engine.increment_epoch)
        started = time.perf_counter()
        timer.start()
        memory = None
        args = list(args)
        # The guest's stderr, this call's own: not in the cache (it may be read-only),
        # not shared with another call or process.
        scratch = tempfile.TemporaryDirectory(prefix="syntra-call-")
        stderr = Path(scratch.name) / "stderr"
        try:
            function, memory = self._function(store, name, stderr)
            params, result = self._signature(store, function)
            if len(params) != len(args):
                shown = ", ".join(type_name(p) for p in params)
                raise GuestFailure(
                    f"{name}({shown}) takes {count(len(params), 'argument')}, {len(args)} given"
                )
            lowered = [lower(t, v, f"{name} argument {n + 1}") for n, (t, v) in
                       enumerate(zip(params, args, strict=True))]  # fmt: skip
            value = function(store, *lowered)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            elapsed = (time.perf_counter() - started) * 1000
            said = stderr.read_text(errors="replace") if stderr.is_file() else ""
            raise GuestFailure(
                self._explain(name, args, exc, elapsed, memory, store, said)
            ) from None
        finally:
            timer.cancel()
            scratch.cleanup()
        elapsed = (time.perf_counter() - started) * 1000
        used = memory.data_len(store) if memory is not None else None
        fuel = int(self.fuel) - store.get_fuel() if self.fuel is not None else None
        lifted = lift(result, value) if result is not None else value
        return CallResult(name, args, lifted, elapsed, used, fuel)

    def _explain(
        self, name: str, args: list[Any], exc: Exception, elapsed: float, memory: Any,
        store: Any, said: str,
    ) -> str:  # fmt: skip
        """Which limit stopped the call, or the trap's cause; `said` is the guest's stderr."""
        where = f"{name}({', '.join(map(str, args))})"
        text = str(exc)
        max_mem = int(self.limits["max_mem"] or 0)
        if "interrupt" in text:
            return f"{where}: stopped by max_ms={self.limits['max_ms']} after {elapsed:.0f} ms"
        if "fuel" in text:
            return f"{where}: stopped by fuel={self.fuel} (all fuel consumed)"
        used = memory.data_len(store) if memory is not None else None
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


def core_exports(module: wasmtime.Module) -> dict[str, str]:
    """A core module's exported functions with their signatures."""
    found = {}
    for export in module.exports:
        if isinstance(export.type, wasmtime.FuncType):
            params = ", ".join(str(t) for t in export.type.params)
            results = ", ".join(str(t) for t in export.type.results)
            found[export.name] = f"func({params})" + (f" -> {results}" if results else "")
    return found


class Runtime(Protocol):
    """What a runtime gives the tests, `syntra run` and `syntra.plugins`."""

    kind: str
    compile_ms: float
    cache_hit: bool

    def exports(self) -> dict[str, str]: ...

    def call(self, name: str, args: Sequence[Any]) -> CallResult: ...

    def close(self) -> None: ...


RUNTIMES = ("wasmtime", "wasm3")


def open_runtime(
    runtime: str, name: str, wasm: Path, limits: Mapping[str, Any], cache: Path
) -> Runtime:
    """`wasm` loaded in `runtime` (one of RUNTIMES) under `limits`."""
    if runtime not in RUNTIMES:
        raise SyntraError(f"unknown runtime '{runtime}'{did_you_mean(runtime, list(RUNTIMES))}")
    if runtime == "wasm3":
        from syntra.wasm.wasm3host import Wasm3Sandbox

        return Wasm3Sandbox(name, wasm, limits, cache)
    return Sandbox(name, wasm, limits, cache)


def run_tests(guest: GuestPlan, wasm: Path, cache: Path) -> Iterator[CallResult]:
    """Every test call of `guest`, as each passes, under its first runtime; every other
    runtime must return the same. A failure raises GuestFailure naming it."""
    first, *others = [open_runtime(r, guest.name, wasm, guest.limits, cache)
                      for r in guest.runtimes]  # fmt: skip
    try:
        for test in guest.tests:
            result = first.call(test["call"], test.get("args", []))
            shown = f"{test['call']}({', '.join(json.dumps(a) for a in result.args)})"
            approx = test.get("approx")
            for runtime, other in zip(guest.runtimes[1:], others, strict=True):
                again = other.call(test["call"], result.args)
                if not close_enough(again.value, result.value, approx):
                    raise GuestFailure(
                        f"{shown}: the runtimes disagree: {guest.runtimes[0]} returned "
                        f"{json.dumps(result.value)}, {runtime} returned {json.dumps(again.value)}"
                    )
            if "expect" in test and not close_enough(result.value, test["expect"], approx):
                raise GuestFailure(
                    f"{shown} returned {json.dumps(result.value)}, "
                    f"expected {json.dumps(test['expect'])}"
                    + (f" (within {approx})" if approx else "")
                )
            yield result
    finally:
        for other in others:
            other.close()


def _cause(text: str) -> str:
    """wasmtime's own cause (`wasm trap: call stack exhausted`), not its backtrace."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    after = lines[lines.index("Caused by:") + 1 :] if "Caused by:" in lines else []
    return (after or [line for line in lines if "trap" in line.lower()] or lines or [""])[0]
