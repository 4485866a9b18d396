"""`syntra report`: the last run as one self-contained HTML page (no scripts, no links
out): the timeline of its tasks (what ran, what was up to date), every artifact with its
digest, size per platform and per layer, its tests and their results, and its
signatures and SBOM package counts.

Everything comes from what the run left under the state folder: the run's timeline
(`tasklog`), the records of pushed artifacts, the OCI layouts the builders wrote, and
the supply notes `syntra.supply.notes` keeps when `supply` attaches signatures and SBOMs.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from syntra import testruns
from syntra.errors import SyntraError, ToolError
from syntra.fsutil import write_atomic
from syntra.oci.digest import Digest
from syntra.oci.layout import Layout
from syntra.paths import build_dir, slug
from syntra.pipeline.tasklog import RunLog, TaskRun, read_last_run
from syntra.plan import GuestPlan, ImagePlan, Plan
from syntra.records import ImageRecord, WasmRecord, find_record
from syntra.supply.notes import read_supply
from syntra.testruns import TestOutcome

# The page ------------------------------------------------------------------------------

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d2330;background:#fbfbfd}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;min-width:40rem}
th,td{text-align:left;padding:.25rem .6rem;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f0f2f6}code{font-size:12px;word-break:break-all}
.lane{position:relative;height:1.3rem;background:#f3f4f7;min-width:30rem}
.bar{position:absolute;top:.15rem;height:1rem;border-radius:2px;min-width:2px}
.executed{background:#2f6fdf}.hit{background:#9fb6a4}.skipped{background:#d9c27a}
.failed{background:#d2463c}.passed{color:#207a3c}.failure{color:#d2463c}
.muted{color:#777}.num,.size{white-space:nowrap;font-variant-numeric:tabular-nums}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count} B" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count} B"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], empty: str) -> str:
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted">{_e(empty)}</p>'
    heads = "".join(f"<th>{_e(h)}</th>" for h in head)
    return f"<table><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>"


def _timeline(log: RunLog | None) -> str:
    if log is None:
        return '<p class="muted">No doit run recorded here yet: run <code>doit</code>.</p>'
    total = max(log.end - log.start, 1e-6)
    rows = []
    for task in log.tasks:
        left = max(0.0, (task.start - log.start) / total * 100)
        width = max(0.0, (task.end - task.start) / total * 100)
        bar = (
            f'<div class="lane"><div class="bar {task.outcome}" '
            f'style="left:{left:.2f}%;width:{width:.2f}%"></div></div>'
        )
        shown = {"hit": "up to date", "executed": "ran", "skipped": "skipped", "failed": "failed"}
        rows.append(
            [
                f"<code>{_e(task.name)}</code>",
                _e(shown[task.outcome]) + (f" <span class=failure>{_e(task.error)}</span>"
                                           if task.error else ""),
                f'<span class="num">{task.end - task.start:.2f}&nbsp;s</span>',
                bar,
            ]
        )  # fmt: skip
    when = datetime.fromtimestamp(log.start, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    ran = sum(1 for t in log.tasks if t.outcome == "executed")
    hits = sum(1 for t in log.tasks if t.outcome == "hit")
    failed = [t.name for t in log.tasks if t.outcome == "failed"]
    banner = (
        f'<p class="failure"><strong>This run failed</strong>: '
        f"{_e(', '.join(failed) or 'doit stopped with an error')}.</p>"
        if log.result == "failure"
        else ""
    )
    summary = banner + (
        f"<p><code>{_e(log.command)}</code> at {_e(when)}: "
        f'<span class="{"passed" if log.result == "success" else "failure"}">{_e(log.result)}'
        f"</span> in {total:.2f} s; {ran} ran, {hits} up to date.</p>"
    )
    return summary + _table(["task", "outcome", "time", "timeline"], rows, "No tasks.")


def _layers(root: Path, image: str, platform: str) -> list[tuple[str, int]]:
    """(digest, size) of the config and layers of the layout the builder wrote."""
    try:
        layout = Layout.folder(build_dir(root, image) / slug(platform))
        manifest = layout.document(Digest(layout.top(None)["digest"]))  # parsed by the index
        return [(d["digest"], int(d["size"])) for d in manifest.children()]
    except (SyntraError, OSError, ValueError):  # no layout (pushed by digest elsewhere)
        return []


def _images(plan: Plan, root: Path) -> str:
    parts = []
    for image in plan.images:
        record = find_record(root, image.name)
        if not isinstance(record, ImageRecord):
            parts.append(f"<h3>{_e(image.name)}</h3><p class=muted>not pushed yet</p>")
            continue
        refs = "<br>".join(f"<code>{_e(r)}</code>" for r in record.refs)
        rows = []
        for child in record.platforms:
            layers = _layers(root, image.name, child.platform)
            listed = (
                "<br>".join(
                    f"{'config' if n == 0 else f'layer {n}'} <code>{_e(d)}</code> "
                    f'<span class="size">{_e(_size(s))}</span>'
                    for n, (d, s) in enumerate(layers)
                )
                or '<span class="muted">layout not kept here</span>'
            )
            size = f'<span class="size">{_e(_size(child.content_bytes))}</span>'
            rows.append([_e(child.platform), f"<code>{_e(child.digest)}</code>", size, listed])
        parts.append(
            f"<h3>{_e(image.name)}</h3><p>index <code>{_e(record.digest)}</code>"
            f"{' (retagged: nothing built)' if record.retagged else ''}<br>{refs}</p>"
            + _table(["platform", "digest", "size", "layers"], rows, "no platforms")
        )
    return "".join(parts) or '<p class="muted">No images in syntra.yaml.</p>'


def _guests(plan: Plan, root: Path) -> str:
    rows = []
    for guest in plan.guests:
        record = find_record(root, guest.name)
        if isinstance(record, WasmRecord):
            where = f"<code>{_e(record.digest)}</code><br>" + "<br>".join(
                f"<code>{_e(r)}</code>" for r in record.refs
            )
            size = _size(record.wasm_bytes)
        else:
            output = root / guest.output
            where = '<span class="muted">not pushed</span>'
            size = _size(output.stat().st_size) if output.is_file() else "-"
        rows.append([_e(guest.name), _e(guest.language), size, where])
    return _table(["guest", "language", "wasm size", "artifact"], rows, "No wasm guests.")


def _task(log: RunLog | None, *names: str) -> TaskRun | None:
    return next((t for t in (log.tasks if log else []) if t.name in names), None)


def _cell(outcome: TestOutcome) -> str:
    shown = f'<span class="{"passed" if outcome.outcome == "passed" else "failure"}">'
    shown += f"{_e(outcome.outcome)}</span>"
    return shown + (f": <code>{_e(outcome.message)}</code>" if outcome.message else "")


def _guest_rows(log: RunLog | None, guest: GuestPlan, root: Path) -> list[list[str]]:
    """Each test's own result: what its last run said of it, test by test."""
    declared = [testruns.guest_label(test) for test in guest.tests]
    task = _task(log, f"wasm:{guest.name}.test")
    kept = testruns.read(root, guest.name)
    if task is None:
        cells = ['<span class="muted">not run</span>'] * len(declared)
    elif task.outcome == "hit":
        cells = ['<span class="passed">passed before (up to date)</span>'] * len(declared)
    elif task.outcome == "skipped" or kept is None or [t.test for t in kept.tests] != declared:
        said = f"not run: {task.error}" if task.error else "not run"  # the module did not load
        cells = [f'<span class="muted">{_e(said)}</span>'] * len(declared)
    else:
        cells = [_cell(outcome) for outcome in kept.tests]
    return [
        [_e(guest.name), "wasm", f"<code>{_e(test)}</code>", cell]
        for test, cell in zip(declared, cells, strict=True)
    ]


