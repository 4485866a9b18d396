"""A run's spans as a Chrome trace-event file (`syntra --trace FILE`, `SYNTRA_TRACE=FILE
doit`), which Perfetto (ui.perfetto.dev) and chrome://tracing open: one complete event
(`"ph": "X"`) per span, times in microseconds, one track per thread of each process
(`doit -n N` forks workers), the span's attributes and ids as its `args`. For people
without an OpenTelemetry collector."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from syntra.fsutil import write_atomic


def trace_events(spans: Sequence[ReadableSpan], pid: int) -> dict[str, Any]:
    """The trace-event document of `spans`, ordered by start (parents before children)."""
    events = []
    for span in sorted(spans, key=lambda s: (s.start_time or 0, -(s.end_time or 0))):
        start, end = span.start_time or 0, span.end_time or span.start_time or 0
        attributes = dict(span.attributes or {})
        tid = attributes.pop("thread.id", 0)
        attributes.pop("thread.name", None)
        process = attributes.pop("process.pid", pid)  # a forked doit worker's
        context = span.get_span_context()
        args: dict[str, Any] = {
            **attributes,
            "trace_id": f"{context.trace_id:032x}" if context else "",
            "span_id": f"{context.span_id:016x}" if context else "",
            "parent_id": f"{span.parent.span_id:016x}" if span.parent else "",
        }
        if not span.status.is_ok:
            args["error"] = span.status.description or "error"
        events.append(
            {
                "ph": "X",
                "name": span.name,
                "cat": "syntra",
                "ts": start / 1000,
                "dur": (end - start) / 1000,
                "pid": process,
                "tid": tid,
                "args": args,
            }
        )
    return {"traceEvents": events, "displayTimeUnit": "ms"}


class TraceEventExporter(SpanExporter):
    """Keeps the run's spans; writes the file when the run ends (temp file + rename)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.spans: list[ReadableSpan] = []
        self.lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self.lock:
            self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self.lock:
            document = trace_events(self.spans, os.getpid())
        try:
            write_atomic(self.path, (json.dumps(document) + "\n").encode())
        except OSError as exc:  # the run is done: say so, do not undo it
            print(f"{self.path}: cannot write the trace ({exc.strerror or exc})", file=sys.stderr)
