"""Watching a run: OTLP traces and metrics received by a real OTLP/HTTP receiver, the
trace-event file, live progress on a terminal (and none without one), and the report
page rendered in headless Chromium."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import socket
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from syntra import process, telemetry
from syntra.errors import SyntraError
from syntra.paths import build_dir, last_run, slug
from syntra.registry.local import serve
from tests.conftest import PYTHON, REPO, Result, commit, run
from tests.support.faults import fault_proxy
from tests.support.layouts import oci_layout
from tests.support.otlp import Receiver, receiver
from tests.support.projects import make_project, record

pytestmark = pytest.mark.e2e

OTEL = "OTEL_EXPORTER_OTLP_ENDPOINT"

CHILD = """
import os
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

parent = TraceContextTextMapPropagator().extract({"traceparent": os.environ["TRACEPARENT"]})
provider = TracerProvider(resource=Resource.create({"service.name": "child"}))
provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))
provider.get_tracer("child").start_span("child work", context=parent).end()
provider.shutdown()
"""


@pytest.fixture
def otlp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    with receiver() as got:
        monkeypatch.setenv(OTEL, got.endpoint)
        yield got
    telemetry.finish()


@pytest.fixture(autouse=True)
def _unwatched(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [*telemetry.ENDPOINT_ENV, telemetry.TRACE_ENV, "TRACEPARENT"]:
        monkeypatch.delenv(name, raising=False)


def test_doit_run_is_one_trace_with_a_span_per_task_and_its_cache_outcome(
    project: Path, otlp: Receiver
) -> None:
    first = run(project, "doit", "render")
    assert first.returncode == 0, first.stderr
    text = (project / "syntra.yaml").read_text() + "  api:\n    context: web\n"
    (project / "syntra.yaml").write_text(text)
    otlp.spans.clear()
    trace = project / "trace.json"
    second = run(project, "doit", "render", env={telemetry.TRACE_ENV: str(trace)})
    assert second.returncode == 0, second.stderr
    assert ".  render:api" in second.stdout and "-- render:web" in second.stdout

    root = otlp.named("RUN doit")
    assert root.parent_id == ""
    assert root.attributes["cicd.pipeline.result"] == "success"
    assert root.attributes["cicd.pipeline.name"] == "doit"  # the command, not its arguments
    assert root.attributes["process.command_line"] == "doit render"
    run_id = root.attributes["cicd.pipeline.run.id"]
    tasks = {s.name: s for s in otlp.spans if s.name.startswith("render:")}
    assert set(tasks) == {"render:api", "render:web", "render:stale"}
    for span in tasks.values():
        assert (span.trace_id, span.parent_id) == (root.trace_id, root.span_id)
        assert span.attributes["cicd.pipeline.task.run.id"] == f"{run_id}/{span.name}"
        assert span.attributes["cicd.pipeline.task.run.result"] == "success"
        assert root.start <= span.start <= span.end <= root.end
    assert tasks["render:api"].attributes["syntra.cache.outcome"] == "executed"
    assert tasks["render:api"].attributes["syntra.image"] == "api"
    assert tasks["render:api"].attributes["syntra.artifact"] == "api"
    assert tasks["render:api"].attributes["syntra.stage"] == "render"
    assert tasks["render:web"].attributes["syntra.cache.outcome"] == "hit"
    assert tasks["render:web"].attributes["cicd.pipeline.task.name"] == "render:web"
    stale = tasks["render:stale"].attributes  # a step, not an artifact
    assert stale["syntra.step"] == "stale" and stale["syntra.stage"] == "render"
    assert not {"syntra.image", "syntra.artifact", "syntra.guest"} & set(stale)

    outcomes = {
        (_labels(point)["cicd.pipeline.task.name"], _labels(point)["syntra.cache.outcome"])
        for point in otlp.metrics["syntra.cache.outcomes"]
    }
    assert {("render:api", "executed"), ("render:web", "hit")} <= outcomes
    assert otlp.metrics["syntra.task.duration"]

    events = json.loads(trace.read_text())["traceEvents"]  # the same spans, in the file
    assert sorted(e["name"] for e in events) == sorted(s.name for s in otlp.spans)
    assert {e["args"]["span_id"] for e in events} == {s.span_id for s in otlp.spans}

    timeline = json.loads(last_run(project).read_text())
    assert {t["name"]: t["outcome"] for t in timeline["tasks"]} == {
        "render:api": "executed",
        "render:web": "hit",
        "render:stale": "executed",
    }


def test_an_image_build_traces_its_platform_and_push_under_its_task(
    tmp_path: Path, registry: str, base: str, otlp: Receiver
) -> None:
    extra = "    repository: tests/traced\n    platforms: [linux/amd64]\n"
    root = make_project(tmp_path / "repo", registry, base, extra)
    built = run(root, "doit", "docker")
    assert built.returncode == 0, built.stdout + built.stderr
    task = otlp.named("docker:app")
    assert task.attributes["syntra.cache.outcome"] == "executed"
    assert task.attributes["syntra.image"] == "app"
    assert task.attributes["syntra.digest"] == record(root)["digest"]
    build = otlp.named("build app linux/amd64")
    assert build.parent_id == task.span_id and build.trace_id == task.trace_id
    assert build.attributes["syntra.platform"] == "linux/amd64"
    pushes = [s for s in otlp.spans if s.name == "push tests/traced"]
    assert pushes and all(s.parent_id == task.span_id for s in pushes)
    assert sum(s.attributes["syntra.bytes.pushed"] for s in pushes) > 0

    otlp.spans.clear()
    again = run(root, "doit", "docker")
    assert again.returncode == 0, again.stderr
    assert otlp.named("docker:app").attributes["syntra.cache.outcome"] == "hit"
    assert not [s for s in otlp.spans if s.name.startswith(("build ", "push "))]


def test_a_failed_task_fails_its_span_and_the_run(project: Path, otlp: Receiver) -> None:
    (project / "templates").mkdir()
    (project / "templates" / "default.j2").write_text("FROM {{ image.bse }}\n")
    done = run(project, "doit", "render")
    assert done.returncode != 0
    root, task = otlp.named("RUN doit"), otlp.named("render:web")
    assert root.attributes["cicd.pipeline.result"] == "failure"
    assert task.attributes["cicd.pipeline.task.run.result"] == "failure"
    assert task.parent_id == root.span_id
    timeline = json.loads(last_run(project).read_text())
    (failed,) = [t for t in timeline["tasks"] if t["name"] == "render:web"]
    assert failed["outcome"] == "failed" and "'bse' is undefined" in failed["error"]


def _labels(point: Any) -> dict[str, Any]:
    return {a.key: a.value.string_value for a in point.attributes}


def test_a_child_process_joins_the_trace_through_traceparent(otlp: Receiver) -> None:
    telemetry.configure(None)
    with telemetry.pipeline("syntra test", "syntra test --flag") as finished:
        with telemetry.span("stage", {"syntra.image": "web"}):
            process.run([PYTHON, "-c", CHILD], "child")
        finished(0)
    root, stage, child = (otlp.named(n) for n in ("RUN syntra test", "stage", "child work"))
    assert child.service == "child" and stage.service == "syntra"
    assert child.trace_id == stage.trace_id == root.trace_id
    assert child.parent_id == stage.span_id
    assert stage.parent_id == root.span_id


def test_syntra_started_with_traceparent_continues_that_trace(
    project: Path, otlp: Receiver
) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    done = run(project, "syntra", "validate", env={OTEL: otlp.endpoint, "TRACEPARENT": parent})
    assert done.returncode == 0, done.stderr
    root = otlp.named("RUN syntra validate")
    assert (root.trace_id, root.parent_id) == (parent.split("-")[1], parent.split("-")[2])


def _copy(syntra: Callable[..., Result], cwd: Path, layout: Path, to: str, *more: str) -> Result:
    return syntra(cwd, *more, "copy", f"oci:{layout}", to, "--insecure")


def test_trace_file_is_trace_event_json_with_the_push_nested_in_the_run(
    tmp_path: Path, registry: str, syntra: Callable[..., Result]
) -> None:
    layout = oci_layout(tmp_path / "layout", layers=2, size=300_000, seed=7)
    trace = tmp_path / "trace.json"
    target = f"{registry}/telemetry/traced:v1"
    done = _copy(syntra, tmp_path, layout, target, "--trace", str(trace))
    assert done.code == 0, done.err
    document = json.loads(trace.read_text())
    assert document["displayTimeUnit"] == "ms"
    events = document["traceEvents"]
    for event in events:
        assert event["ph"] == "X" and isinstance(event["name"], str)
        assert isinstance(event["ts"], int | float) and event["dur"] >= 0
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
    by_id = {e["args"]["span_id"]: e for e in events}
    for event in events:
        parent = by_id.get(event["args"]["parent_id"])
        if parent:  # nested by time: a child lies within its parent
            assert parent["ts"] <= event["ts"]
            assert event["ts"] + event["dur"] <= parent["ts"] + parent["dur"] + 1
    (root,) = [e for e in events if not e["args"]["parent_id"]]
    assert root["name"] == "RUN syntra copy"  # not the arguments: they are redacted args
    assert root["args"]["cicd.pipeline.name"] == "syntra copy"
    assert root["args"]["process.command_line"].startswith("syntra --trace")
    (push,) = [e for e in events if e["name"] == "push telemetry/traced"]
    assert push["args"]["parent_id"] == root["args"]["span_id"]
    assert push["args"]["syntra.bytes.pushed"] > 600_000
    assert push["args"]["syntra.blobs.pushed"] == 3  # two layers and the config
    assert push["args"]["server.address"] == registry

    unwritable = _copy(syntra, tmp_path, layout, target, "--trace", "/proc/syntra/trace.json")
    assert (unwritable.code, unwritable.out) == (3, "")
    assert (
        unwritable.err
        == "/proc/syntra/trace.json: cannot write the trace (No such file or directory)\n"
    )

    again = _copy(syntra, tmp_path, layout, target, "--trace", str(trace))
    assert again.code == 0, again.err
    (push,) = [e for e in json.loads(trace.read_text())["traceEvents"] if "push" in e["name"]]
    assert push["args"]["syntra.bytes.pushed"] == 0
    assert push["args"]["syntra.blobs.skipped"] == 3  # the repository has them
    assert push["args"]["syntra.bytes.reused"] > 600_000


def test_registry_bytes_and_retries_are_counted(
    tmp_path: Path, registry: str, syntra: Callable[..., Result], otlp: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("SYNTRA_REGISTRY_TIMEOUT", "1")
    layout = oci_layout(tmp_path / "layout", layers=3, size=200_000, seed=5)
    with fault_proxy(registry, rate=0.3, seed=3, stall=2.0) as proxy:
        done = _copy(syntra, tmp_path, layout, f"{proxy.address}/faulty/copy:v1")
        injected = sum(proxy.injected.values())
    assert done.code == 0, done.err
    assert injected > 0
    retries = sum(point.as_int for point in otlp.metrics["syntra.registry.retries"])
    assert 1 <= retries <= injected
    sent = sum(point.as_int for point in otlp.metrics["syntra.transfer.bytes"])
    assert sent >= 600_000
    pushed = {
        _labels(point)["syntra.outcome"]: point.as_int
        for point in otlp.metrics["syntra.transfer.blobs"]
    }
    assert pushed["pushed"] == 4


WAT = """(module
  (memory (export "memory") 2)
  (func (export "add") (param i32 i32) (result i32)
    local.get 0 local.get 1 i32.add))"""


def test_every_plugin_call_is_measured(tmp_path: Path, otlp: Receiver) -> None:
    from syntra import plugins

    telemetry.configure(None)  # a new run in this process: the variables are read again
    wasm = tmp_path / "adder.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(WAT))
    plugin = plugins.load_file(wasm, limits=plugins.Limits(fuel=10_000), cache=tmp_path / "cache")
    assert plugin.call("add", 2, 3) == 5
    with pytest.raises(SyntraError):
        plugin.call("add", 1)
    telemetry.finish()

    (call,) = [s for s in otlp.spans if "syntra.plugin.memory" in s.attributes]
    assert call.name == "call adder.add"
    assert call.attributes["syntra.plugin.memory"] == 2 * 65536
    assert call.attributes["syntra.plugin.fuel"] > 0
    (fuel,) = otlp.metrics["syntra.plugin.fuel"]
    assert fuel.count == 1 and fuel.sum == call.attributes["syntra.plugin.fuel"]
    (memory,) = otlp.metrics["syntra.plugin.memory"]
    assert memory.sum == 2 * 65536
    assert otlp.metrics["syntra.plugin.duration"][0].count == 1
    calls = {_labels(p)["syntra.outcome"]: p.as_int for p in otlp.metrics["syntra.plugin.calls"]}
    assert calls == {"passed": 1, "failed": 1}


def test_unwatched_runs_import_no_opentelemetry(project: Path) -> None:
    shown = (
        "import sys\n"
        "from doit.doit_cmd import DoitMain\n"
        "from syntra.cli import main\n"
        "assert DoitMain().run(['render']) == 0\n"
        "assert main(['plan']) == 0\n"
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))\n"
    )
    (project / "check.py").write_text(shown)
    done = run(project, "check")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"
    assert (project / "ContainerSpecs" / "web" / "Dockerfile").is_file()


def _in_terminal(cwd: Path, *argv: str) -> str:
    """What `argv` shows on a terminal (a pty): stdout and stderr as drawn."""
    leader, follower = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TERM": "xterm", "COLUMNS": "120"}
    child = subprocess.Popen(
        [PYTHON, "-m", "syntra", *argv], cwd=cwd, env=env,
        stdin=follower, stdout=follower, stderr=follower,
    )  # fmt: skip
    os.close(follower)
    shown = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child is gone and its side closed
            break
        if not chunk:
            break
        shown += chunk
    child.wait(timeout=60)
    os.close(leader)
    assert child.returncode == 0, shown.decode(errors="replace")
    return shown.decode(errors="replace")


def test_progress_on_a_terminal_and_plain_lines_without_one(tmp_path: Path, registry: str) -> None:
    layout = oci_layout(tmp_path / "layout", layers=3, size=6 << 20, seed=11)
    shown = _in_terminal(tmp_path, "copy", f"oci:{layout}", f"{registry}/live/a:v1", "--insecure")
    assert "push live/a" in shown
    assert re.search(r"(uploading|pushed)", shown)
    assert re.search(r"\d+(\.\d+)?/\d+(\.\d+)? MB", shown)  # bytes done of the layer's size
    assert "\x1b[" in shown  # drawn, then cleared

    quiet = _in_terminal(
        tmp_path, "--quiet", "copy", f"oci:{layout}", f"{registry}/live/b:v1", "--insecure"
    )
    plain = run(tmp_path, "syntra", "copy", f"oci:{layout}", f"{registry}/live/c:v1", "--insecure")
    assert plain.returncode == 0 and plain.stderr == ""
    assert re.fullmatch(
        r"copied sha256:[0-9a-f]{64} to \S+/live/c@sha256:[0-9a-f]{64}\n", plain.stdout
    )
    assert "\x1b[" not in quiet and "push live" not in quiet
    assert quiet.replace("\r\n", "\n").replace("/live/b", "/live/c") == plain.stdout

    pulled = _in_terminal(tmp_path, "copy", f"{registry}/live/a:v1", "oci:pulled", "--insecure")
    assert f"pull {registry}/live/a@" in pulled  # each layer's spinner
    assert pulled.rstrip().endswith(f"to oci:pulled@{_digest(plain.stdout)}")

    as_json = _in_terminal(
        tmp_path, "copy", f"oci:{layout}", f"{registry}/live/d:v1", "--insecure", "--json"
    )
    assert json.loads(as_json)["blobs_sent"] == 4  # nothing drawn: the JSON alone


def _digest(said: str) -> str:
    return said.split()[1]


def test_report_page_renders_in_chromium(
    project: Path, registry: str, syntra: Callable[..., Result], request: pytest.FixtureRequest
) -> None:
    """The screenshot is kept under pytest's cache: .pytest_cache/d/screenshots/."""
    from syntra.config import load
    from syntra.image.publish import Pushed, image_record, push_images, read_layout
    from syntra.oci.locate import Where
    from syntra.plan import build_plan
    from syntra.records import write_record
    from syntra.supply.notes import note_supply
    from syntra.supply.seal import Subject

    assert run(project, "doit", "render").returncode == 0
    plan = build_plan(load(project / "syntra.yaml"))
    image = plan.image("web")
    layout = oci_layout(build_dir(project, "web") / slug("linux/amd64"), 2, 50_000, seed=3)
    built = read_layout(layout, "linux/amd64")
    where = Where(_client(registry), "report/web", f"{registry}/report/web")
    digest = push_images(where, [built], image.destination).digest
    assert digest is not None
    pushed = Pushed(digest, [built.platform], 100_000)
    write_record(project, image_record(plan, image, pushed))
    subject = Subject(built.platform.digest, built.platform.media_type, 10, "linux/amd64")
    spdx = {"packages": [{"name": "busybox"}, {"name": "musl"}]}
    claims = [(subject, None, None, "signed"), (subject, "https://spdx.dev/Document", spdx, "")]
    note_supply(project, "web", where.identity, claims)

    page = project / "out" / "report.html"
    done = syntra(project, "report", "--output", str(page))
    assert done.code == 0, done.err
    assert done.out == f"wrote {page}\n"
    text = page.read_text()
    assert "<script" not in text and "http" not in text.split("</style>")[0]

    shot = request.config.cache.mkdir("screenshots") / "report.png"
    body = _in_chromium(page, shot)
    print(f"screenshot: {shot}")
    assert "doit render" in body and "2 ran, 0 up to date" in body and "render:stale" in body
    assert digest in body and built.platform.digest in body
    assert "layer 2" in body and "linux/amd64" in body
    assert "spdx-json: 2 packages" in body and "signed" in body
    assert shot.stat().st_size > 10_000


