"""Traces and metrics of a run: the one span and metric API of the package.

Off unless asked for. With none of `OTEL_EXPORTER_OTLP_ENDPOINT`,
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` set and no
trace file (`syntra --trace FILE`, `SYNTRA_TRACE=FILE doit`), `span` gives a shared span
that does nothing and no OpenTelemetry module is imported. Otherwise `syntra.otel` loads
the SDK once: spans go through OTLP/HTTP and/or into a Chrome trace-event file
(`syntra.tracefile`), metrics through OTLP/HTTP.

Names follow the OpenTelemetry CI/CD conventions (`cicd.pipeline.*`); Syntra's own
attributes are `syntra.*` (cache outcome, bytes, digest, image, platform, guest).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import wraps
from pathlib import Path
from typing import Any, Protocol, TypeVar

Value = str | int | float | bool
Attributes = Mapping[str, Value | None]

ENDPOINT_ENV = (
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
)
TRACE_ENV = "SYNTRA_TRACE"
"""`SYNTRA_TRACE=FILE doit`: the run's spans as Chrome/Perfetto trace-event JSON."""


class Span(Protocol):
    def set(self, attributes: Attributes) -> None: ...

    def close(self, error: str | None = None, end_ns: int | None = None) -> None: ...


class _Null:
    """The span of a run nobody watches."""

    def set(self, attributes: Attributes) -> None:
        pass

    def close(self, error: str | None = None, end_ns: int | None = None) -> None:
        pass


NULL = _Null()


class Backend(Protocol):
    def open(
        self, name: str, attributes: Attributes, start_ns: int | None, current: bool
    ) -> Span: ...

    def open_run(self, name: str, attributes: Attributes) -> Span: ...

    def open_task(self, task: str, attributes: Attributes, start_ns: int | None) -> Span: ...

    def in_task(self, task: str) -> AbstractContextManager[None]: ...

    def annotate(self, attributes: Attributes) -> None: ...

    def record(self, metric: str, value: float, attributes: Attributes) -> None: ...

    def child_env(self) -> dict[str, str]: ...

    def finish(self) -> None: ...


_backend: Backend | None = None
_decided = False
_deciding = threading.Lock()
_trace_file: Path | None = None


def configure(trace_file: Path | None = None) -> None:
    """Ask for a trace file (`--trace`) before the first span; else `$SYNTRA_TRACE`. The
    variables are read again at the next span."""
    global _trace_file, _decided
    _trace_file = trace_file
    if _backend is None:
        _decided = False


def unwritable(path: Path) -> str | None:
    """Why the trace file cannot be written there, checked before the run starts."""
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            return None
    except OSError as exc:
        return f"{path}: cannot write the trace ({exc.strerror or exc})"


def trace_problem() -> str | None:
    """Why the trace file asked for (`--trace` or `$SYNTRA_TRACE`, alike) cannot be
    written: the run stops before it starts (exit 3), rather than lose its trace."""
    path = trace_file()
    return unwritable(path) if path is not None else None


def trace_file() -> Path | None:
    return _trace_file or (Path(os.environ[TRACE_ENV]) if os.environ.get(TRACE_ENV) else None)


def wanted() -> bool:
    """Whether this run is watched: an OTLP endpoint or a trace file."""
    if os.environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    return trace_file() is not None or any(os.environ.get(name) for name in ENDPOINT_ENV)


def _live() -> Backend | None:
    """The SDK-backed backend, loaded on first use when the run is watched."""
    global _backend, _decided
    if not _decided:
        with _deciding:  # the first span may come from any thread (a push's pool)
            if not _decided:
                if wanted():
                    from syntra.otel import SdkBackend

                    _backend = SdkBackend(trace_file())
                _decided = True
    return _backend


def open_run(command: str, run_id: str, argv: str) -> Span:
    """The span of a whole run (`RUN <command>`), the current one from now on, the root of
    its trace (unless `TRACEPARENT` names a parent) and the parent of every task span."""
    backend = _live()
    if backend is None:
        return NULL
    return backend.open_run(f"RUN {command}", run_attributes(command, run_id, argv))


def open_task(task: str, attributes: Attributes, start_ns: int | None = None) -> Span:
    """The span of a doit task, a child of the run's span, whichever thread or process
    opens it (doit's reporter) and whichever runs the task (`in_task`)."""
    backend = _live()
    return backend.open_task(task, attributes, start_ns) if backend else NULL


def in_task(task: str) -> AbstractContextManager[None]:
    """Makes the task's span the parent of what follows, in the thread or the forked
    worker process that runs the task (`doit -n N`): its builds, pushes, plugin calls."""
    backend = _live()
    return backend.in_task(task) if backend else nullcontext()


