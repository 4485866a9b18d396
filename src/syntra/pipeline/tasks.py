"""The doit task graph: one task generator per stage, in pipeline order.

Tasks are data: what they read (file_dep, uptodate), what they write (targets), what
runs before them (task_dep), and which stage of `syntra.pipeline.stages` they call. The context
(config, plan, pinned bases) is built once per doit process; a bad syntra.yaml stops
doit with the line `syntra validate` prints, and its exit code.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from syntra import telemetry
from syntra.errors import EXIT_TOOL, SyntraError, failure
from syntra.formats import canonical_json
from syntra.paths import (
    BUILTIN_TEMPLATES,
    CONFIG_FILE,
    TEMPLATES_DIR,
    doit_began,
    doit_state,
    plugin_file,
    record_path,
    snapshot_dir,
    source_files,
    wasm_raw,
    wasm_tools,
)
from syntra.pipeline import stages
from syntra.pipeline.context import Context
from syntra.pipeline.tasklog import Reporter

TaskDict = dict[str, Any]

__all__ = [
    "DOIT_CONFIG",  # noqa: F822 (made by __getattr__)
    "task_ci",
    "task_container",
    "task_docker",
    "task_preflight",
    "task_release",
    "task_render",
    "task_supply",
    "task_wasm",
]


def __getattr__(name: str) -> Any:
    """`DOIT_CONFIG`, made when dodo.py imports it: the state folder must exist before doit
    opens its database there, and a folder that cannot be written is one line, not a
    traceback from doit."""
    if name != "DOIT_CONFIG":
        raise AttributeError(name)
    state = doit_state(Path.cwd())
    try:
        state.parent.mkdir(parents=True, exist_ok=True)
        probe = state.parent / ".writable"
        probe.touch()
        probe.unlink()
        if not state.exists():
            doit_began(Path.cwd()).touch()
    except OSError as exc:
        print(
            f"{state.parent}: cannot write Syntra's state ({exc.strerror or exc})", file=sys.stderr
        )
        raise SystemExit(EXIT_TOOL) from None
    if problem := telemetry.trace_problem():  # as `syntra --trace` does
        print(problem, file=sys.stderr)
        raise SystemExit(EXIT_TOOL)
    return {
        "dep_file": str(state.relative_to(Path.cwd())),
        "backend": "sqlite3",  # transactions: a run killed mid-write leaves the last state
        "default_tasks": ["preflight", "render", "ci", "wasm", "docker", "supply"],
        "verbosity": 2,
        "reporter": Reporter,  # doit's lines, plus a span per task and the run's timeline
    }


@cache
def _context() -> Context:
    """The run's context; a user error ends the run with one line."""
    try:
        ctx = Context.load(CONFIG_FILE)
        ctx.lock  # noqa: B018 (a lock that disagrees with syntra.yaml stops the run first)
    except SyntraError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
    for line in ctx.plan.warnings:  # what resolving skipped, said once per run
        print(line, file=sys.stderr)
    return ctx


def _act(stage: stages.Stage, label: str, name: str, task: Any) -> TaskFailed | None:
    """Run one stage for `name`, printing its lines, under the span of its doit `task`
    (in whichever process or thread doit runs it); a failure is one line naming the
    stage and the artifact (with SYNTRA_DEBUG=1, the traceback before it)."""
    try:
        with telemetry.in_task(task.name):
            for line in stage(_context(), name):
                print(line, flush=True)
    except (SyntraError, OSError) as exc:
        return TaskFailed(f"{' '.join(filter(None, (label, name)))}: {failure(exc)}")
    return None


def _action(stage: stages.Stage, label: str, name: str = "") -> tuple[Any, list[Any]]:
    return (_act, [stage, label, name])


def task_preflight() -> TaskDict:
    """Check build secrets, the signing key and push access to every registry before a
    full run starts any long work. Up to date while what it checks is unchanged (read
    locally), so a run with nothing to do opens no connection and needs no passphrase."""
    from syntra.pipeline.preflight import preconditions

    ctx = _context()
    checked = {"snapshot": not stages.publishes(ctx), **preconditions(ctx.loaded, ctx.plan)}
    return {
        "actions": [_action(stages.preflight, "preflight")],
        "uptodate": [config_changed(checked)],
    }