def _client(registry: str) -> Any:
    from syntra.oci import Client

    return Client(registry, insecure=True)


def _tree(spans: list[Any]) -> Counter[tuple[str, ...]]:
    """Each span as the names on its way up to the root: the shape of a trace."""
    by_id = {span.span_id: span for span in spans}

    def path(span: Any) -> tuple[str, ...]:
        parent = by_id.get(span.parent_id)
        return (*path(parent), span.name) if parent else (span.name,)

    return Counter(path(span) for span in spans)


def _counted(otlp: Receiver) -> dict[str, int]:
    """How many of each metric's measurements arrived (a histogram's count, a sum's value)."""
    return {
        name: sum(int(getattr(p, "count", 0) or p.as_int) for p in points)
        for name, points in otlp.metrics.items()
    }


def test_parallel_runs_trace_like_sequential_ones(
    tmp_path: Path, base: str, otlp: Receiver
) -> None:
    """`doit -n 1` and `-n 2` fork workers (`-P thread`: threads): their builds, pushes and
    plugin calls are still under their tasks, every task under the run, every metric
    counted, the trace file equal to what OTLP got, as in a sequential run."""
    extra = (
        "    repository: tests/parallel\n    platforms: [linux/amd64]\n"
        "wasm:\n  fib-c:\n    language: c\n    source: guest\n"
        "    tests: [{call: fib, args: [10], expect: 55}, {call: fib, args: [24], expect: 46368}]\n"
    )
    trees, counts = [], []
    runs = {  # doit's -n 1 is already one forked worker; without -n, no worker at all
        "sequential": [],
        "1": ["-n", "1"],
        "2": ["-n", "2"],
        "threads": ["-n", "2", "-P", "thread"],
    }
    for workers, options in runs.items():  # each in a registry of its own: nothing reused
        with serve() as target:
            root = make_project(tmp_path / f"repo-{workers}", target, base, extra)
            (root / "guest").mkdir()
            shutil.copy(REPO / "WebAssembly" / "Guest" / "C" / "fib.c", root / "guest")
            commit(root, "guest")
            otlp.spans.clear()
            otlp.metrics.clear()
            trace = tmp_path / f"trace-{workers}.json"
            done = run(
                root, "doit", *options, "docker", "wasm", env={telemetry.TRACE_ENV: str(trace)}
            )
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stderr == ""
        (run_span,) = [s for s in otlp.spans if not s.parent_id]
        assert run_span.name == "RUN doit"
        assert {s.trace_id for s in otlp.spans} == {run_span.trace_id}
        tree = _tree(otlp.spans)
        assert ("RUN doit", "docker:app", "build app linux/amd64") in tree
        assert ("RUN doit", "docker:app", "push tests/parallel") in tree
        assert tree[("RUN doit", "wasm:fib-c.test", "call fib-c.fib")] == 2
        pushed = otlp.named("docker:app").attributes  # what the worker noted on its task
        assert pushed["syntra.digest"] == record(root)["digest"]
        tasks = {s.name for s in otlp.spans if "cicd.pipeline.task.name" in s.attributes}
        for path in tree:  # every span of work under a task, every task under the run
            assert len(path) == 1 or path[1] in tasks, path
        events = json.loads(trace.read_text())["traceEvents"]  # the file: what OTLP got
        (root_event,) = [e for e in events if e["name"] == "RUN doit"]
        work = [e for e in events if e["name"].startswith(("build ", "push ", "call "))]
        forked = {e["pid"] != root_event["pid"] for e in work}  # a worker's own tracks
        assert forked == {workers in ("1", "2")}, workers
        assert sorted(e["args"]["span_id"] for e in events) == sorted(s.span_id for s in otlp.spans)
        trees.append(tree)
        counts.append(_counted(otlp))
        used = {key for span in otlp.spans for key in span.attributes}
        assert used <= _documented_attributes(), used - _documented_attributes()
    assert all(tree == trees[0] for tree in trees[1:])
    for name in (
        "syntra.plugin.calls",
        "syntra.plugin.memory",
        "syntra.transfer.bytes",
        "syntra.transfer.blobs",
        "syntra.task.duration",
        "syntra.cache.outcomes",
    ):
        assert counts[0].get(name, 0) > 0, (name, counts[0])
        assert name in counts[1], (name, counts[1])
    for counted in counts[1:]:
        assert counted["syntra.plugin.calls"] == counts[0]["syntra.plugin.calls"] == 2
        assert counted["syntra.task.duration"] == counts[0]["syntra.task.duration"]
        assert counted["syntra.transfer.blobs"] == counts[0]["syntra.transfer.blobs"]


