"""wasm3, the second runtime: an interpreter, for core modules only.

Calls run in a worker process (wasm3child.py), so `max_ms` is enforced by stopping
it; `max_mem` is the maximum the worker writes into the module's memories. wasm3
cannot meter fuel and does not run components: both are refused, not ignored.
Types and exports come from the module as wasmtime reads it, so arguments are converted
exactly as under wasmtime.
"""

from __future__ import annotations

import json
import select
import subprocess
import time
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import wasmtime

from syntra.errors import SyntraError, did_you_mean
from syntra.oci.digest import read_named
from syntra.plugins.binary import kind_of_file, unnamed_signature
from syntra.plugins.calls import (
    BadCall,
    CallResult,
    GuestFailure,
    engine,
    exports_of,
    lower_args,
)
from syntra.plugins.codecache import compiled
from syntra.plugins.worker import spawn

STARTUP_S = 60.0
"""How long the worker may take to start and read the module (a loaded CI machine)."""


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()


class Wasm3Sandbox:
    """One core module under wasm3: a worker process, started at the first call and
    started again after a call it had to stop."""

    def __init__(self, name: str, wasm: Path, limits: Mapping[str, Any], cache: Path) -> None:
        self.name = name
        self.wasm = wasm
        self.kind = kind_of_file(wasm)
        self.limits = limits
        if self.kind == "component":
            raise SyntraError(f"{name}: wasm3 runs core modules only; this is a component")
        if limits.get("fuel") is not None:
            raise SyntraError(f"{name}: wasm3 cannot meter fuel: drop limits.fuel or wasm3")
        data = read_named(wasm)
        if why := unnamed_signature(data):
            raise SyntraError(f"{wasm}: cannot be called here: {why}")
        self.engine = engine(False)
        started = time.perf_counter()
        try:
            code = compiled(self.engine, data, "module", cache, False)
        except wasmtime.WasmtimeError as exc:
            raise SyntraError(f"not a valid module: {exc}") from None
        self.compile_ms = (time.perf_counter() - started) * 1000
        self.code, self.cache_hit = code.code, code.cached
        self._worker: subprocess.Popen[bytes] | None = None

    def exports(self) -> dict[str, str]:
        return exports_of(self.engine, self.code, self.kind)

    def close(self) -> None:
        if self._worker is not None:
            _stop(self._worker)
            self._worker = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self._worker is not None:
            return self._worker
        worker = spawn("syntra.plugins.wasm3child")
        weakref.finalize(self, _stop, worker)
        pages = int(self.limits["max_mem"] or 0) >> 16
        answer = _ask(worker, {"wasm": str(self.wasm.resolve()), "pages": pages}, STARTUP_S)
        if answer is None or "ready" not in answer:
            _stop(worker)
            said = answer.get("error") if answer else "it did not start"
            raise SyntraError(f"{self.name}: wasm3 cannot load it: {said}")
        self._worker = worker
        return worker

    def call(self, name: str, args: Sequence[Any]) -> CallResult:
        args = list(args)
        where = f"{name}({', '.join(map(str, args))})"
        ty = next(
            (e.type for e in self.code.exports
             if e.name == name and isinstance(e.type, wasmtime.FuncType)),
            None,
        )  # fmt: skip
        if ty is None:
            hint = did_you_mean(name, list(self.exports()))
            raise BadCall(f"no exported function '{name}'{hint}")
        lowered = lower_args(name, list(ty.params), args)
        worker = self._start()
        limit_ms = int(self.limits["max_ms"] or 0)
        started = time.perf_counter()
        answer = _ask(worker, {"call": name, "args": lowered}, limit_ms / 1000)
        elapsed = (time.perf_counter() - started) * 1000
        if answer is None and worker.poll() is not None:
            self.close()
            raise GuestFailure(f"{where}: the wasm3 worker ended (exit {worker.returncode})")
        if answer is None:
            self.close()
            raise GuestFailure(
                f"{where}: stopped by max_ms={limit_ms} after {elapsed:.0f} ms (wasm3)"
            )
        if "trap" in answer:
            used, max_mem = answer.get("memory"), int(self.limits["max_mem"] or 0)
            if used is not None and used >= max_mem:
                raise GuestFailure(f"{where}: stopped by max_mem={max_mem} bytes (wasm3)")
            raise GuestFailure(f"{where}: trapped under wasm3: {answer['trap']}")
        values = answer["value"]
        value = values[0] if len(values) == 1 else (values or None)
        return CallResult(name, args, value, float(answer["ms"]), answer.get("memory"), None)


def _ask(worker: subprocess.Popen[bytes], message: dict[str, Any], timeout: float) -> Any:
    """The worker's answer to `message`, or None when it gave none within `timeout`."""
    stdin, stdout = worker.stdin, worker.stdout
    assert stdin is not None and stdout is not None
    try:
        stdin.write(json.dumps(message).encode() + b"\n")
        stdin.flush()
    except BrokenPipeError:
        return None
    return _line(stdout, timeout)


def _line(stream: IO[bytes], timeout: float) -> Any:
    ready, _, _ = select.select([stream], [], [], timeout)
    line = stream.readline() if ready else b""
    return json.loads(line) if line else None
