"""The pipeline's stages, one shape for all: `stage(ctx, name) -> lines`.

A stage does its work for one artifact (or the whole run, with `name` empty) and
yields what to report. `pipeline.tasks` makes doit tasks of them and `cli.commands` commands;
neither adds logic. A stage raises SyntraError (or OSError) with one line; the
adapters say which stage and artifact it came from.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from syntra import refs
from syntra.errors import SyntraError
from syntra.fsutil import write_atomic
from syntra.paths import (
    BUILTIN_TEMPLATES,
    plugin_file,
    snapshot_dir,
    wasm_cache,
    wasm_raw,
    wasm_tools,
    web_dir,
)
from syntra.pipeline.context import Context
from syntra.plan import GuestPlan, Output
from syntra.records import ImageRecord, find_record

Report = Iterator[str]
Stage = Callable[[Context, str], Report]


def publishes(ctx: Context) -> bool:
    """Whether this run pushes, signs and releases: not in a snapshot, which builds, tests
    and writes to dist/snapshot/ instead. The one place that reads the run's snapshot
    decision (`Context.snapshot`); the adapters ask here or `skipped`."""
    return not ctx.snapshot


def skipped(ctx: Context, stage: Stage) -> bool:
    """Whether the run skips `stage`, as GoReleaser's skip middleware decides: a
    snapshot publishes no wasm artifact and signs nothing; a run that publishes copies
    no guest to dist/snapshot/."""
    if publishes(ctx):
        return stage is wasm_snapshot
    return stage in (wasm_publish, supply)


def preflight(ctx: Context, name: str = "") -> Report:
    """Build secrets, the signing key and push access to every registry, before a full
    run starts any long work."""
    from syntra.image import buildsecrets
    from syntra.pipeline import preflight as checks
    from syntra.supply import keys

    buildsecrets.check(ctx.root, ctx.plan.images)
    if not publishes(ctx):  # nothing is signed or pushed
        return
    keys.check_signing(ctx.loaded)
    checks.push_access(ctx.registries, checks.destinations(ctx.plan))
    yield from ()


def render(ctx: Context, name: str) -> Report:
    """ContainerSpecs/<image>/{Dockerfile,Containerfile} from templates."""
    from syntra.image import render as specs

    rendered = specs.render_image(ctx.plan.image(ctx.check_image(name)), ctx.root, ctx.plan.project)
    for path in specs.write_specs(rendered, ctx.root):
        yield f"rendered {path}"


def prune(ctx: Context, name: str = "") -> Report:
    """Specs of images no longer in syntra.yaml, removed."""
    from syntra.image import render as specs

    for path in specs.prune(ctx.plan, ctx.root):
        yield f"removed {path} (no such image)"


def compose(ctx: Context, name: str = "") -> Report:
    """ContainerSpecs/compose.yaml from syntra.yaml's services; removed when it has none."""
    from syntra import generated
    from syntra.up import compose as stack

    rendered = stack.render(ctx.loaded, ctx.plan)
    for path in generated.write_generated(rendered, ctx.root):
        yield f"rendered {path}"
    for path in generated.prune(stack.COMPOSE, [file.path for file in rendered], ctx.root):
        yield f"removed {path} (no services)"


def workflows(ctx: Context, name: str = "") -> Report:
    """.github/workflows/ from syntra.yaml; workflows no longer generated, removed."""
    from syntra.ci import workflows as ci

    for path in ci.write_workflows(ci.render(ctx.loaded, ctx.plan), ctx.root):
        yield f"rendered {path}"


def image(ctx: Context, name: str) -> Report:
    """Every platform built with the run's backend, tested and pushed with its tags; in
    a snapshot run, written to dist/snapshot/<image>.oci.tar instead."""
    from syntra.image.job import build_to, publish_image

    job = ctx.job(name)
    backend, note = ctx.backend()
    if note:
        yield f"{name}: {note}"
    platforms = ", ".join(job.image.platforms)
    if not publishes(ctx):
        archive = snapshot_archive(ctx, name)
        output = f"oci-archive:{archive}:{refs.tag_of(ctx.plan.version)}"
        written = build_to(job, backend, job.image.platforms, output)
        yield f"{name}: snapshot of {platforms}: {written}; nothing pushed"
        return
    record = publish_image(job, backend)
    if record.retagged:
        yield f"{name}: {platforms} unchanged (already built from these inputs): retagged"
    else:
        yield f"{name}: built {platforms} with {backend.label}"
    for result in record.tests:
        yield f"{name} {result.platform}: {result.test}: passed"
    yield f"{name}: {record.digest} -> {', '.join(record.refs)}"


