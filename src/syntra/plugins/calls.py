"""One guest's calls inside the call worker (`worker.py`): a fresh store per call under
the limits, arguments and results converted by the function's types, and a failure
explained by the limit that stopped it or by wasmtime's own cause.

Every call's store has linear memory, tables and instances capped (`bounds.py`),
wall-clock time by epoch interruption (stops wasm code; a guest blocked in a host call
is stopped by the host, which ends the worker) and fuel when the guest sets it.
Components get WASI preview 2 with nothing to see (no files, no environment, no
arguments); core modules get Syntra's WASI preview 1 (`wasi.py`), the policy the wasm3
host and the browser shim give too, their stdout and stderr captured.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import wasmtime
import wasmtime.component as wc

from syntra.errors import SyntraError, ToolError, count, did_you_mean
from syntra.plugins.bounds import StoreBounds
from syntra.plugins.values import lift, lower, type_name
from syntra.plugins.wasi import MODULE, STDIO_LIMIT, Fault, GuestExit, Preview1, not_preview1, said
from syntra.redaction import redact


class GuestFailure(ToolError):
    """A call trapped, timed out, ran out of memory or fuel, or returned the wrong value
    (exit 3, as a failing test)."""


class BadCall(SyntraError):
    """The call does not fit the plugin: no such export, or the wrong number of
    arguments (exit 2, a usage error)."""


def lower_args(name: str, params: Sequence[Any], args: Sequence[Any]) -> list[Any]:
    """`args` (as JSON gives them) as the runtime wants them for `params`: BadCall for a
    wrong count, BadValue for a value its type cannot take."""
    if len(params) != len(args):
        shown = ", ".join(type_name(p) for p in params)
        raise BadCall(f"{name}({shown}) takes {count(len(params), 'argument')}, {len(args)} given")
    return [lower(t, v, f"{name} argument {n + 1}") for n, (t, v) in
            enumerate(zip(params, args, strict=True))]  # fmt: skip


@dataclass(frozen=True)
class CallResult:
    call: str
    args: list[Any]
    value: Any
    elapsed_ms: float
    memory_bytes: int | None
    """Linear memory at the end of the call (core modules; a component's is not visible)."""
    fuel_used: int | None
    stdout: str = ""
    """What the guest wrote to stdout during the call (its last STDIO_LIMIT bytes)."""


@dataclass(frozen=True)
class Setup:
    """What the worker needs besides the compiled code."""

    kind: str
    max_mem: int
    max_ms: int
    fuel: int | None
    bounds: StoreBounds


def engine(fuel: bool) -> wasmtime.Engine:
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.consume_fuel = fuel
    config.wasm_component_model = True
    return wasmtime.Engine(config)


def exports_of(engine: wasmtime.Engine, code: Any, kind: str) -> dict[str, str]:
    """Exported functions with their signatures, in WIT's spelling for components."""
    found = {}
    if kind == "component":
        for name, item in code.type.exports(engine).items():
            ty = item.ty
            if isinstance(ty, wc.FuncType):
                params = ", ".join(f"{p}: {type_name(t)}" for p, t in ty.params)
                result = f" -> {type_name(ty.result)}" if ty.result is not None else ""
                found[name] = f"func({params}){result}"
    else:
        for export in code.exports:
            if isinstance(export.type, wasmtime.FuncType):
                params = ", ".join(str(t) for t in export.type.params)
                results = ", ".join(str(t) for t in export.type.results)
                found[export.name] = f"func({params})" + (f" -> {results}" if results else "")
    return found


def check_imports(module: wasmtime.Module) -> None:
    """SyntraError for a module importing WASI functions that preview 1 does not have."""
    names = [i.name for i in module.imports if i.module == MODULE and i.name is not None]
    if unknown := not_preview1(names):
        shown = ", ".join(f"{MODULE}.{name}" for name in unknown)
        raise SyntraError(f"it imports {shown}, which WASI preview 1 does not have")


def guest_line(stderr: bytes | bytearray) -> str:
    """` (guest: …)`: the guest's own account of a failure for a one-line error (the
    host redacts it again: a call worker knows none of its secrets)."""
    told = redact(said(stderr))
    return f" (guest: {told})" if told else ""


def exited(name: str, args: Sequence[Any], code: int, stderr: bytes | bytearray) -> str:
    return f"{where(name, args)}: the guest exited with code {code}{guest_line(stderr)}"


class CallerMemory:
    """The calling instance's `memory` export, reached through wasmtime's Caller."""

    def __init__(self, caller: wasmtime.Caller) -> None:
        self.caller = caller
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise Fault("no memory")
        self.memory = memory

    def read(self, address: int, size: int) -> bytes:
        self._check(address, size)
        return bytes(self.memory.read(self.caller, address, address + size))

    def write(self, address: int, data: bytes) -> None:
        self._check(address, len(data))
        self.memory.write(self.caller, data, address)

    def _check(self, address: int, size: int) -> None:
        if address < 0 or size < 0 or address + size > self.memory.data_len(self.caller):
            raise Fault(f"{address}+{size} is outside the guest's memory")


def link_preview1(
    linker: wasmtime.Linker, module: wasmtime.Module, wasi: Preview1,
    callers: list[wasmtime.Caller],
) -> None:  # fmt: skip
    """Define in `linker` the preview 1 functions `module` imports, answered by `wasi`;
    each call's Caller is on `callers` while it runs (its memory is the guest's)."""
    for imported in module.imports:
        if imported.module != MODULE or not isinstance(imported.type, wasmtime.FuncType):
            continue
        function = wasi.function(str(imported.name))

        def host(caller: wasmtime.Caller, *args: Any, function: Any = function) -> Any:
            callers.append(caller)
            try:
                return function(*args)
            finally:
                callers.pop()

        linker.define_func(MODULE, str(imported.name), imported.type, host, access_caller=True)


def where(name: str, args: Sequence[Any]) -> str:
    return f"{name}({', '.join(map(str, args))})"


def stopped_by_time(name: str, args: Sequence[Any], max_ms: int, elapsed: float) -> str:
    return f"{where(name, args)}: stopped by max_ms={max_ms} after {elapsed:.0f} ms"


class Guest:
    """Compiled code (bytes the host serialised) and the limits of its calls."""

    def __init__(self, setup: Setup, serialized: bytes) -> None:
        self.setup = setup
        self.engine = engine(setup.fuel is not None)
        loader: Any = wc.Component if setup.kind == "component" else wasmtime.Module
        self.code = loader.deserialize(self.engine, serialized)

    def _store(self) -> wasmtime.Store:
        store = wasmtime.Store(self.engine)
        limits = self.setup.bounds
        store.set_limits(
            memory_size=limits.memory_size,
            table_elements=limits.table_elements,
            instances=limits.instances,
            tables=limits.tables,
            memories=limits.memories,
        )
        store.set_epoch_deadline(1)
        if self.setup.fuel is not None:
            store.set_fuel(self.setup.fuel)
        return store

    def _function(
        self, store: wasmtime.Store, name: str, stderr: Path, wasi: Preview1,
        callers: list[wasmtime.Caller],
    ) -> tuple[Any, Any]:  # fmt: skip
        """The callable export `name`, and the memory to measure (core modules)."""
        function: Any
        if self.setup.kind == "component":
            config = wasmtime.WasiConfig()
            config.stderr_file = str(stderr)  # the guest's own account of a failure
            store.set_wasi(config)
            linker = wc.Linker(self.engine)
            linker.add_wasip2()
            component = linker.instantiate(store, self.code)
            index = self.code.get_export_index(name)
            function = component.get_func(store, index) if index is not None else None
            memory = None
        else:
            core = wasmtime.Linker(self.engine)
            link_preview1(core, self.code, wasi, callers)
            exports = core.instantiate(store, self.code).exports(store)
            function = exports.get(name)
            memory = exports.get("memory")
            initialize = exports.get("_initialize")  # a WASI reactor's constructors
            if callable(initialize) and name != "_initialize":
                initialize(store)
        if not callable(function):
            hint = did_you_mean(name, list(exports_of(self.engine, self.code, self.setup.kind)))
            raise BadCall(f"no exported function '{name}'{hint}")
        return function, memory

    def _signature(self, store: wasmtime.Store, function: Any) -> tuple[list[Any], Any]:
        """(parameter types, result type) of a function export."""
        ty = function.type(store)
        if self.setup.kind == "component":
            return [t for _, t in ty.params], ty.result
        results = list(ty.results)
        return list(ty.params), results[0] if len(results) == 1 else None

    def call(self, name: str, args: Sequence[Any]) -> CallResult:
        """Call `name` with JSON-like `args`, converted by its parameter types."""
        store = self._store()
        timer = threading.Timer(self.setup.max_ms / 1000, self.engine.increment_epoch)
        started = time.perf_counter()
        timer.start()
        memory = None
        args = list(args)
        # A component's stderr, this call's own: not shared with another call or process.
        scratch = tempfile.TemporaryDirectory(prefix="syntra-call-")
        stderr = Path(scratch.name) / "stderr"
        callers: list[wasmtime.Caller] = []
        wasi = Preview1(lambda: CallerMemory(callers[-1]))
        try:
            function, memory = self._function(store, name, stderr, wasi, callers)
            params, result = self._signature(store, function)
            value = function(store, *lower_args(name, params, args))
        except GuestExit as exit:
            raise GuestFailure(exited(name, args, exit.code, wasi.stderr)) from None
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            elapsed = (time.perf_counter() - started) * 1000
            told = _tail(stderr) if self.setup.kind == "component" else bytes(wasi.stderr)
            used = memory.data_len(store) if memory is not None else None
            raise GuestFailure(self._explain(name, args, exc, elapsed, used, told)) from None
        finally:
            timer.cancel()
            scratch.cleanup()
        elapsed = (time.perf_counter() - started) * 1000
        used = memory.data_len(store) if memory is not None else None
        fuel = self.setup.fuel - store.get_fuel() if self.setup.fuel is not None else None
        lifted = lift(result, value) if result is not None else value
        stdout = bytes(wasi.stdout).decode(errors="replace")
        return CallResult(name, args, lifted, elapsed, used, fuel, stdout)

    def _explain(
        self, name: str, args: list[Any], exc: Exception, elapsed: float, used: int | None,
        stderr: bytes,
    ) -> str:  # fmt: skip
        """Which limit stopped the call, or the trap's cause: `used` is the memory in use
        (None: no memory), `stderr` the end of the guest's."""
        text = str(exc)
        max_mem = self.setup.max_mem
        if "interrupt" in text:
            return stopped_by_time(name, args, self.setup.max_ms, elapsed)
        if "fuel" in text:
            return f"{where(name, args)}: stopped by fuel={self.setup.fuel} (all fuel consumed)"
        if "exceeds table limits" in text or "count too high" in text:
            return f"{where(name, args)}: stopped by max_mem={max_mem} bytes ({_cause(text)})"
        if (
            "memory" in text.lower()
            or b"MemoryError" in stderr
            or (used is not None and used >= self.setup.bounds.memory_size)
        ):
            shown = f"{used} bytes in use" if used is not None else "an allocation was refused"
            return f"{where(name, args)}: stopped by max_mem={max_mem} bytes ({shown})"
        first = _cause(text) or type(exc).__name__
        return f"{where(name, args)}: trapped: {first}{guest_line(stderr)}"


def _cause(text: str) -> str:
    """wasmtime's own cause (`wasm trap: call stack exhausted`), not its backtrace."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    after = lines[lines.index("Caused by:") + 1 :] if "Caused by:" in lines else []
    return (after or [line for line in lines if "trap" in line.lower()] or lines or [""])[0]


def _tail(path: Path) -> bytes:
    """The end of a component's stderr file, where the account of a failure is, however
    much the guest wrote."""
    if not path.is_file():
        return b""
    with path.open("rb") as handle:
        handle.seek(max(0, path.stat().st_size - STDIO_LIMIT))
        return handle.read(STDIO_LIMIT)
