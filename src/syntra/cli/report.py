"""Human-readable tables of plans and results (rich)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.table import Table

from syntra.plan import GuestPlan, ImagePlan, Plan
from syntra.records import ImageRecord, Record, WasmRecord, find_record
from syntra.wasm.languages import language

A = TypeVar("A", ImagePlan, GuestPlan)


def plan_text(plan: Plan) -> str:
    """The plan as aligned text: nothing truncated, however narrow the terminal."""
    dirty = " (dirty)" if plan.git.get("dirty") else ""
    lines = [
        f"{plan.project} {plan.version}  commit {plan.git.get('short_sha')}{dirty}  "
        f"SOURCE_DATE_EPOCH={plan.source_date_epoch}  builder={plan.builder}"
    ]
    for image in plan.images:
        lines += [
            "",
            f"image {image.name}  {image.dockerfile}  context {image.context}",
            f"  platforms  {', '.join(image.platforms)}",
        ]
        lines += _refs(image.destination.refs)
    for guest in plan.guests:
        described = language(guest.language).describe(guest)
        lines += ["", f"guest {guest.name}  {described}  {guest.source} -> {guest.output}"]
        lines += _refs(guest.destination.refs)
        if guest.web:
            attached = "  (attached to the artifact)" if guest.web.publish else ""
            lines.append(f"  {'web':10} {guest.web.dir}/{attached}")
    return "\n".join(lines)


def _refs(refs: list[str]) -> list[str]:
    if not refs:
        return ["  push       (no registry: local only)"]
    return [f"  {'push' if i == 0 else '':10} {ref}" for i, ref in enumerate(refs)]


def print_outputs(plan: Plan, root: Path, console: Console | None = None) -> None:
    """What a pipeline run left behind: every produced file with its digest and size."""
    console = console or Console(width=max(Console().width, 140))
    table = Table("output", "sha256", "bytes", title=f"{plan.project} {plan.version}: outputs")
    for image in plan.images:
        for spec in (image.dockerfile, image.containerfile):
            data = (root / spec).read_bytes()
            table.add_row(spec, hashlib.sha256(data).hexdigest()[:16], str(len(data)))
    for guest in plan.guests:  # web bundles
        folder = root / guest.web.dir if guest.web else None
        for path in sorted(folder.rglob("*")) if folder and folder.is_dir() else []:
            if path.is_file():
                data = path.read_bytes()
                shown = str(path.relative_to(root))
                table.add_row(shown, hashlib.sha256(data).hexdigest()[:16], str(len(data)))
    console.print(table)
    images = Table(title="pushed images")
    for column in ("image", "platform", "digest", "bytes", "tags"):
        images.add_column(column, overflow="fold")
    for image, record in _pushed(root, plan.images):
        images.add_row(image.name, "index", record.digest, "", "\n".join(record.refs))
        for child in record.platforms if isinstance(record, ImageRecord) else []:
            images.add_row("", child.platform, child.digest, str(child.content_bytes), "")
    console.print(images)
    tests = Table(title="image tests (passed before the push)")
    for column in ("image", "platform", "test"):
        tests.add_column(column, overflow="fold")
    for image, record in _pushed(root, plan.images):
        for result in record.tests if isinstance(record, ImageRecord) else []:
            tests.add_row(image.name, result.platform, result.test)
    console.print(tests)
    guests = Table(title="wasm artifacts")
    for column in ("guest", "kind", "wasm bytes", "artifact digest", "tags"):
        guests.add_column(column, overflow="fold")
    for guest, record in _pushed(root, plan.guests):
        if isinstance(record, WasmRecord):
            row = [guest.name, record.wasm_kind, str(record.wasm_bytes), record.digest]
            guests.add_row(*row, "\n".join(record.refs))
    console.print(guests)


def _pushed(root: Path, artifacts: Sequence[A]) -> Iterator[tuple[A, Record]]:
    """The artifacts that have a sound record, with it; the others are not shown."""
    for artifact in artifacts:
        record = find_record(root, artifact.name)
        if record is not None:
            yield artifact, record