@contextmanager
def span(name: str, attributes: Attributes | None = None) -> Iterator[Span]:
    """A span around the block, the current one inside it; an exception ends it as an
    error (and goes on)."""
    backend = _live()
    if backend is None:
        yield NULL
        return
    opened = backend.open(name, attributes or {}, None, True)
    try:
        yield opened
    except BaseException as exc:
        opened.close(error=f"{type(exc).__name__}: {exc}")
        raise
    opened.close()


def run_attributes(command: str, run_id: str, argv: str) -> dict[str, Value | None]:
    """The run span's own attributes (CI/CD conventions): the pipeline's name is the
    command (low cardinality); its arguments are an attribute of their own, redacted."""
    from syntra.redaction import redact

    return {
        "cicd.pipeline.name": command,
        "cicd.pipeline.run.id": run_id,
        "cicd.pipeline.action.name": "RUN",
        "process.command_line": redact(argv),
    }


@contextmanager
def pipeline(command: str, argv: str) -> Iterator[Callable[[int], None]]:
    """The run's span around a whole command, the root of its trace (unless `TRACEPARENT`
    names a parent); the function given takes the exit code. Everything is exported
    when it ends."""
    if _live() is None:
        yield lambda code: None
        return
    import uuid

    run = open_run(command, uuid.uuid4().hex, argv)
    said = [0]
    try:
        yield lambda code: said.__setitem__(0, code)
    except BaseException as exc:
        said[0] = said[0] or 1
        run.set({"error.type": type(exc).__name__})
        raise
    finally:
        failed = said[0] != 0
        run.set({"cicd.pipeline.result": "failure" if failed else "success"})
        run.close(error=f"exit {said[0]}" if failed else None)
        finish()


def annotate(attributes: Attributes) -> None:
    """Attributes on the current span (a record's digest on the task that pushed it)."""
    backend = _live()
    if backend:
        backend.annotate(attributes)


def record(metric: str, value: float, attributes: Attributes | None = None) -> None:
    """A measurement of one of `syntra.otel.METRICS` (a counter adds, a histogram records)."""
    backend = _live()
    if backend:
        backend.record(metric, value, attributes or {})


def child_env(env: Mapping[str, str] | None) -> Mapping[str, str] | None:
    """`env` for a child process, with `TRACEPARENT` (W3C trace context) of the current
    span when the run is traced, so a tool that traces (buildx) joins the trace; `env`
    itself otherwise (None: the child inherits this environment)."""
    backend = _live()
    if backend is None:
        return env
    extra = backend.child_env()
    if not extra:
        return env
    return {**(os.environ if env is None else env), **extra}


def finish() -> None:
    """Export what is left and write the trace file; telemetry is off afterwards, until
    `configure` starts another run."""
    global _backend, _trace_file
    backend, _backend, _trace_file = _backend, None, None
    if backend:
        backend.finish()


class Measured(Protocol):
    """What a plugin call measured (`syntra.plugins.sandbox.CallResult`)."""

    @property
    def elapsed_ms(self) -> float: ...

    @property
    def fuel_used(self) -> int | None: ...

    @property
    def memory_bytes(self) -> int | None: ...


F = TypeVar("F", bound=Callable[..., Measured])


def plugin_call(method: F) -> F:
    """Around `Sandbox.call`: a span per plugin call, and its duration, fuel and memory
    as metrics, whichever way the plugin runs (`syntra run`, `syntra.plugins`, guest
    tests)."""

    @wraps(method)
    def traced(sandbox: Any, function: str, args: Any) -> Measured:
        if _live() is None:
            return method(sandbox, function, args)
        labels: dict[str, Value | None] = {
            "syntra.plugin": sandbox.name,
            "syntra.function": function,
        }
        with span(f"call {sandbox.name}.{function}", labels) as opened:
            try:
                result = method(sandbox, function, args)
            except Exception:
                record("syntra.plugin.calls", 1, {**labels, "syntra.outcome": "failed"})
                raise
            measured = {
                "syntra.plugin.duration": result.elapsed_ms,
                "syntra.plugin.fuel": result.fuel_used,
                "syntra.plugin.memory": result.memory_bytes,
            }
            opened.set(measured)
            record("syntra.plugin.calls", 1, {**labels, "syntra.outcome": "passed"})
            for metric, value in measured.items():
                if value is not None:
                    record(metric, value, labels)
        return result

    return traced  # type: ignore[return-value]
