"""The OpenTelemetry SDK behind `syntra.telemetry`, imported only when a run is watched.

Spans go to OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` or `..._TRACES_ENDPOINT` is set
(the exporter reads its endpoint, headers and timeout from the standard variables), and
to the trace file when one is asked for; metrics go to OTLP/HTTP when an endpoint for
them is set. A `TRACEPARENT` in the environment (a CI system's trace, or a Syntra that
started this one) is the parent of the first span.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.trace import Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

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


def _clean(attributes: Attributes) -> dict[str, Any]:
    return {key: value for key, value in attributes.items() if value is not None}


def _exported(signal: str) -> bool:
    """Whether an OTLP endpoint is set for `signal` (TRACES, METRICS), and its exporter
    is not turned off (`OTEL_TRACES_EXPORTER=none`)."""
    if os.environ.get(f"OTEL_{signal}_EXPORTER", "").strip().lower() == "none":
        return False
    return any(os.environ.get(f"OTEL_EXPORTER_OTLP_{k}ENDPOINT") for k in ("", f"{signal}_"))


class _Threads(SpanProcessor):
    """Each span notes the thread it started on: the trace file's tracks."""

    def on_start(self, span: SdkSpan, parent_context: Any = None) -> None:
        current = threading.current_thread()
        span.set_attributes({"thread.id": current.ident or 0, "thread.name": current.name})


class _Opened:
    def __init__(self, span: trace.Span, token: object | None) -> None:
        self.span, self.token = span, token

    def set(self, attributes: Attributes) -> None:
        self.span.set_attributes(_clean(attributes))

    def close(self, error: str | None = None, end_ns: int | None = None) -> None:
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
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(_Threads())
        if _exported("TRACES"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        if trace_file is not None:
            from syntra.tracefile import TraceEventExporter

            self.provider.add_span_processor(SimpleSpanProcessor(TraceEventExporter(trace_file)))
        self.tracer = self.provider.get_tracer("syntra", installed_version())
        self.meters: dict[str, Any] = {}
        self.meter_provider: Any = None
        if _exported("METRICS"):
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.sdk.metrics import MeterProvider
            from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

            reader = PeriodicExportingMetricReader(OTLPMetricExporter())
            self.meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
        given = os.environ.get("TRACEPARENT")
        self.parent = _PROPAGATOR.extract({"traceparent": given}) if given else None

    def open(
        self, name: str, attributes: Attributes, start_ns: int | None, current: bool
    ) -> _Opened:
        inside = trace.get_current_span().get_span_context().is_valid
        span = self.tracer.start_span(
            name,
            context=None if inside else self.parent,
            attributes=_clean(attributes),
            start_time=start_ns,
        )
        token = otel_context.attach(trace.set_span_in_context(span)) if current else None
        return _Opened(span, token)

    def annotate(self, attributes: Attributes) -> None:
        trace.get_current_span().set_attributes(_clean(attributes))

    def record(self, metric: str, value: float, attributes: Attributes) -> None:
        if self.meter_provider is None:
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

    def child_env(self) -> dict[str, str]:
        carrier: dict[str, str] = {}
        if trace.get_current_span().get_span_context().is_valid:
            _PROPAGATOR.inject(carrier)
        return {key.upper(): value for key, value in carrier.items()}

    def finish(self) -> None:
        self.provider.shutdown()
        if self.meter_provider is not None:
            self.meter_provider.shutdown()
