"""Human-readable tables of plans and results (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from syntra.plan import Plan


def print_plan(plan: Plan, console: Console | None = None) -> None:
    console = console or Console()
    dirty = " (dirty)" if plan.git.get("dirty") else ""
    console.print(
        f"[bold]{plan.project}[/] {plan.version}{dirty}  commit {plan.git.get('short_sha')}  "
        f"SOURCE_DATE_EPOCH={plan.source_date_epoch}  builder={plan.builder}"
    )
    if plan.images:
        images = Table("image", "platform", "spec", "references", title="images")
        for image in plan.images:
            refs = "\n".join(image.destination.refs) or "(local only)"
            for index, platform in enumerate(image.platforms):
                first = index == 0
                images.add_row(
                    image.name if first else "", platform, image.dockerfile if first else "",
                    refs if first else "",
                )
        console.print(images)
    if plan.guests:
        guests = Table("guest", "language", "source", "output", "references", title="wasm guests")
        for guest in plan.guests:
            guests.add_row(
                guest.name, f"{guest.language} ({guest.mode})", guest.source, guest.output,
                "\n".join(guest.destination.refs) or "(local only)",
            )
        console.print(guests)
