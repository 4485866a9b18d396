"""The doit task graph, one task generator per stage in pipeline order.

Tasks are data: what they read (file_dep, uptodate), what they write (targets) and
which stage function to call. Logic lives in the stage modules. The config and plan
are loaded once per doit process; a bad syntra.yaml stops doit with the same one
line `syntra validate` prints, and exit code 2.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from syntra import config as config_stage
from syntra.errors import SyntraError
from syntra.layout import (
    BUILDER_ENV,
    BUILTIN_TEMPLATES,
    CONFIG_FILE,
    STATE_DIR,
    TEMPLATES_DIR,
    record_path,
)
from syntra.plan import Plan, build_plan

TaskDict = dict[str, Any]

__all__ = ["DOIT_CONFIG", "task_container", "task_docker", "task_render"]

DOIT_CONFIG: dict[str, Any] = {
    "dep_file": f"{STATE_DIR}/doit.json",
    "backend": "json",
    "default_tasks": ["render", "docker"],
    "verbosity": 2,
}


@cache
def _loaded() -> tuple[config_stage.Loaded, Plan]:
    """Config and plan for this doit run; a user error ends the run with one line."""
    Path(STATE_DIR).mkdir(exist_ok=True)
    try:
        loaded = config_stage.load(CONFIG_FILE)
        return loaded, build_plan(loaded)
    except SyntraError as exc:
        print(exc, file=sys.stderr)
        raise SystemExit(exc.exit_code) from None


def _failed(stage: str, name: str, exc: SyntraError) -> TaskFailed:
    return TaskFailed(f"{stage} {name}: {exc}")


def _render_one(name: str) -> TaskFailed | None:
    from syntra import render

    loaded, plan = _loaded()
    try:
        specs = render.render_image(plan.image(name), loaded.root, plan.project)
    except SyntraError as exc:
        return _failed("render", name, exc)
    for path in render.write(specs, loaded.root):
        print(f"rendered {path}")
    return None


def _prune_stale() -> None:
    from syntra import render

    loaded, plan = _loaded()
    for path in render.prune(plan, loaded.root):
        print(f"removed {path}/ (no such image)")


def _template_files(root: Path) -> list[str]:
    """Every template a render may include; templates are few, precision is not worth a parse."""
    own = sorted(str(p.relative_to(root)) for p in (root / TEMPLATES_DIR).glob("*.j2"))
    return own + sorted(str(p) for p in BUILTIN_TEMPLATES.glob("*.j2"))


def task_render() -> Iterator[TaskDict]:
    """Render ContainerSpecs/<image>/{Dockerfile,Containerfile} from templates."""
    from syntra.render import render_inputs

    loaded, plan = _loaded()
    templates = _template_files(loaded.root)
    for image in plan.images:
        sources = [image.source_dockerfile] if image.source_dockerfile else templates
        yield {
            "name": image.name,
            "actions": [(_render_one, [image.name])],
            "file_dep": sources,
            "targets": [image.dockerfile, image.containerfile],
            "uptodate": [config_changed(render_inputs(image, plan.project))],
            "clean": True,
        }
    yield {
        "name": "stale",
        "doc": "remove specs of images no longer in syntra.yaml",
        "actions": [_prune_stale],
        "uptodate": [config_changed({"images": sorted(i.name for i in plan.images)})],
    }


class _InputsUnchanged:
    """uptodate check computed only when doit asks: build inputs include the base
    image's current digest (a registry request) and a hash of the build context."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.digest = ""

    def configure_task(self, task: Any) -> None:
        task.value_savers.append(lambda: {"_inputs": self.digest})

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        from syntra.images import Job, build_inputs

        loaded, plan = _loaded()
        try:
            inputs = build_inputs(Job(loaded, plan, plan.image(self.image)))
        except SyntraError:
            return False  # the action reports it, naming the stage and image
        self.digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
        pushed = record_path(loaded.root, self.image).is_file()
        return pushed and values.get("_inputs") == self.digest


def _docker_one(name: str) -> TaskFailed | None:
    from syntra import build
    from syntra.images import Job, build_and_publish

    loaded, plan = _loaded()
    try:
        preference = os.environ.get(BUILDER_ENV) or loaded.config.builder
        builder = build.select(preference)
        print(f"{name}: building {', '.join(plan.image(name).platforms)} with {builder.name}")
        record = build_and_publish(Job(loaded, plan, plan.image(name)), builder)
    except SyntraError as exc:
        return _failed("docker", name, exc)
    print(f"{name}: {record['digest']} -> {', '.join(record['refs'])}")
    return None


def _container_one(name: str) -> TaskFailed | None:
    """Apple's CLI where it runs; elsewhere the Linux builder, with a note saying why."""
    from syntra.build.container import AppleContainer, Host, unavailable_reason
    from syntra.images import Job, build_with_container

    reason = unavailable_reason(Host.here(), shutil.which("container"))
    if reason:
        print(f"{name}: {reason}: using the Linux builder")
        return _docker_one(name)
    loaded, plan = _loaded()
    try:
        cli = AppleContainer()
        version = ".".join(map(str, cli.version))
        print(f"{name}: building {', '.join(plan.image(name).platforms)} with container {version}")
        record = build_with_container(Job(loaded, plan, plan.image(name)), cli)
    except SyntraError as exc:
        return _failed("container", name, exc)
    print(f"{name}: {record['digest']} -> {', '.join(record['refs'])}")
    return None


def _image_tasks(action: Any) -> Iterator[TaskDict]:
    _, plan = _loaded()
    for image in plan.images:
        yield {
            "name": image.name,
            "actions": [(action, [image.name])],
            "file_dep": [image.dockerfile, image.containerfile],
            "uptodate": [_InputsUnchanged(image.name)],
        }


def task_docker() -> Iterator[TaskDict]:
    """Build every image for all its platforms and push it with its tags."""
    yield from _image_tasks(_docker_one)


def task_container() -> Iterator[TaskDict]:
    """Build and push every image with Apple's container CLI (macOS 26, Apple silicon)."""
    yield from _image_tasks(_container_one)
