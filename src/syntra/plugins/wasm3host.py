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
    check_imports,
    engine,
    exited,
    exports_of,
    lower_args,
    where,
)
from syntra.plugins.codecache import compiled
from syntra.plugins.wasi import MODULE
from syntra.plugins.worker import EXIT_SECONDS, ended_by, spawn
from syntra.redaction import redact

STARTUP_S = 60.0
"""How long the worker may take to start and read the module (a loaded CI machine)."""
SIGNATURE = {"i32": "i", "i64": "I", "f32": "f", "f64": "F"}
"""pywasm3's letters for the value types of a linked function's signature."""


class Gone:
    """The worker closed its answers: it ended, by a signal or an exit code."""


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
        check_imports(self.code)
        self._wasi = [
            [str(i.name), _signature(i.type)] for i in self.code.imports
            if i.module == MODULE and isinstance(i.type, wasmtime.FuncType)
        ]  # fmt: skip
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
        setup = {"wasm": str(self.wasm.resolve()), "pages": pages, "wasi": self._wasi}
        answer = _ask(worker, setup, STARTUP_S)
        if not isinstance(answer, dict) or "ready" not in answer:
            _stop(worker)
            said = answer.get("error") if isinstance(answer, dict) else "it did not start"
            raise SyntraError(f"{self.name}: wasm3 cannot load it: {said}")
        self._worker = worker
        return worker

    def call(self, name: str, args: Sequence[Any]) -> CallResult:
        args = list(args)
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
        at = where(name, args)
        if isinstance(answer, Gone):
            death = _death(worker)  # before close(), which would kill it if still ending
            self.close()
            raise GuestFailure(f"{at}: {death}")
        if answer is None:
            self.close()
            raise GuestFailure(f"{at}: stopped by max_ms={limit_ms} after {elapsed:.0f} ms (wasm3)")
        if "failed" in answer:
            self.close()
            raise GuestFailure(f"{at}: the wasm3 worker failed: {redact(answer['failed'])}")
        told = f" (guest: {redact(answer['guest'])})" if answer.get("guest") else ""
        if "exit" in answer:
            raise GuestFailure(exited(name, args, int(answer["exit"]), b"") + told)
        if "trap" in answer:
            used, max_mem = answer.get("memory"), int(self.limits["max_mem"] or 0)
            if used is not None and used >= max_mem:
                raise GuestFailure(f"{at}: stopped by max_mem={max_mem} bytes (wasm3)")
            raise GuestFailure(f"{at}: trapped under wasm3: {answer['trap']}{told}")
        values = answer["value"]
        value = values[0] if len(values) == 1 else (values or None)
        memory, stdout = answer.get("memory"), answer.get("stdout", "")
        return CallResult(name, args, value, float(answer["ms"]), memory, None, stdout)


def _signature(ty: wasmtime.FuncType) -> str:
    """pywasm3's spelling of a function type: `i(iiii)`, `v(i)`."""
    results = "".join(SIGNATURE[str(t)] for t in ty.results) or "v"
    return f"{results}({''.join(SIGNATURE[str(t)] for t in ty.params)})"


def _death(worker: subprocess.Popen[bytes]) -> str:
    """How a worker that closed its answers ended: a signal by name or an exit code."""
    try:
        code = worker.wait(EXIT_SECONDS)
    except subprocess.TimeoutExpired:
        _stop(worker)
        return "the wasm3 worker stopped answering"
    return f"the wasm3 worker {ended_by(code)}"


def _ask(worker: subprocess.Popen[bytes], message: dict[str, Any], timeout: float) -> Any:
    """The worker's answer to `message`: None when it gave none within `timeout`, Gone
    when it closed its answers (it died)."""
    stdin, stdout = worker.stdin, worker.stdout
    assert stdin is not None and stdout is not None
    try:
        stdin.write(json.dumps(message).encode() + b"\n")
        stdin.flush()
    except BrokenPipeError:
        return Gone()
    return _line(stdout, timeout)


def _line(stream: IO[bytes], timeout: float) -> Any:
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        return None
    line = stream.readline()
    return json.loads(line) if line else Gone()