def _in_chromium(page: Path, shot: Path | None = None) -> str:
    """The text Chromium shows for `page` (and its full screenshot at `shot`); any console
    or page error fails the test."""
    from playwright.sync_api import sync_playwright

    problems: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=["--no-sandbox"]
        )
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        tab.on("pageerror", lambda e: problems.append(str(e)))
        tab.goto(page.as_uri())
        body = tab.inner_text("body")
        if shot is not None:
            tab.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert problems == []
    return body


def test_the_report_of_a_failed_run_gives_each_test_its_own_outcome(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    guests = (
        "wasm:\n  fib-c:\n    language: c\n    source: guest\n    tests:\n"
        "      - {call: fib, args: [10], expect: 55}\n"
        "      - {call: fib, args: [24], expect: 46369}\n"
        "      - {call: fib, args: [5], expect: 5}\n"
    )
    root = make_project(tmp_path / "repo", "127.0.0.1:9", "127.0.0.1:9/base:1", guests)
    (root / "guest").mkdir()
    shutil.copy(REPO / "WebAssembly" / "Guest" / "C" / "fib.c", root / "guest")
    commit(root, "guest")
    failed = run(root, "doit", "wasm:fib-c.test")
    assert failed.returncode != 0
    assert "fib(24) returned 46368, expected 46369" in failed.stdout + failed.stderr

    page = root / "report.html"
    done = syntra(root, "report", "--output", str(page))
    assert (done.code, done.out) == (1, f"wrote {page}\n")  # docs/exit-codes.md
    assert done.err == "the reported run failed: doit wasm:fib-c.test\n"
    shown = _in_chromium(page)
    assert "This run failed: wasm:fib-c.test." in shown
    tests = [line for line in shown.splitlines() if line.startswith("fib-c\twasm\t")]
    rows = {line.split("\t")[2]: line for line in tests}
    assert set(rows) == {"fib(10) = 55", "fib(24) = 46369", "fib(5) = 5"}
    assert "passed" in rows["fib(10) = 55"] and "fib(10) = 55 in" in rows["fib(10) = 55"]
    assert "passed" in rows["fib(5) = 5"] and "46369" not in rows["fib(5) = 5"]
    assert "failed" in rows["fib(24) = 46369"] and "returned 46368" in rows["fib(24) = 46369"]
    assert "expected 46369" not in rows["fib(10) = 55"] + rows["fib(5) = 5"]

    assert run(root, "doit", "render").returncode == 0  # a run that succeeds: exit 0
    assert syntra(root, "report", "--output", str(page)).code == 0


def _documented_attributes() -> set[str]:
    """The span attributes docs/observability.md lists in its table."""
    page = (REPO / "docs" / "observability.md").read_text()
    section = page.split("## Span names and attributes")[1].split("\n## ")[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([a-z_.]+)`", row)}


def test_the_documented_cost_bound_is_the_one_in_force() -> None:
    from syntra import otlpexport

    page = (REPO / "docs" / "observability.md").read_text().replace("\n", " ")
    assert f"gives up after {otlpexport.REQUEST_TIMEOUT} s" in page
    assert f"waits at most {otlpexport.FINISH_BUDGET} s" in page
    assert otlpexport.REQUEST_TIMEOUT + otlpexport.FINISH_BUDGET <= 1.0  # "at most about 1 s"


@pytest.mark.parametrize("collector", ["dead", "stalled", "unknown"])
def test_a_collector_that_is_down_is_one_warning_line(project: Path, collector: str) -> None:
    """The time it costs is measured by bench/telemetry.py; here: what the user sees."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        if collector == "stalled":
            server.listen(8)  # connections wait in the backlog: nobody ever answers
        endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
        if collector == "unknown":
            endpoint = "http://collector.invalid:4318"  # a name that never resolves
        done = run(project, "doit", "render", env={OTEL: endpoint})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(".  render:") == 2
    assert done.stderr == (
        f"telemetry: cannot reach the OpenTelemetry collector at {endpoint}/v1/traces "
        "(not sending this run's traces and metrics)\n"
    )


def test_syntra_trace_and_trace_flag_refuse_an_unwritable_file_alike(
    project: Path, syntra: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    said = "/proc/syntra/trace.json: cannot write the trace (No such file or directory)\n"
    done = run(project, "doit", "render", env={telemetry.TRACE_ENV: "/proc/syntra/trace.json"})
    assert (done.returncode, done.stdout, done.stderr) == (3, "", said)
    monkeypatch.setenv(telemetry.TRACE_ENV, "/proc/syntra/trace.json")
    assert syntra(project, "validate") == Result(3, "", said)
    monkeypatch.delenv(telemetry.TRACE_ENV)
    assert syntra(project, "--trace", "/proc/syntra/trace.json", "validate") == Result(3, "", said)


def test_the_report_of_failed_image_tests_gives_each_its_own_outcome(
    tmp_path: Path, registry: str, base: str, syntra: Callable[..., Result]
) -> None:
    tests = (
        "    repository: tests/reported\n    platforms: [linux/amd64]\n    tests:\n"
        "      - file: /srv/index.html\n      - file: /srv/missing.html\n"
    )
    root = make_project(tmp_path / "repo", registry, base, tests)
    assert run(root, "doit", "docker").returncode != 0
    page = root / "report.html"
    assert syntra(root, "report", "--output", str(page)).code == 1
    rows = [line for line in _in_chromium(page).splitlines() if line.startswith("app\t")]
    assert "app\tlinux/amd64\tfile /srv/index.html\tpassed" in rows
    assert "app\tlinux/amd64\tfile /srv/missing.html\tfailed: does not exist" in rows
