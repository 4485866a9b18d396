"""Running a guest's calls under hard limits with wasmtime (host mode), and with wasm3
too when the guest names it in `runtimes:` (wasm3host.py): any difference fails.

The guest is compiled here, through the user's compile cache (`codecache.py`); its
calls run in a call worker (`worker.py`), a child process the host kills when a call
outlives `max_ms`, wherever the call is. Each call gets a fresh store there, with its
memories, tables and instances bounded by `max_mem` (`bounds.py`), see `calls.py`.
"""

from __future__ import annotations

import json
import time
import weakref
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import wasmtime

from syntra import telemetry
from syntra.errors import SyntraError, did_you_mean
from syntra.oci.digest import read_named
from syntra.plugins.binary import kind_of, unnamed_signature
from syntra.plugins.bounds import bounds, census
from syntra.plugins.calls import (
    CallResult,
    GuestFailure,
    Setup,
    check_imports,
    engine,
    exports_of,
    stopped_by_time,
    where,
)
from syntra.plugins.codecache import compiled
from syntra.plugins.values import close_enough
from syntra.plugins.worker import Ended, Worker, ended_by
from syntra.redaction import redact

__all__ = [
    "RUNTIMES",
    "CallResult",
    "GuestFailure",
    "Runtime",
    "Sandbox",
    "open_runtime",
    "run_tests",
]

if TYPE_CHECKING:
    from syntra.plan import GuestPlan


def grace_seconds(max_ms: int) -> float:
    """How long past `max_ms` the host waits for the worker to report the limit itself
    (a guest in wasm code traps on time) before killing it."""
    return 0.2 + max_ms / 10_000


class Sandbox:
    """One guest, compiled once; its calls run in a worker, each in a fresh store, so a
    trap leaves nothing behind for the next call."""

    def __init__(self, name: str, wasm: Path, limits: Mapping[str, Any], cache: Path) -> None:
        self.name = name
        data = read_named(wasm)  # a cached blob is checked in the read that loads it
        try:
            self.kind = kind_of(data)
        except ValueError as exc:
            raise SyntraError(f"{wasm}: {exc}") from None
        if self.kind == "module" and (why := unnamed_signature(data)):
            raise SyntraError(f"{wasm}: cannot be called here: {why}")
        fuel = limits.get("fuel")
        max_mem = int(limits["max_mem"])
        self.engine = engine(fuel is not None)
        started = time.perf_counter()
        try:
            code = compiled(self.engine, data, self.kind, cache, fuel is not None)
        except wasmtime.WasmtimeError as exc:
            raise SyntraError(f"wasmtime cannot load it: {exc}") from None
        self.compile_ms = (time.perf_counter() - started) * 1000
        self.code, self.cache_hit, self._serialized = code.code, code.cached, code.serialized
        if self.kind == "module":
            check_imports(self.code)
        self.setup = Setup(
            self.kind, max_mem, int(limits["max_ms"]), int(fuel) if fuel is not None else None,
            bounds(max_mem, census(data)),
        )  # fmt: skip
        self._worker: Worker | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def exports(self) -> dict[str, str]:
        """Exported functions with their signatures, in WIT's spelling for components."""
        return exports_of(self.engine, self.code, self.kind)

    @telemetry.plugin_call
    def call(self, name: str, args: Sequence[Any]) -> CallResult:
        """Call `name` with JSON-like `args`, converted by its parameter types; stopped
        (GuestFailure) once it runs past `max_ms`, whatever it is doing."""
        if self._worker is None:
            self._worker = Worker(self.setup, self._serialized)
            self._finalizer = weakref.finalize(self, self._worker.stop)
        started = time.perf_counter()
        try:
            return self._worker.ask(name, list(args), self._seconds())
        except Ended as ended:
            elapsed = (time.perf_counter() - started) * 1000
            code = self._worker.process.returncode
            self.close()
            if ended.timed_out:
                raise GuestFailure(
                    stopped_by_time(name, args, self.setup.max_ms, elapsed)
                ) from None
            raise GuestFailure(f"{where(name, args)}: the call worker {ended_by(code)}") from None

    def close(self) -> None:
        """End the worker (the next call starts another)."""
        if self._finalizer is not None:
            self._finalizer()
        self._worker = self._finalizer = None

    def _seconds(self) -> float:
        return self.setup.max_ms / 1000 + grace_seconds(self.setup.max_ms)


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
        from syntra.plugins.wasm3host import Wasm3Sandbox

        return Wasm3Sandbox(name, wasm, limits, cache)
    return Sandbox(name, wasm, limits, cache)


def run_tests(guest: GuestPlan, wasm: Path, cache: Path) -> Iterator[CallResult]:
    """Every test call of `guest`, as each passes, under its first runtime; every other
    runtime must return the same, and write the same to stdout. A failure raises
    GuestFailure naming it."""
    with closing(each_test(guest, wasm, cache)) as tests:  # its runtimes end with the first failure
        for _, outcome in tests:
            if isinstance(outcome, SyntraError):
                raise outcome
            yield outcome


def each_test(
    guest: GuestPlan, wasm: Path, cache: Path
) -> Generator[tuple[dict[str, Any], CallResult | SyntraError]]:
    """Every test of `guest` with its own outcome: what it returned, or why it failed; a
    failing test does not stop the others (`syntra report` shows each)."""
    runtimes = [open_runtime(r, guest.name, wasm, guest.limits, cache) for r in guest.runtimes]
    try:
        for test in guest.tests:
            try:
                yield test, _one_test(guest, runtimes, test)
            except SyntraError as failed:
                yield test, failed
    finally:
        for each in runtimes:
            each.close()


def _one_test(guest: GuestPlan, runtimes: list[Runtime], test: dict[str, Any]) -> CallResult:
    first, *others = runtimes
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
        if again.stdout != result.stdout:
            raise GuestFailure(
                f"{shown}: the runtimes disagree: {guest.runtimes[0]} wrote "
                f"{redact(json.dumps(result.stdout[-200:]))}, {runtime} wrote "
                f"{redact(json.dumps(again.stdout[-200:]))}"
            )
    if "expect" in test and not close_enough(result.value, test["expect"], approx):
        raise GuestFailure(
            f"{shown} returned {json.dumps(result.value)}, "
            f"expected {json.dumps(test['expect'])}" + (f" (within {approx})" if approx else "")
        )
    return result
