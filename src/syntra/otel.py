"""The OpenTelemetry SDK behind `syntra.telemetry`, imported only when a run is watched.

Spans go to OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` or `..._TRACES_ENDPOINT` is set
(the exporter reads its endpoint and headers from the standard variables), and to the
trace file when one is asked for; metrics go to OTLP/HTTP when an endpoint for them is
set. A `TRACEPARENT` in the environment (a CI system's trace, or a Syntra that started
this one) is the parent of the first span.

A collector that is down must not slow a build (`syntra.otlpexport`). doit's parallel
runs (`doit -n N`) fork worker processes: what a worker records goes back to the process
that started the run (`syntra.otelworkers`), exported once, with the rest, into OTLP and
the trace file alike.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import (
    SimpleSpanProcessor,
)
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from syntra.otelworkers import Annotated, Carried, Channel, Measured, Shipped
from syntra.otlpexport import (
    FINISH_BUDGET,
    REQUEST_TIMEOUT,
    Background,
    Collector,
    GuardedSpans,
    endpoint,
    exported,
    guarded_metrics,
    within,
)
from syntra.redaction import redact
from syntra.version import installed_version

Attributes = Mapping[str, str | int | float | bool | None]
"""`syntra.telemetry.Attributes` (this module is loaded by it, so it does not import it)."""

METRICS: dict[str, tuple[str, str, str]] = {
    "syntra.task.duration": ("histogram", "s", "Duration of a task (stage x artifact)"),
    "syntra.cache.outcomes": ("counter", "{task}", "Tasks by cache outcome (hit, executed)"),
    "syntra.transfer.bytes": ("counter", "By", "Bytes sent to registries"),
    "syntra.transfer.blobs": ("counter", "{blob}", "Blobs by outcome (uploaded, reused)"),
    "syntra.registry.retries": ("counter", "{retry}", "Registry requests tried again"),
    "syntra.plugin.calls": ("counter", "{call}", "Plugin calls by outcome"),
    "syntra.plugin.duration": ("histogram", "ms", "Duration of a plugin call"),
    "syntra.plugin.fuel": ("histogram", "{instruction}", "Fuel a plugin call consumed"),
    "syntra.plugin.memory": ("histogram", "By", "Linear memory at the end of a plugin call"),
}
_PROPAGATOR = TraceContextTextMapPropagator()
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


def _clean(attributes: Attributes) -> dict[str, Any]:
    return {key: value for key, value in attributes.items() if value is not None}


class _Ids(RandomIdGenerator):
    """Random ids, except a task's span: its id follows from the run's span and the task's
    name, so a forked worker knows the parent of what it does without being told."""

    def __init__(self) -> None:
        self.given: ContextVar[int | None] = ContextVar("syntra_span_id", default=None)

    def generate_span_id(self) -> int:
        return self.given.get() or super().generate_span_id()


def task_span_id(run: SpanContext, task: str) -> int:
    digest = hashlib.sha256(f"{run.span_id:016x}/{task}".encode()).digest()
    return int.from_bytes(digest[:8], "big") or 1


class _Route(SpanProcessor):
    """Each span notes the thread it started on (the trace file's tracks); an ended span
    goes to the exporters in the run's process, and through the channel from a worker."""

    def __init__(self, channel: Channel, local: list[SpanProcessor]) -> None:
        self.channel, self.local = channel, local

    def on_start(self, span: SdkSpan, parent_context: Any = None) -> None:
        current = threading.current_thread()
        span.set_attributes({"thread.id": current.ident or 0, "thread.name": current.name})
        if self.channel.forked():  # a worker's own track in the trace file
            span.set_attribute("process.pid", os.getpid())

    def on_end(self, span: ReadableSpan) -> None:
        if self.channel.forked():
            context = span.get_span_context()
            self.channel.send(
                Shipped(
                    name=span.name,
                    trace_id=context.trace_id if context else 0,
                    span_id=context.span_id if context else 0,
                    parent_id=span.parent.span_id if span.parent else None,
                    start=span.start_time,
                    end=span.end_time,
                    attributes=dict(span.attributes or {}),
                    status=span.status.status_code.value,
                    description=span.status.description,
                )
            )
            return
        for processor in self.local:
            processor.on_end(span)

    def shutdown(self) -> None:
        self.end(FINISH_BUDGET)

    def end(self, budget: float) -> bool:
        """Ends the exporters; whether the collector took the last spans within `budget`
        seconds (the trace file is written in any case)."""
        deadline, sent = time.monotonic() + budget, True
        for processor in self.local:
            left = max(0.0, deadline - time.monotonic())
            if isinstance(processor, Background):
                sent = processor.end(left)
            else:
                processor.shutdown()
        return sent

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class _Opened:
    def __init__(
        self, span: trace.Span, token: object | None, before_end: Callable[[], None] | None = None
    ) -> None:
        self.span, self.token, self.before_end = span, token, before_end

    def set(self, attributes: Attributes) -> None:
        self.span.set_attributes(_clean(attributes))

    def close(self, error: str | None = None, end_ns: int | None = None) -> None:
        if self.before_end is not None:
            self.before_end()
        if error:
            self.span.set_status(Status(StatusCode.ERROR, redact(error)))
        self.span.end(end_time=end_ns)
        if self.token is not None:
            otel_context.detach(self.token)  # type: ignore[arg-type]


class SdkBackend:
    def __init__(self, trace_file: Path | None) -> None:
        resource = Resource.create(
            {"service.name": "syntra", "service.version": installed_version()}
        )
        self.collector = Collector()
        local: list[SpanProcessor] = []
        if exported("TRACES"):
            local.append(Background(GuardedSpans(self.collector)))
        if trace_file is not None:
            from syntra.tracefile import TraceEventExporter

            local.append(SimpleSpanProcessor(TraceEventExporter(trace_file)))
        self.channel = Channel(self._delivered)
        self.route = _Route(self.channel, local)
        self.ids = _Ids()
        self.provider = TracerProvider(
            resource=resource, id_generator=self.ids, shutdown_on_exit=False
        )
        self.provider.add_span_processor(self.route)
        self.tracer = self.provider.get_tracer("syntra", installed_version())
        self.scope = InstrumentationScope("syntra", installed_version())
        self.meters: dict[str, Any] = {}
        self.meter_provider: Any = None
        if exported("METRICS"):
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import InMemoryMetricReader

            self.metric_reader = InMemoryMetricReader()  # sent once, when the run ends
            self.meter_provider = MeterProvider(
                resource=resource, metric_readers=[self.metric_reader], shutdown_on_exit=False
            )
        given = os.environ.get("TRACEPARENT")
        self.parent = _PROPAGATOR.extract({"traceparent": given}) if given else None
        self.run: SpanContext | None = None
        self.task: ContextVar[str | None] = ContextVar("syntra_task", default=None)
        self.notes: dict[str, dict[str, Any]] = {}
        """Attributes for a task's span, given where the task runs, set when it ends."""

    def open(
        self, name: str, attributes: Attributes, start_ns: int | None, current: bool
    ) -> _Opened:
        inside = trace.get_current_span().get_span_context().is_valid
        return self._start(name, attributes, start_ns, current, None if inside else self.parent)

    def _start(
        self,
        name: str,
        attributes: Attributes,
        start_ns: int | None,
        current: bool,
        parent: otel_context.Context | None,
        span_id: int | None = None,
    ) -> _Opened:
        given = self.ids.given.set(span_id)
        try:
            span = self.tracer.start_span(
                name, context=parent, attributes=_clean(attributes), start_time=start_ns
            )
        finally:
            self.ids.given.reset(given)
        token = otel_context.attach(trace.set_span_in_context(span)) if current else None
        return _Opened(span, token)

    def open_run(self, name: str, attributes: Attributes) -> _Opened:
        opened = self.open(name, attributes, None, True)
        self.run = opened.span.get_span_context()
        return opened

    def _task_context(self, task: str) -> SpanContext | None:
        if self.run is None:
            return None
        return SpanContext(self.run.trace_id, task_span_id(self.run, task), False, _SAMPLED)

    def open_task(self, task: str, attributes: Attributes, start_ns: int | None) -> _Opened:
        context = self._task_context(task)
        if context is None:
            return self.open(task, attributes, start_ns, False)
        assert self.run is not None
        run = trace.set_span_in_context(NonRecordingSpan(self.run))
        opened = self._start(task, attributes, start_ns, False, run, context.span_id)

        def noted() -> None:
            self.channel.settle()
            opened.span.set_attributes(self.notes.pop(task, {}))

        opened.before_end = noted
        return opened

    @contextmanager
    def in_task(self, task: str) -> Iterator[None]:
        context = self._task_context(task)
        if context is None:
            yield
            return
        token = otel_context.attach(trace.set_span_in_context(NonRecordingSpan(context)))
        named = self.task.set(task)
        try:
            yield
        finally:
            self.task.reset(named)
            otel_context.detach(token)

    def annotate(self, attributes: Attributes) -> None:
        """On the current span; when that is a task's (`in_task`), on the task's span where
        it is open: in this process, or the one that started the run."""
        task, current = self.task.get(), trace.get_current_span()
        context = self._task_context(task) if task else None
        if task is None or context is None or current.get_span_context() != context:
            current.set_attributes(_clean(attributes))
        elif self.channel.forked():
            self.channel.send(Annotated(task, _clean(attributes)))
        else:
            self.notes.setdefault(task, {}).update(_clean(attributes))

    def record(self, metric: str, value: float, attributes: Attributes) -> None:
        if self.meter_provider is None:
            return
        if self.channel.forked():
            self.channel.send(Measured(metric, value, _clean(attributes)))
            return
        instrument = self.meters.get(metric)
        if instrument is None:
            kind, unit, description = METRICS[metric]
            meter = self.meter_provider.get_meter("syntra", installed_version())
            make = meter.create_histogram if kind == "histogram" else meter.create_counter
            instrument = self.meters[metric] = make(metric, unit=unit, description=description)
        labels = _clean(attributes)
        if METRICS[metric][0] == "histogram":
            instrument.record(value, labels)
        else:
            instrument.add(value, labels)

    def _delivered(self, item: Carried) -> None:
        """What a forked worker sent, handled as if it happened here."""
        if isinstance(item, Measured):
            self.record(item.metric, item.value, item.attributes)
            return
        if isinstance(item, Annotated):
            self.notes.setdefault(item.task, {}).update(item.attributes)
            return
        context = SpanContext(item.trace_id, item.span_id, False, _SAMPLED)
        parent = (
            SpanContext(item.trace_id, item.parent_id, False, _SAMPLED)
            if item.parent_id is not None
            else None
        )
        span = ReadableSpan(
            name=item.name,
            context=context,
            parent=parent,
            resource=self.provider.resource,
            attributes=item.attributes,
            status=Status(StatusCode(item.status), item.description),
            start_time=item.start,
            end_time=item.end,
            instrumentation_scope=self.scope,
        )
        for processor in self.route.local:
            processor.on_end(span)

    def child_env(self) -> dict[str, str]:
        carrier: dict[str, str] = {}
        if trace.get_current_span().get_span_context().is_valid:
            _PROPAGATOR.inject(carrier)
        return {key.upper(): value for key, value in carrier.items()}

    def finish(self) -> None:
        """Export what is left within `FINISH_BUDGET`, and write the trace file. In a
        forked worker there is nothing to do: the run's process exports its spans."""
        if self.channel.forked():
            return
        deadline = time.monotonic() + FINISH_BUDGET
        self.channel.close()
        if not self.route.end(FINISH_BUDGET * 0.6):
            self.collector.failed(endpoint("TRACES"))  # no answer (or no name) in time
        if self.meter_provider is not None and not self.collector.down:
            measured = self.metric_reader.get_metrics_data()
            left = min(REQUEST_TIMEOUT, max(0.05, deadline - time.monotonic()))
            if measured is not None:  # the exporter is loaded only to send them
                exporter = guarded_metrics(self.collector, left)
                if not within(left + 0.05, lambda: exporter.export(measured)):
                    self.collector.failed(endpoint("METRICS"))