def _image_rows(log: RunLog | None, image: ImagePlan, root: Path) -> list[list[str]]:
    """Each test of the image on each platform: as its last run left it when the run
    built the image (passed or not), else as the pushed record has them (all passed)."""
    task = _task(log, f"docker:{image.name}", f"container:{image.name}")
    kept = testruns.read(root, image.name)
    if task is not None and task.outcome in ("executed", "failed") and kept is not None:
        return [[_e(image.name), _e(t.platform), _e(t.test), _cell(t)] for t in kept.tests]
    record = find_record(root, image.name)
    passed = '<span class="passed">passed</span>'
    return [
        [_e(image.name), _e(result.platform), _e(result.test), passed]
        for result in (record.tests if isinstance(record, ImageRecord) else [])
    ]


def _tests(plan: Plan, root: Path, log: RunLog | None) -> str:
    rows = [row for image in plan.images for row in _image_rows(log, image, root)]
    rows += [row for guest in plan.guests for row in _guest_rows(log, guest, root)]
    return _table(["artifact", "platform", "test", "result"], rows, "No tests declared.")


def _supply(plan: Plan, root: Path) -> str:
    rows = []
    for name in [i.name for i in plan.images] + [g.name for g in plan.guests]:
        note = read_supply(root, name)
        for where, attached in note.destinations.items() if note else []:
            for item in attached:
                sboms = ", ".join(f"{fmt}: {n} packages" for fmt, n in item.sbom_packages.items())
                rows.append(
                    [
                        _e(name),
                        _e(where),
                        _e(item.platform or "index / artifact"),
                        f"<code>{_e(item.digest)}</code>",
                        "signed" if item.signed else "-",
                        _e(sboms or "-"),
                        "yes" if item.provenance else "-",
                    ]
                )
    head = ["artifact", "repository", "platform", "digest", "signature", "SBOMs", "provenance"]
    return _table(head, rows, "Nothing signed yet (doit supply).")


def page(plan: Plan, root: Path) -> str:
    log = read_last_run(root)
    title = f"{plan.project} {plan.version}: build report"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f"<p>commit <code>{_e(plan.git.get('short_sha') or '-')}</code></p>"
        f"<h2>Timeline of the last run</h2>{_timeline(log)}"
        f"<h2>Images</h2>{_images(plan, root)}"
        f"<h2>WebAssembly guests</h2>{_guests(plan, root)}"
        f"<h2>Tests</h2>{_tests(plan, root, log)}"
        f"<h2>Signatures and SBOMs</h2>{_supply(plan, root)}"
        "</body></html>\n"
    )


def write_report(plan: Plan, root: Path, target: Path) -> RunLog | None:
    """The page written at `target`; the run it reports (None: no run yet)."""
    try:
        write_atomic(target, page(plan, root).encode())
    except OSError as exc:
        raise ToolError(f"{target}: cannot write the report ({exc.strerror or exc})") from None
    return read_last_run(root)