def _template_files(root: Path) -> list[str]:
    """Every template a render may include; templates are few, precision is not worth a parse."""
    own = sorted(str(p.relative_to(root)) for p in (root / TEMPLATES_DIR).glob("*.j2"))
    return own + sorted(str(p) for p in BUILTIN_TEMPLATES.glob("*.j2"))


def task_render() -> Iterator[TaskDict]:
    """Render ContainerSpecs/<image>/{Dockerfile,Containerfile} from templates."""
    from syntra.image.render import render_inputs
    from syntra.up.compose import COMPOSE_FILE, compose_inputs

    ctx = _context()
    templates = _template_files(ctx.root)
    for image in ctx.plan.images:
        sources = [image.source_dockerfile] if image.source_dockerfile else templates
        yield {
            "name": image.name,
            "actions": [_action(stages.render, "render", image.name)],
            "file_dep": sources,
            "targets": [image.dockerfile, image.containerfile],
            "uptodate": [config_changed(render_inputs(image, ctx.plan.project))],
            "clean": True,
        }
    yield {
        "name": "stale",
        "doc": "remove specs of images no longer in syntra.yaml",
        "actions": [_action(stages.prune, "render stale")],
        "uptodate": [config_changed({"images": sorted(i.name for i in ctx.plan.images)})],
    }
    if not ctx.loaded.config.services and not (ctx.root / COMPOSE_FILE).exists():
        return
    yield {
        "name": "compose",
        "doc": "render ContainerSpecs/compose.yaml from syntra.yaml's services",
        "actions": [_action(stages.compose, "render compose")],
        # the file is a target only while there are services: without, the task removes it
        "targets": [COMPOSE_FILE] if ctx.loaded.config.services else [],
        "uptodate": [config_changed(compose_inputs(ctx.loaded, ctx.plan))],
    }


class _Unchanged:
    """An uptodate check computed only when doit asks, because it may talk to the
    registry or read many files. `state(ctx, name)` (the stage's own, in
    `pipeline.stages`) gives what must not have changed and
    whether the artifact is there at all; its digest is saved when the task succeeds."""

    def __init__(self, state: Callable[[Context, str], tuple[Any, bool]], name: str) -> None:
        self.state = state
        self.name = name
        self.digest = ""

    def configure_task(self, task: Any) -> None:
        task.value_savers.append(lambda: {"_state": self.digest})

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        try:
            value, present = self.state(_context(), self.name)
        except (SyntraError, OSError):
            return False  # the action says what is wrong, naming the stage
        self.digest = hashlib.sha256(canonical_json(value)).hexdigest()
        return present and values.get("_state") == self.digest


def _current(check: Callable[[Context, str], bool], name: str) -> bool:
    """doit's uptodate call of a stage's own check, with the run's context, for a record
    written under doit's present state. A record from before doit lost its state is not
    taken at its word: the task runs once and asks the registry, which finds what it
    holds and is sent nothing (the new record counts the bytes sent: none)."""
    return _remembered(_context().root, name) and check(_context(), name)


def _remembered(root: Path, name: str) -> bool:
    """Whether `name`'s record was written since doit's present state began (any task
    may have written it: `doit container` then `doit supply`)."""
    try:
        began = doit_began(root).stat().st_mtime_ns
    except FileNotFoundError:
        return True  # a state from before Syntra marked when it began
    try:
        return record_path(root, name).stat().st_mtime_ns > began
    except OSError:
        return False


def _image_tasks(stage: stages.Stage, label: str) -> Iterator[TaskDict]:
    ctx = _context()
    for image in ctx.plan.images:
        # Specs and plugins come from these tasks; their bytes are in the inputs digest.
        producers = [f"render:{image.name}", *(f"wasm:{p}.optimize" for p in image.plugins)]
        current: Any = (
            _Unchanged(stages.snapshot_state, image.name)
            if not stages.publishes(ctx)
            else (_current, [stages.image_current, image.name], {})
        )
        yield {
            "name": image.name,
            "actions": [_action(stage, label, image.name)],
            "task_dep": producers,
            "uptodate": [current],
        }


