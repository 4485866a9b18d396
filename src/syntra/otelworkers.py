"""What forked doit workers (`doit -n N`) record, carried to the process that started
the run: ended spans, measurements and a task's attributes, in plain values (an SDK span
does not pickle), through a pipe the workers write under a shared lock and a thread of
the run's process drains. That process exports them once, with its own."""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any


@dataclass(frozen=True)
class Shipped:
    """A span a forked worker ended, in plain values (an SDK span does not pickle)."""

    name: str
    trace_id: int
    span_id: int
    parent_id: int | None
    start: int | None
    end: int | None
    attributes: dict[str, Any]
    status: int
    description: str | None


@dataclass(frozen=True)
class Annotated:
    """Attributes a forked worker gave the span of the task it runs (a pushed digest)."""

    task: str
    attributes: dict[str, Any]


@dataclass(frozen=True)
class Measured:
    """A measurement a forked worker took."""

    metric: str
    value: float
    attributes: dict[str, Any]


Carried = Shipped | Measured | Annotated


class Channel:
    """From forked workers to the process that started the run: a pipe, written under a
    lock shared by the workers, drained by a thread of the run's process."""

    def __init__(self, deliver: Callable[[Carried], None]) -> None:
        self.owner = os.getpid()
        self.reader, self.writer = multiprocessing.Pipe(duplex=False)
        self.woken, self.wake = multiprocessing.Pipe(duplex=False)  # the end of the run
        self.lock = multiprocessing.Lock()
        self.taking = threading.Lock()
        self.deliver = deliver
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._drain, name="syntra-telemetry", daemon=True)
        self.thread.start()

    def forked(self) -> bool:
        return os.getpid() != self.owner

    def send(self, item: Carried) -> None:
        with self.lock:
            self.writer.send(item)

    def _drain(self) -> None:
        while not self.stopping.is_set():
            if self.reader in wait([self.reader, self.woken]):
                self.settle()

    def settle(self) -> None:
        """Take what the workers sent so far, now: a worker writes before it tells doit
        its task is done, so a task's span sees all of it before it ends."""
        with self.taking:
            while self.reader.poll(0):
                self.deliver(self.reader.recv())

    def close(self) -> None:
        """After the workers ended (doit joins them): take what they sent, then stop."""
        self.stopping.set()
        self.wake.send(None)
        self.thread.join()
        self.settle()
        for end in (self.reader, self.writer, self.woken, self.wake):
            end.close()