def container(ctx: Context, name: str) -> Report:
    """`image` with Apple's container CLI; off a Mac, the Linux builder with a note."""
    yield from image(dataclasses.replace(ctx, builder="container"), name)


def snapshot_archive(ctx: Context, image: str) -> str:
    return str(snapshot_dir(ctx.root) / f"{image}.oci.tar")


def merge(ctx: Context, name: str) -> Report:
    """The index over the digests `syntra build --push-by-digest` pushed, with its tags."""
    from syntra.image.job import merge as merge_index

    record = merge_index(ctx.job(name))
    yield f"{name}: {record.digest} -> {', '.join(record.refs)}"


def wasm_compile(ctx: Context, name: str) -> Report:
    from syntra.wasm import compile

    guest, root = ctx.plan.guest(name), ctx.root
    raw = wasm_raw(root, name)
    caveat = compile.compile_guest(
        guest, root, raw, guest.source_date_epoch, wasm_cache(root), wasm_tools(root, name)
    )
    note = f" ({caveat})" if caveat else ""
    yield f"{name}: compiled {raw.stat().st_size} bytes{note}"


def wasm_optimize(ctx: Context, name: str) -> Report:
    from syntra.wasm import optimize

    guest = ctx.plan.guest(name)
    result = optimize.optimize(wasm_raw(ctx.root, name), ctx.root / guest.output, guest.optimize)
    sizes = f"{result.size_before} -> {result.size_after} bytes"
    yield f"{name}: {result.kind}, {sizes} ({result.note})"


def wasm_test(ctx: Context, name: str) -> Report:
    from syntra import testruns
    from syntra.plugins import sandbox
    from syntra.plugins.codecache import default_cache

    guest = ctx.plan.guest(name)
    first, *others = guest.runtimes
    agree = f" ({first}; {', '.join(others)} agrees)" if others else ""
    outcomes: list[testruns.TestOutcome] = []
    failures: list[SyntraError] = []
    wasm, cache = ctx.root / guest.output, default_cache()
    for test, call in sandbox.each_test(guest, wasm, cache):  # a failure hides no other test
        declared = testruns.guest_label(test)
        if isinstance(call, SyntraError):
            failures.append(call)
            outcomes.append(
                testruns.TestOutcome(
                    test=declared, platform="wasm", outcome="failed", message=str(call)
                )
            )
            continue
        shown = ", ".join(json.dumps(arg) for arg in call.args)
        said = f"{call.call}({shown}) = {json.dumps(call.value)} in {call.elapsed_ms:.1f} ms{agree}"
        outcomes.append(
            testruns.TestOutcome(test=declared, platform="wasm", outcome="passed", message=said)
        )
        yield f"{name}: {said}"
    testruns.keep(ctx.root, testruns.ArtifactTests(artifact=name, tests=outcomes))
    if failures[1:]:
        raise type(failures[0])(f"{failures[0]} (and {len(failures) - 1} more tests failed)")
    if failures:
        raise failures[0]


def wasm_publish(ctx: Context, name: str) -> Report:
    from syntra.plugins.codecache import default_cache
    from syntra.wasm import artifact

    guest = ctx.plan.guest(name)
    wasm = ctx.root / guest.output
    record = artifact.publish_artifact(
        ctx.registries, guest, ctx.plan, wasm, ctx.root, default_cache()
    )
    yield f"{name}: {record.digest} -> {', '.join(record.refs)}"
    if guest.web and guest.web.publish:
        from syntra.records import write_record
        from syntra.wasm import web

        where = ctx.registries.locate(guest.destination)
        bundle = web.attach(where, guest, record.digest, web_dir(ctx.root, name))
        if bundle is not None:
            write_record(ctx.root, record.model_copy(update={"web": bundle}))
            yield f"{name}: web bundle {bundle.digest} -> referrer of {record.digest}"


def wasm_web(ctx: Context, name: str) -> Report:
    """dist/web/<guest>/: the guest in the browser (`wasm.<guest>.web`)."""
    from syntra.wasm import web

    guest, folder = ctx.plan.guest(name), web_dir(ctx.root, name)
    bundle = web.build(guest, ctx.root / guest.output, folder)
    if not bundle.files:
        yield f"{name}: {bundle.note}; no web bundle"
        return
    note = f" ({bundle.note})" if bundle.note else ""
    shown = folder.relative_to(ctx.root)
    yield f"{name}: web bundle {shown}/: {', '.join(bundle.files)}{note}"


def wasm_snapshot(ctx: Context, name: str) -> Report:
    target = snapshot_dir(ctx.root) / f"{name}.wasm"
    write_atomic(target, plugin_file(ctx.root, name).read_bytes())
    yield f"{name}: snapshot {target.relative_to(ctx.root)}; nothing pushed"