def task_docker() -> Iterator[TaskDict]:
    """Build every image for all its platforms and push it with its tags."""
    yield from _image_tasks(stages.image, "docker")


def task_container() -> Iterator[TaskDict]:
    """Build and push every image with Apple's container CLI (macOS 26, Apple silicon)."""
    yield from _image_tasks(stages.container, "container")


def task_wasm() -> Iterator[TaskDict]:
    """Compile, optimise, test in the sandbox and publish every WebAssembly guest."""
    ctx = _context()
    root = ctx.root
    for guest in ctx.plan.guests:
        name, out = guest.name, guest.output
        raw = str(wasm_raw(root, name).relative_to(root))
        sources = [str(p.relative_to(root)) for p in source_files(root / guest.source)]
        yield {
            "name": f"{name}.compile",
            "actions": [_action(stages.wasm_compile, "wasm compile", name)],
            "file_dep": sources,
            "targets": [raw, str(wasm_tools(root, name).relative_to(root))],
            "uptodate": [config_changed(guest.compile_inputs())],
        }
        yield {
            "name": f"{name}.optimize",
            "actions": [_action(stages.wasm_optimize, "wasm optimize", name)],
            "file_dep": [raw],
            "targets": [out],
            "uptodate": [config_changed({"level": guest.optimize})],
        }
        yield {
            "name": f"{name}.test",
            "actions": [_action(stages.wasm_test, "wasm test", name)],
            "file_dep": [out],
            "uptodate": [
                config_changed(
                    {"tests": guest.tests, "limits": guest.limits, "runtimes": guest.runtimes}
                )
            ],
        }
        after = [f"wasm:{name}.test"]
        if guest.web:
            after.append(f"wasm:{name}.web")
            yield {
                "name": f"{name}.web",
                "actions": [_action(stages.wasm_web, "wasm web", name)],
                "file_dep": [out],
                "task_dep": [f"wasm:{name}.test"],
                "uptodate": [_Unchanged(stages.web_state, name)],
            }
        if not stages.skipped(ctx, stages.wasm_snapshot):
            copied = snapshot_dir(root) / f"{name}.wasm"
            yield {
                "name": f"{name}.snapshot",
                "actions": [_action(stages.wasm_snapshot, "wasm snapshot", name)],
                "file_dep": [str(plugin_file(root, name).relative_to(root))],
                "task_dep": [f"wasm:{name}.test"],
                "targets": [str(copied.relative_to(root))],
            }
        elif guest.destination.registry:
            yield {
                "name": f"{name}.publish",
                "actions": [_action(stages.wasm_publish, "wasm publish", name)],
                "file_dep": [out],
                "task_dep": after,
                "uptodate": [_Unchanged(stages.wasm_publish_state, name)],
            }


def task_supply() -> Iterator[TaskDict]:
    """Sign every pushed digest and attach SBOMs and provenance (supply_chain.signing)."""
    ctx = _context()
    if ctx.loaded.config.supply_chain.signing.mode == "none" or stages.skipped(ctx, stages.supply):
        return
    for output in ctx.plan.outputs():
        yield {
            "name": output.name,
            "actions": [_action(stages.supply, "supply", output.name)],
            "task_dep": [output.task],
            "uptodate": [_Unchanged(stages.supply_state, output.name)],
        }


def task_release() -> TaskDict:
    """Promote the verified digests of a vX.Y.Z commit to the release tags."""
    return {"actions": [_action(stages.release, "release")], "uptodate": [False]}


def task_ci() -> TaskDict:
    """Render the GitHub Actions workflows into .github/workflows/."""
    ctx = _context()
    inputs = {"config": ctx.loaded.config.model_dump(mode="json"), "matrix": ctx.plan.matrix}
    return {"actions": [_action(stages.workflows, "ci")], "uptodate": [config_changed(inputs)]}
