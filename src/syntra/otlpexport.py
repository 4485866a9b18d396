"""Sending spans and metrics to an OpenTelemetry collector without slowing the run:
whatever the collector does (down, silent, a name that does not resolve), a run waits
for it at most about one second in all.

Spans are sent in the background while the run goes on (`Background`); every request
gives up after `REQUEST_TIMEOUT` without retrying; the first failure ends exporting for
the run, said in one warning line naming the endpoint (`Collector`); the end of a run
waits at most `FINISH_BUDGET` for what is left. The SDK's own log lines never reach the
terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlsplit

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from syntra.redaction import redact

REQUEST_TIMEOUT = 0.3
"""Seconds one OTLP request may take (connect and answer); it is not retried."""
FINISH_BUDGET = 0.6
"""Seconds the end of a run may wait for the collector, whatever is left to send."""
SEND_EVERY_MS = 1000
"""How often spans are sent in the background during a run."""


def _quiet_sdk() -> None:
    """The SDK logs its export failures (and retries) as warnings, which Python prints on
    stderr when nothing is configured: Syntra says it in one line of its own instead."""
    sdk = logging.getLogger("opentelemetry")
    sdk.addHandler(logging.NullHandler())
    sdk.propagate = False


_quiet_sdk()


def exported(signal: str) -> bool:
    """Whether an OTLP endpoint is set for `signal` (TRACES, METRICS), and its exporter
    is not turned off (`OTEL_TRACES_EXPORTER=none`)."""
    if os.environ.get(f"OTEL_{signal}_EXPORTER", "").strip().lower() == "none":
        return False
    return any(os.environ.get(f"OTEL_EXPORTER_OTLP_{k}ENDPOINT") for k in ("", f"{signal}_"))


def endpoint(signal: str) -> str:
    """The URL the exporter of `signal` posts to, as the standard variables give it."""
    own = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT", "").strip()
    if own:
        return own
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip().rstrip("/")
    return f"{base}/v1/{signal.lower()}"


class Collector:
    """The collector's health for the whole run: the first export that fails ends
    exporting (spans and metrics alike) and says so once, naming the endpoint."""

    def __init__(self) -> None:
        self.down = False
        self.lock = threading.Lock()

    def failed(self, endpoint: str) -> None:
        with self.lock:
            if self.down:
                return
            self.down = True
        print(
            f"telemetry: cannot reach the OpenTelemetry collector at {_shown(endpoint)} "
            "(not sending this run's traces and metrics)",
            file=sys.stderr,
            flush=True,
        )


def _shown(endpoint: str) -> str:
    """The endpoint without what may be a credential: a user, a password, a query."""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
        where = f"{host}:{parts.port}" if parts.port else host
    except ValueError:  # a port that is no number: nothing of it is shown
        return "the configured endpoint"
    return redact(f"{parts.scheme}://{where}{parts.path}" if parts.scheme else "(no URL)")


class GuardedSpans(SpanExporter):
    def __init__(self, collector: Collector) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        self.collector, self.endpoint = collector, endpoint("TRACES")
        self.inner = OTLPSpanExporter(timeout=REQUEST_TIMEOUT)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.collector.down:
            return SpanExportResult.FAILURE
        done = self.inner.export(spans)
        if done is not SpanExportResult.SUCCESS:
            self.collector.failed(self.endpoint)
        return done

    def shutdown(self) -> None:
        self.inner.shutdown()  # type: ignore[no-untyped-call]


class Background(SpanProcessor):
    """Sends ended spans from a thread of its own, every `SEND_EVERY_MS` during the run;
    its end waits a bounded time for the last batch (the thread is abandoned after)."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.pending: list[ReadableSpan] = []
        self.lock = threading.Lock()
        self.wake, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._loop, name="syntra-otlp", daemon=True)
        self.thread.start()

    def on_end(self, span: ReadableSpan) -> None:
        with self.lock:
            self.pending.append(span)

    def _send(self) -> None:
        with self.lock:
            batch, self.pending = self.pending, []
        if batch:
            self.exporter.export(batch)

    def _loop(self) -> None:
        while not self.done.is_set():
            self.wake.wait(SEND_EVERY_MS / 1000)
            self._send()
        self._send()

    def shutdown(self) -> None:
        self.end(FINISH_BUDGET)

    def end(self, budget: float) -> bool:
        """Whether the last batch went out (or failed) within `budget` seconds."""
        self.done.set()
        self.wake.set()
        self.thread.join(budget)
        return not self.thread.is_alive()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def within(seconds: float, work: Callable[[], object]) -> bool:
    """Runs `work` in a thread of its own and waits at most `seconds` for it (a request
    timeout does not bound a host name that takes long to resolve): whether it ended."""
    thread = threading.Thread(target=work, name="syntra-otlp-metrics", daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def guarded_metrics(collector: Collector, timeout: float) -> Any:
    """The OTLP metric exporter, giving up after `timeout` seconds and telling `collector`
    when it cannot send."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics.export import MetricExportResult

    class GuardedMetrics(OTLPMetricExporter):
        def export(
            self, metrics_data: Any, timeout_millis: float | None = 10_000, **kwargs: Any
        ) -> Any:
            if collector.down:
                return MetricExportResult.FAILURE
            done = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
            if done is not MetricExportResult.SUCCESS:
                collector.failed(endpoint("METRICS"))
            return done

    return GuardedMetrics(timeout=timeout)
