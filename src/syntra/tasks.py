"""The doit task graph, one task generator per stage in pipeline order.

Tasks are data: what they read (file_dep, uptodate), what they write (targets) and
which stage function to call. Logic lives in the stage modules. The config and plan
are loaded once per doit process; a bad syntra.yaml stops doit with the same one
line `syntra validate` prints, and exit code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from syntra import config as config_stage
from syntra.errors import SyntraError
from syntra.layout import BUILTIN_TEMPLATES, CONFIG_FILE, STATE_DIR, TEMPLATES_DIR
from syntra.plan import Plan, build_plan

TaskDict = dict[str, Any]

__all__ = ["DOIT_CONFIG", "task_render"]

DOIT_CONFIG: dict[str, Any] = {
    "dep_file": f"{STATE_DIR}/doit.json",
    "backend": "json",
    "default_tasks": ["render"],
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