def supply(ctx: Context, name: str) -> Report:
    """Signatures, SBOM attestations and provenance for the digests of `name`'s record,
    in every registry it went to (each signs for its own name)."""
    from syntra.records import read_record
    from syntra.supplychain.secure import secure

    record = read_record(ctx.root, name)
    for destination in output(ctx, name).destinations:
        for line in secure(ctx.loaded, ctx.registries, ctx.plan, record, destination):
            yield f"{name}: {line}"


def release(ctx: Context, name: str = "") -> Report:
    """The verified digests of a vX.Y.Z commit, promoted to the release tags."""
    from syntra.release.cut import run_release

    yield from run_release(ctx.loaded, ctx.registries, ctx.plan, dry_run=ctx.dry_run)


def output(ctx: Context, name: str) -> Output:
    return next(o for o in ctx.plan.outputs() if o.name == name)


# Whether a stage's work is current, each beside its stage: doit's tasks (pipeline.tasks)
# ask these instead of running the stage. A `*_state` gives what must not have changed
# and whether the artifact is there; `image_current` answers outright.


def image_current(ctx: Context, name: str) -> bool:
    """The image's record names exactly today's inputs, its base taken as the record
    pinned it (no registry is asked): nothing to build, whichever task or backend pushed
    it (`doit container` then `doit supply` signs what was pushed). A damaged or
    incomplete record counts as missing. Another base named in syntra.yaml changes the
    args; a base tag that moved is seen when the task runs (`doit -a docker`). With a
    `syntra.lock`, the base is the locked one: `syntra lock --update` rebuilds."""
    from syntra.image.inputs import local_inputs_digest

    record = find_record(ctx.root, name)
    if not isinstance(record, ImageRecord) or record.inputs is None:
        return False
    try:
        job = ctx.job(name)
        return record.inputs == local_inputs_digest(job, job.local_base(record.base))
    except (SyntraError, OSError):
        return False  # the action says what is wrong, naming the stage


def snapshot_state(ctx: Context, name: str) -> tuple[Any, bool]:
    """What the snapshot archive is built from (plugin bytes included, the base as
    syntra.yaml names it), and whether it is there."""
    from syntra.image.inputs import local_inputs_digest

    archive = Path(snapshot_archive(ctx, name))
    job = ctx.job(name)
    return local_inputs_digest(job, job.local_base(job.image.base)), archive.exists()


def web_inputs(guest: GuestPlan, root: Path) -> dict[str, Any]:
    """What a bundle is made of besides the wasm: the settings, the test values, the
    templates shipped with Syntra, and, for a component only, whether jco is there (a
    core module's bundle is Syntra's own loader). Read when doit asks, after the
    guest was compiled: whether it is a component is in its header."""
    from syntra.plugins.binary import kind_of_file

    templates = sorted((BUILTIN_TEMPLATES / "web").glob("*.j2"))
    try:
        component = kind_of_file(root / guest.output) == "component"
    except (OSError, ValueError):
        component = False  # the task runs (its file_dep) and says what is wrong
    return {
        "web": dataclasses.asdict(guest.web) if guest.web else None,
        "tests": guest.tests,
        "templates": {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in templates},
        "jco": shutil.which("jco") is not None if component else None,
    }


def web_state(ctx: Context, name: str) -> tuple[Any, bool]:
    """The bundle's inputs, and whether it is as they say: its folder is there, or is
    rightly absent (a component, no jco: the task wrote nothing)."""
    guest = ctx.plan.guest(name)
    assert guest.web is not None
    inputs = web_inputs(guest, ctx.root)
    return inputs, (ctx.root / guest.web.dir).is_dir() or inputs["jco"] is False


def wasm_publish_state(ctx: Context, name: str) -> tuple[Any, bool]:
    """What publish pushes: the refs, and the web bundle only when it is published
    with the guest; and whether the guest's record is there."""
    guest = ctx.plan.guest(name)
    pushed: dict[str, Any] = {"refs": guest.destination.refs}
    if guest.web and guest.web.publish:
        pushed["web"] = web_inputs(guest, ctx.root)
    return pushed, find_record(ctx.root, name) is not None


def supply_state(ctx: Context, name: str) -> tuple[Any, bool]:
    """What was pushed where, and the supply-chain settings."""
    from syntra.records import read_record

    record = read_record(ctx.root, name).model_dump(mode="json", exclude={"uploaded_bytes"})
    return [record, ctx.loaded.config.supply_chain.model_dump()], True
