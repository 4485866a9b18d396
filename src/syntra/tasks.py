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
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from doit.exceptions import TaskFailed
from doit.tools import config_changed

from syntra import config as config_stage
from syntra import refs
from syntra.errors import SyntraError
from syntra.fsutil import write_atomic
from syntra.layout import (
    BUILDER_ENV,
    BUILTIN_TEMPLATES,
    CONFIG_FILE,
    STATE_DIR,
    TEMPLATES_DIR,
    plugin_file,
    snapshot,
    snapshot_dir,
    source_files,
    wasm_cache,
    wasm_raw,
    wasm_tools,
)
from syntra.plan import Plan, build_plan
from syntra.records import find_record

TaskDict = dict[str, Any]

__all__ = [
    "DOIT_CONFIG",
    "task_ci",
    "task_container",
    "task_docker",
    "task_preflight",
    "task_release",
    "task_render",
    "task_supply",
    "task_wasm",
]

DOIT_CONFIG: dict[str, Any] = {
    "dep_file": f"{STATE_DIR}/doit.json",
    "backend": "json",
    "default_tasks": ["preflight", "render", "ci", "wasm", "docker", "supply"],
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


def _preflight() -> TaskFailed | None:
    from syntra import preflight

    loaded, plan = _loaded()
    try:
        preflight.build_secrets(loaded.root, plan.images)
        if snapshot():  # nothing is signed or pushed
            return None
        preflight.signing(loaded)
        preflight.push_access(loaded, preflight.destinations(plan))
    except SyntraError as exc:
        return TaskFailed(f"preflight: {exc}")
    return None


def task_preflight() -> TaskDict:
    """Check build secrets, the signing key and push access to every registry before a
    full run starts any long work."""
    return {"actions": [_preflight], "uptodate": [False], "verbosity": 2}


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


class _Unchanged:
    """An uptodate check computed only when doit asks, because it may talk to the
    registry or read many files. `state(name)` gives what must not have changed and
    whether the artifact is there at all; its digest is saved when the task succeeds."""

    def __init__(self, state: Callable[[str], tuple[Any, bool]], name: str) -> None:
        self.state = state
        self.name = name
        self.digest = ""

    def configure_task(self, task: Any) -> None:
        task.value_savers.append(lambda: {"_state": self.digest})

    def __call__(self, task: Any, values: dict[str, Any]) -> bool:
        try:
            value, present = self.state(self.name)
        except (SyntraError, OSError):
            return False  # the action says what is wrong, naming the stage
        self.digest = hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
        return present and values.get("_state") == self.digest


def _build_state(name: str) -> tuple[Any, bool]:
    """Build inputs (base image digest, context hash…) and whether what the task makes is
    there: the record of the push, or the snapshot archive."""
    from syntra.images import Job, build_inputs

    loaded, plan = _loaded()
    inputs = build_inputs(Job(loaded, plan, plan.image(name))) | {"snapshot": snapshot()}
    if snapshot():
        return inputs, _snapshot_archive(loaded.root, name).exists()
    return inputs, find_record(loaded.root, name) is not None


def _snapshot_archive(root: Path, image: str) -> Path:
    return snapshot_dir(root) / f"{image}.oci.tar"


def _supply_state(name: str) -> tuple[Any, bool]:
    """What was pushed where, and the supply-chain settings."""
    from syntra.records import read_record

    loaded, _ = _loaded()
    record = read_record(loaded.root, name).model_dump(mode="json", exclude={"uploaded_bytes"})
    return [record, loaded.config.supply_chain.model_dump()], True


def _publish_image(
    stage: str, name: str, start: Callable[[], tuple[str, Any]]
) -> TaskFailed | None:
    """Build and push one image; `start` picks the backend: (its label, job → record)."""
    from syntra.images import Job

    loaded, plan = _loaded()
    image = plan.image(name)
    try:
        label, publish = start()
        record = publish(Job(loaded, plan, image))
    except SyntraError as exc:
        return _failed(stage, name, exc)
    platforms = ", ".join(image.platforms)
    if record.retagged:
        print(f"{name}: {platforms} unchanged (already built from these inputs): retagged")
    else:
        print(f"{name}: built {platforms} with {label}")
    for result in record.tests:
        print(f"{name} {result.platform}: {result.test}: passed")
    print(f"{name}: {record.digest} -> {', '.join(record.refs)}")
    return None


def _snapshot_one(name: str) -> TaskFailed | None:
    """A snapshot: every platform built and tested, written to an OCI archive."""
    from syntra import build
    from syntra.images import Job, build_to

    loaded, plan = _loaded()
    image = plan.image(name)
    try:
        builder = build.select(os.environ.get(BUILDER_ENV) or loaded.config.builder)
        archive = _snapshot_archive(loaded.root, name)
        output = f"oci-archive:{archive}:{refs.tag_of(plan.version)}"
        written = build_to(Job(loaded, plan, image), builder, image.platforms, output)
    except SyntraError as exc:
        return _failed("snapshot", name, exc)
    print(f"{name}: snapshot of {', '.join(image.platforms)}: {written}; nothing pushed")
    return None


def _docker_one(name: str) -> TaskFailed | None:
    if snapshot():
        return _snapshot_one(name)

    def start() -> tuple[str, Any]:
        from syntra import build
        from syntra.images import build_and_publish

        loaded, _ = _loaded()
        builder = build.select(os.environ.get(BUILDER_ENV) or loaded.config.builder)
        return builder.name, lambda job: build_and_publish(job, builder)

    return _publish_image("docker", name, start)


def _container_one(name: str) -> TaskFailed | None:
    """Apple's CLI where it runs; elsewhere the Linux builder, with a note saying why."""
    from syntra.build.container import AppleContainer, Host, unavailable_reason

    reason = unavailable_reason(Host.here(), shutil.which("container"))
    if reason:
        print(f"{name}: {reason}: using the Linux builder")
        return _docker_one(name)

    def start() -> tuple[str, Any]:
        from syntra.images import build_with_container

        cli = AppleContainer()
        return f"container {'.'.join(map(str, cli.version))}", lambda job: build_with_container(
            job, cli
        )

    return _publish_image("container", name, start)


def _image_tasks(action: Any) -> Iterator[TaskDict]:
    loaded, plan = _loaded()
    for image in plan.images:
        plugins = [str(plugin_file(loaded.root, p).relative_to(loaded.root)) for p in image.plugins]
        yield {
            "name": image.name,
            "actions": [(action, [image.name])],
            "file_dep": [image.dockerfile, image.containerfile, *plugins],
            "uptodate": [_Unchanged(_build_state, image.name)],
        }


def task_docker() -> Iterator[TaskDict]:
    """Build every image for all its platforms and push it with its tags."""
    yield from _image_tasks(_docker_one)


def task_container() -> Iterator[TaskDict]:
    """Build and push every image with Apple's container CLI (macOS 26, Apple silicon)."""
    yield from _image_tasks(_container_one)


def _wasm_step(step: str, name: str) -> TaskFailed | None:
    from syntra.wasm import artifact, compile, optimize, sandbox

    loaded, plan = _loaded()
    root, guest = loaded.root, next(g for g in plan.guests if g.name == name)
    raw, out, cache = wasm_raw(root, name), root / guest.output, wasm_cache(root)
    try:
        if step == "compile":
            tools = wasm_tools(root, name)
            caveat = compile.compile_guest(guest, root, raw, guest.source_date_epoch, cache, tools)
            note = f" ({caveat})" if caveat else ""
            print(f"{name}: compiled {raw.stat().st_size} bytes{note}")
        elif step == "optimize":
            result = optimize.optimize(raw, out, guest.optimize)
            sizes = f"{result.size_before} -> {result.size_after} bytes"
            print(f"{name}: {result.kind}, {sizes} ({result.note})")
        elif step == "test":
            for call in sandbox.run_tests(guest, out, cache):
                shown = ", ".join(json.dumps(arg) for arg in call.args)
                print(f"{name}: {call.call}({shown}) = {json.dumps(call.value)} "
                      f"in {call.elapsed_ms:.1f} ms")  # fmt: skip
        else:
            record = artifact.publish(loaded.config, guest, plan, out, root, cache)
            print(f"{name}: {record.digest} -> {', '.join(record.refs)}")
    except SyntraError as exc:
        return _failed(f"wasm {step}", name, exc)
    return None


def task_wasm() -> Iterator[TaskDict]:
    """Compile, optimise, test in the sandbox and publish every WebAssembly guest."""
    loaded, plan = _loaded()
    root = loaded.root
    for guest in plan.guests:
        name, out = guest.name, guest.output
        raw = str(wasm_raw(root, name).relative_to(root))
        sources = [str(p.relative_to(root)) for p in source_files(root / guest.source)]
        compile_inputs = {
            k: getattr(guest, k) for k in ("language", "mode", "product", "world", "wit", "app")
        }
        yield {
            "name": f"{name}.compile",
            "actions": [(_wasm_step, ["compile", name])],
            "file_dep": sources,
            "targets": [raw, str(wasm_tools(root, name).relative_to(root))],
            "uptodate": [config_changed(compile_inputs)],
        }
        yield {
            "name": f"{name}.optimize",
            "actions": [(_wasm_step, ["optimize", name])],
            "file_dep": [raw],
            "targets": [out],
            "uptodate": [config_changed({"level": guest.optimize})],
        }
        yield {
            "name": f"{name}.test",
            "actions": [(_wasm_step, ["test", name])],
            "file_dep": [out],
            "uptodate": [config_changed({"tests": guest.tests, "limits": guest.limits})],
        }
        if snapshot():
            copied = snapshot_dir(root) / f"{name}.wasm"
            yield {
                "name": f"{name}.snapshot",
                "actions": [(_copy_file, [root / out, copied])],
                "file_dep": [out],
                "task_dep": [f"wasm:{name}.test"],
                "targets": [str(copied.relative_to(root))],
            }
        elif guest.destination.registry:
            published = find_record(root, name) is not None
            yield {
                "name": f"{name}.publish",
                "actions": [(_wasm_step, ["publish", name])],
                "file_dep": [out],
                "task_dep": [f"wasm:{name}.test"],
                "uptodate": [config_changed({"refs": guest.destination.refs}), published],
            }


def _supply_one(name: str) -> TaskFailed | None:
    from syntra.records import read_record
    from syntra.supply.stage import secure

    loaded, plan = _loaded()
    destinations = {i.name: i.destinations for i in plan.images}
    destinations |= {g.name: g.destinations for g in plan.guests}
    try:
        record = read_record(loaded.root, name)
        for destination in destinations[name]:  # each registry signs for its own name
            for line in secure(loaded, plan, record, destination):
                print(f"{name}: {line}")
    except SyntraError as exc:
        return _failed("supply", name, exc)
    return None


def _copy_file(source: Path, target: Path) -> None:
    write_atomic(target, source.read_bytes())


def task_supply() -> Iterator[TaskDict]:
    """Sign every pushed digest and attach SBOMs and provenance (supply_chain.signing)."""
    loaded, plan = _loaded()
    if loaded.config.supply_chain.signing.mode == "none" or snapshot():
        return
    pushed = [(i.name, f"docker:{i.name}") for i in plan.images]
    pushed += [(g.name, f"wasm:{g.name}.publish") for g in plan.guests if g.destination.registry]
    for name, producer in pushed:
        yield {
            "name": name,
            "actions": [(_supply_one, [name])],
            "task_dep": [producer],
            "uptodate": [_Unchanged(_supply_state, name)],
        }


def _release() -> TaskFailed | None:
    from syntra.release import run_release

    loaded, _ = _loaded()
    try:
        code = run_release(loaded)
    except SyntraError as exc:
        return TaskFailed(f"release: {exc}")
    return TaskFailed("release: refused (see above)") if code else None


def task_release() -> TaskDict:
    """Promote the verified digests of a vX.Y.Z commit to the release tags."""
    return {"actions": [_release], "uptodate": [False], "verbosity": 2}


def _render_ci() -> TaskFailed | None:
    from syntra import ci

    loaded, plan = _loaded()
    try:
        for path in ci.write(ci.render(loaded, plan), loaded.root):
            print(f"rendered {path}")
    except SyntraError as exc:
        return TaskFailed(f"ci: {exc}")
    return None


def task_ci() -> TaskDict:
    """Render the GitHub Actions workflows into .github/workflows/."""
    loaded, plan = _loaded()
    inputs = {"config": loaded.config.model_dump(mode="json"), "matrix": plan.matrix}
    return {"actions": [_render_ci], "uptodate": [config_changed(inputs)], "verbosity": 2}
