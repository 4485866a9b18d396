"""Live progress on a terminal: pushes (bytes, rate, each layer's state), pulls and
builds (what the tool says last), drawn on stderr with rich and gone when done.

On only when enabled (`enable(True)`: stderr is a terminal, no `--quiet`, no `--json`);
otherwise every helper here is a pass-through and the output is the plain lines it
always was.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol


class Blob(Protocol):
    """What a progress row shows of a blob (`syntra.oci.client.Blob`)."""

    @property
    def digest(self) -> str: ...

    @property
    def size(self) -> int: ...


_on = False
_drawing = threading.Lock()
"""One live display at a time (rich's rule): a second, concurrent one stays plain."""


def enable(on: bool) -> None:
    global _on
    _on = on


def enabled() -> bool:
    return _on


def _console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def short(digest: str) -> str:
    return digest.split(":")[-1][:12]


class Upload:
    """The rows of one push; `wrap` gives each blob its row, `done` marks it."""

    def __init__(self, progress: Any = None) -> None:
        self.progress = progress
        self.rows: dict[str, Any] = {}

    def row(self, blob: Blob) -> Any:
        """A new row for `blob`, or None when progress is off."""
        if self.progress is None:
            return None
        row = self.progress.add_task(short(blob.digest), total=blob.size, state="waiting")
        self.rows[blob.digest] = row
        return row

    def done(self, blob: Blob) -> None:
        """The blob is in the registry: sent now, or already there (skipped or mounted)."""
        row = self.rows.get(blob.digest)
        if row is None:
            return
        sent = self.progress.tasks[row].fields.get("state") == "uploading"
        self.progress.update(row, completed=blob.size, state="pushed" if sent else "exists")


@contextmanager
def upload(title: str) -> Iterator[Upload]:
    """Rows for the blobs of a push, drawn while it runs."""
    from rich.markup import escape
    from rich.progress import BarColumn, DownloadColumn, TextColumn, TransferSpeedColumn

    columns = (
        TextColumn(f"{escape(title)} [bold]{{task.description}}"),
        TextColumn("{task.fields[state]:>9}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    )
    with _drawn(columns) as progress:
        yield Upload(progress)


@contextmanager
def activity(title: str) -> Iterator[Callable[[str], None]]:
    """A spinner for a long step (a build, a pull); the function given shows its latest line."""
    from rich.progress import SpinnerColumn, TextColumn

    with _drawn((SpinnerColumn(), TextColumn("{task.description}", markup=False))) as progress:
        if progress is None:
            yield lambda line: None
            return
        row = progress.add_task(title, total=None)

        def show(line: str) -> None:
            if line.strip():
                progress.update(row, description=f"{title}: {line.strip()[:100]}")

        yield show


@contextmanager
def _drawn(columns: tuple[Any, ...]) -> Iterator[Any]:
    """A rich Progress on stderr while the block runs, gone after it; None when progress
    is off or another display is up. What the program prints goes where it always goes
    (stdout is not redirected through the display)."""
    if not (_on and _drawing.acquire(blocking=False)):
        yield None
        return
    from rich.progress import Progress

    try:
        with Progress(
            *columns,
            console=_console(),
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as progress:
            yield progress
    finally:
        _drawing.release()
