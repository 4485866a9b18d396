"""What a doit run did, task by task: doit's own console lines, plus a span per task
(a child of the run's span) and the run's timeline in `layout.last_run` for
`syntra report`.

doit does not execute a task that is up to date, so no code of the task sees it; its
reporter does. This reporter gives every task with actions a span from the moment doit
checks it: `syntra.cache.outcome` is `hit` (up to date), `executed` or `skipped`
(ignored), with the OpenTelemetry CI/CD attributes of a task run.
"""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path
from typing import Any, Literal

from doit.reporter import ConsoleReporter
from pydantic import BaseModel, ConfigDict, ValidationError

from syntra import progress, telemetry
from syntra.fsutil import write_atomic
from syntra.invocation import invocation
from syntra.paths import last_run
from syntra.redaction import redact

Outcome = Literal["hit", "executed", "skipped", "failed"]
_TYPES = {"test": "test", "publish": "deploy", "supply": "deploy", "release": "deploy"}
"""The `cicd.pipeline.task.type` of a task, by its stage or step; others build."""


class TaskRun(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    outcome: Outcome
    start: float
    """Seconds since the epoch, when doit began to check the task."""
    end: float
    error: str = ""


class RunLog(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    command: str
    run_id: str
    start: float
    end: float
    result: Literal["success", "failure"]
    tasks: list[TaskRun]


def read_last_run(root: Path) -> RunLog | None:
    """The last run's timeline, or None when there is none (or not a sound one)."""
    try:
        return RunLog.model_validate_json(last_run(root).read_bytes())
    except (OSError, ValidationError):
        return None


_STEPS = {"render": {"stale", "compose"}}
"""Tasks of a stage that are a step of its own, not an artifact (`render:stale` removes
the specs of images no longer configured): doit's names keep an image from being named so."""


def _labels(name: str) -> dict[str, str]:
    """`wasm:fib.test` -> stage wasm, guest fib, step test; `docker:app` -> image app;
    `render:stale` -> stage render, step stale (no artifact)."""
    stage, _, artifact = name.partition(":")
    artifact, _, step = artifact.rpartition(".") if stage == "wasm" else (artifact, "", "")
    if artifact in _STEPS.get(stage, ()):
        artifact, step = "", artifact
    labels = {"syntra.stage": stage, "cicd.pipeline.task.type": _TYPES.get(step or stage, "build")}
    if artifact:
        labels["syntra.artifact"] = artifact
        if stage != "supply":  # supply signs images and guests alike
            labels["syntra.guest" if stage == "wasm" else "syntra.image"] = artifact
    if step:
        labels["syntra.step"] = step
    return labels


class Reporter(ConsoleReporter):  # type: ignore[misc]
    """doit's console reporter, watched (DOIT_CONFIG `reporter`)."""

    desc = "console output, with a span per task and the run's timeline"

    def __init__(self, outstream: Any, options: dict[str, Any]) -> None:
        super().__init__(outstream, options)
        self.run_id = uuid.uuid4().hex
        self.started = time.time_ns()
        self.checked: dict[str, int] = {}
        self.open: dict[str, telemetry.Span] = {}
        self.timeline: list[TaskRun] = []
        self.run: telemetry.Span = telemetry.NULL
        self.failed = False

    def initialize(self, tasks: Any, selected_tasks: Any) -> None:
        progress.enable(sys.stderr.isatty())
        self.run = telemetry.open_run("doit", self.run_id, invocation())

    def get_status(self, task: Any) -> None:
        self.checked[task.name] = time.time_ns()

    def execute_task(self, task: Any) -> None:
        super().execute_task(task)
        if task.actions:  # not made current: the task may run in another thread or process
            self.open[task.name] = telemetry.open_task(
                task.name, self._attributes(task), self.checked.get(task.name)
            )

    def add_success(self, task: Any) -> None:
        super().add_success(task)
        self._done(task, "executed")

    def add_failure(self, task: Any, fail: Any) -> None:
        super().add_failure(task, fail)
        self.failed = True
        self._done(task, "failed", fail.get_msg().strip().splitlines()[-1:] or ["failed"])

    def skip_uptodate(self, task: Any) -> None:
        super().skip_uptodate(task)
        self._done(task, "hit")

    def skip_ignore(self, task: Any) -> None:
        super().skip_ignore(task)
        self._done(task, "skipped")

    def _attributes(self, task: Any) -> dict[str, str]:
        return {
            "cicd.pipeline.task.name": task.name,
            "cicd.pipeline.task.run.id": f"{self.run_id}/{task.name}",
            **_labels(task.name),
        }

    def _done(self, task: Any, outcome: Outcome, error: list[str] | None = None) -> None:
        if not task.actions:
            return  # a group: its tasks have their own spans
        now = time.time_ns()
        start = self.checked.get(task.name, now)
        span = self.open.pop(task.name, None) or telemetry.open_task(
            task.name, self._attributes(task), start
        )
        result = {"failed": "failure", "skipped": "skip"}.get(outcome, "success")
        cache = "executed" if outcome == "failed" else outcome
        span.set({"cicd.pipeline.task.run.result": result, "syntra.cache.outcome": cache})
        span.close(error=error[0] if error else None, end_ns=now)
        labels = {
            "cicd.pipeline.task.name": task.name,
            "syntra.stage": task.name.partition(":")[0],
            "syntra.cache.outcome": cache,
        }
        telemetry.record("syntra.task.duration", (now - start) / 1e9, labels)
        telemetry.record("syntra.cache.outcomes", 1, labels)
        self.timeline.append(
            TaskRun(
                name=task.name,
                outcome=outcome,
                start=start / 1e9,
                end=now / 1e9,
                error=redact(error[0]) if error else "",
            )
        )

    def runtime_error(self, msg: str) -> None:
        super().runtime_error(msg)
        self.failed = True

    def complete_run(self) -> None:
        super().complete_run()
        result: Literal["success", "failure"] = "failure" if self.failed else "success"
        self.run.set({"cicd.pipeline.result": result})
        self.run.close(error="a task failed" if self.failed else None)
        telemetry.finish()
        log = RunLog(
            command=redact(invocation()),
            run_id=self.run_id,
            start=self.started / 1e9,
            end=time.time_ns() / 1e9,
            result=result,
            tasks=self.timeline,
        )
        try:
            write_atomic(last_run(Path.cwd()), (log.model_dump_json(indent=2) + "\n").encode())
        except OSError as exc:
            print(f"cannot keep the run's timeline ({exc.strerror or exc})", file=sys.stderr)
