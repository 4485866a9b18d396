"""`syntra up`, `down` and `logs`: the services of syntra.yaml on this machine's engine.

`up` builds the file's images for this host's platform when their inputs changed (a
snapshot: nothing pushed, no credentials), loads them into the engine's image store,
writes `.syntra/up/compose.yaml` with each pinned by the digest there, and starts the
services one by one through the engine's compose, dependencies first, waiting for the
health checks a `service_healthy` dependency asks for. A container whose definition
(image digest included) is unchanged and running is left alone: a second `up` restarts
nothing. Health checks are run by `up` itself while it waits (`podman healthcheck run`),
since podman schedules them with systemd timers, which a container or CI host may lack.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from syntra import process
from syntra.config.model import Healthcheck
from syntra.errors import SyntraError, ToolError, did_you_mean
from syntra.fsutil import write_atomic, write_if_changed
from syntra.paths import state_dir
from syntra.pipeline.context import Context
from syntra.up import compose
from syntra.up.compose import CONFIG_LABEL, Stack

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)")
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
GRACE = 30.0
"""Seconds a health check gets beyond what its own settings allow."""


@dataclass(frozen=True)
class Engine:
    """The container engine and its compose."""

    program: str
    compose: tuple[str, ...]


class Built(BaseModel):
    """An image `up` built and loaded: `.syntra/up/images.json` keeps one per image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: str
    engine: str
    pin: str


_BUILT = TypeAdapter(dict[str, Built])


class _Health(BaseModel):
    Status: str = ""


class _State(BaseModel):
    Running: bool
    Health: _Health | None = None
    Healthcheck: _Health | None = None  # podman before 4.x


class _Config(BaseModel):
    Labels: dict[str, str] | None = None


class _Inspected(BaseModel):
    """What `up` reads of `docker/podman inspect`; the rest is ignored."""

    Id: str
    State: _State
    labels: _Config = Field(default_factory=_Config, alias="Config")


_INSPECTED = TypeAdapter(list[_Inspected])


@dataclass(frozen=True)
class Container:
    id: str
    running: bool
    config_hash: str
    health: str
    """`healthy`, `unhealthy`, `starting`, or empty without a health check."""


def engine(ctx: Context) -> Engine:
    """The engine whose image store the run's builder loads into, and its compose."""
    from syntra.image.job import engine_program

    backend, _ = ctx.backend()
    program = engine_program(backend)
    if program == "docker":
        return Engine("docker", ("docker", "compose"))
    if shutil.which("podman-compose"):
        return Engine("podman", ("podman-compose",))
    return Engine("podman", ("podman", "compose"))


def folder(ctx: Context) -> Path:
    return state_dir(ctx.root) / "up"


def project(ctx: Context) -> str:
    """The compose project: the project's name as compose spells names."""
    return re.sub(r"[^a-z0-9_-]", "-", ctx.plan.project)


def up(ctx: Context, wanted: list[str]) -> Iterator[str]:
    services = ctx.loaded.config.services
    eng = engine(ctx)
    chosen = compose.stack(ctx.loaded, ctx.plan).closure(_services(ctx, wanted))
    own = [services[name].image for name in chosen if services[name].image in ctx.image_names()]
    pins: dict[str, str] = {}
    for image in dict.fromkeys(own):
        pins[image], lines = _pinned(ctx, eng, image)
        yield from lines
    run = compose.stack(ctx.loaded, ctx.plan, pins)
    runfile = _write(ctx, run)
    for name in chosen:
        for dependency, condition in services[name].dependencies().items():
            if condition == "service_healthy":
                _wait(ctx, eng, dependency)
        yield _start(ctx, eng, runfile, name, run.services[name]["labels"][CONFIG_LABEL])
    for name in chosen:
        if services[name].healthcheck:
            _wait(ctx, eng, name)
            yield f"{name}: healthy"
    for name in chosen:
        for url in urls(ctx, eng, name):
            yield f"{name}: {url}"


def _start(ctx: Context, eng: Engine, runfile: Path, name: str, config_hash: str) -> str:
    """The service's container started, unless it runs its current definition already."""
    found = container(ctx, eng, name)
    if found and found.running and found.config_hash == config_hash:
        return f"{name}: unchanged, running ({found.id[:12]})"
    if found:
        process.run([eng.program, "rm", "-f", found.id], f"{eng.program} rm")
    _compose(ctx, eng, runfile, "up", "-d", "--no-deps", name)
    # podman-compose 1.0 exits 0 whatever happened: the container says.
    now = container(ctx, eng, name)
    if now is None or not now.running:
        log = state_dir(ctx.root) / "logs" / "up.log"
        raise ToolError(f"{name}: did not start{_last_words(eng, now)} (see {log})")
    return f"{name}: {'recreated' if found else 'started'}"


def down(ctx: Context) -> Iterator[str]:
    """Stop and remove the stack: its containers, network and volumes."""
    _services(ctx, [])
    eng = engine(ctx)
    runfile = _write(ctx, compose.stack(ctx.loaded, ctx.plan))
    _compose(ctx, eng, runfile, "down", "-v")
    label = f"label={PROJECT_LABEL}={project(ctx)}"
    # podman-compose 1.0 leaves the network behind; anything compose missed goes too.
    for kind, listing, removal in (
        ("container", ["ps", "-a"], ["rm", "-f"]),
        ("network", ["network", "ls"], ["network", "rm"]),
        ("volume", ["volume", "ls"], ["volume", "rm"]),
    ):
        argv = [eng.program, *listing, "-q", "--filter", label]
        for item in process.output(argv, f"{eng.program} {kind} list").split():
            process.run([eng.program, *removal, item], f"{eng.program} {kind} removal")
            yield f"removed {kind} {item[:12] if kind == 'container' else item}"
    yield f"{project(ctx)}: down"


def logs(ctx: Context, service: str | None) -> Iterator[str]:
    eng = engine(ctx)
    for name in _services(ctx, [service] if service else []):
        found = container(ctx, eng, name)
        if found is None:
            yield f"{name}: not created (run `syntra up`)"
            continue
        done = process.run([eng.program, "logs", found.id], f"{eng.program} logs")
        for line in (done.out + done.err).splitlines():
            yield f"{name} | {line}"


def _services(ctx: Context, wanted: list[str]) -> list[str]:
    names = list(ctx.loaded.config.services)
    if not names:
        raise SyntraError(f"{ctx.loaded.path}: no services; add a services: section")
    for name in wanted:
        if name not in names:
            raise SyntraError(
                f"no service '{name}' in {ctx.loaded.path}{did_you_mean(name, names)}"
            )
    return wanted or names


def _pinned(ctx: Context, eng: Engine, name: str) -> tuple[str, list[str]]:
    """The image built from today's inputs for this host, in the engine, pinned by digest:
    built and loaded only when its inputs changed or the engine lost it."""
    from syntra.image.inputs import inputs_tag
    from syntra.image.job import load_built
    from syntra.pipeline import stages
    from syntra.registry.transfer import host_platform

    for _ in stages.render(ctx, name):
        pass
    platform = host_platform()
    job = ctx.job(name)
    key = inputs_tag(job, platform)
    record = folder(ctx) / "images.json"
    known, said = _read_built(record)
    entry = known.get(name)
    if entry and entry.inputs == key and entry.engine == eng.program:
        present = process.run([eng.program, "image", "inspect", entry.pin], check=False)
        if present.ok:
            return entry.pin, [*said, f"{name}: unchanged for {platform} ({entry.pin})"]
    backend, _ = ctx.backend()
    image_id = load_built(job, backend, platform)
    local = compose.local_name(ctx.plan, name)
    process.run([eng.program, "tag", image_id, local], f"{eng.program} tag")
    pin = image_id  # docker: the image ID
    if eng.program == "podman":
        digest = process.output([eng.program, "image", "inspect", "--format", "{{.Digest}}", local])
        pin = f"{local.rsplit(':', 1)[0]}@{digest}"
    known[name] = Built(inputs=key, engine=eng.program, pin=pin)
    text = json.dumps(_BUILT.dump_python(known), indent=2, sort_keys=True)
    write_atomic(record, text.encode())
    return pin, [*said, f"{name}: built for {platform}, loaded into {eng.program} ({pin})"]


def _read_built(path: Path) -> tuple[dict[str, Built], list[str]]:
    """The images `up` built before, and a line when the file was damaged: then it
    counts as absent (each image is built again and the file written anew)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}, []
    except OSError as exc:
        return {}, [f"{path}: not readable ({exc.strerror or exc}); building the images again"]
    try:
        return _BUILT.validate_json(data), []
    except ValidationError:
        return {}, [f"{path}: damaged; building the images again"]


def _write(ctx: Context, run: Stack) -> Path:
    runfile = folder(ctx) / "compose.yaml"
    write_if_changed(runfile, compose.dump(run.document()).encode())
    return runfile


def _compose(ctx: Context, eng: Engine, runfile: Path, *args: str) -> None:
    log = state_dir(ctx.root) / "logs" / "up.log"
    argv = [*eng.compose, "-p", project(ctx), "-f", str(runfile), *args]
    done = process.run(argv, " ".join([*eng.compose, args[0]]), check=False, log=log)
    if not done.ok:
        said = " ".join(process.error_lines(done.out + "\n" + done.err)[-2:])
        raise ToolError(f"{' '.join([*eng.compose, *args])} failed: {said} (see {log})")


def container(ctx: Context, eng: Engine, service: str) -> Container | None:
    """The service's container in this project, if there is one."""
    filters = [
        "--filter",
        f"label={PROJECT_LABEL}={project(ctx)}",
        "--filter",
        f"label={SERVICE_LABEL}={service}",
    ]
    ids = process.output([eng.program, "ps", "-a", "-q", "--no-trunc", *filters]).split()
    if not ids:
        return None
    said = process.output([eng.program, "inspect", ids[0]])
    try:
        found = _INSPECTED.validate_json(said)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "its output"
        raise ToolError(
            f"{eng.program} inspect {ids[0][:12]}: unexpected output ({where}: {error['msg']})"
        ) from None
    if not found:
        raise ToolError(f"{eng.program} inspect {ids[0][:12]}: no container in its output")
    state = found[0]
    health = state.State.Health or state.State.Healthcheck or _Health()
    labels = state.labels.Labels or {}
    return Container(state.Id, state.State.Running, labels.get(CONFIG_LABEL, ""), health.Status)


def seconds(duration: str) -> float:
    return sum(float(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(duration))


def _wait(ctx: Context, eng: Engine, name: str) -> None:
    """Until the service's health check passes; it is run here on podman, which leaves
    scheduling it to systemd."""
    check: Healthcheck | None = ctx.loaded.config.services[name].healthcheck
    assert check is not None
    interval = max(seconds(check.interval), 0.2)
    budget = seconds(check.start_period) + check.retries * (interval + seconds(check.timeout))
    deadline = time.monotonic() + budget + GRACE
    while True:
        found = container(ctx, eng, name)
        if found is None or not found.running:
            raise ToolError(f"{name}: the container stopped{_last_words(eng, found)}")
        if eng.program == "podman":
            process.run([eng.program, "healthcheck", "run", found.id], check=False)
            found = container(ctx, eng, name) or found
        if found.health == "healthy":
            return
        if time.monotonic() > deadline:
            raise ToolError(
                f"{name}: not healthy after {budget + GRACE:.0f} s "
                f"({found.health or 'no health status'}){_last_words(eng, found)}"
            )
        time.sleep(interval)


def _last_words(eng: Engine, found: Container | None) -> str:
    if found is None:
        return ""
    done = process.run([eng.program, "logs", "--tail", "3", found.id], check=False)
    lines = [line for line in (done.out + done.err).splitlines() if line.strip()]
    return f"; its last log lines: {' / '.join(lines)}" if lines else ""


def urls(ctx: Context, eng: Engine, name: str) -> list[str]:
    """Where each published port of the service answers on this host."""
    found = []
    for port in ctx.loaded.config.services[name].ports:
        mapping = port.split("/")[0].split(":")
        if len(mapping) == 1:
            live = container(ctx, eng, name)
            if live is None:
                continue
            argv = [eng.program, "port", live.id, mapping[0]]
            published = process.output(argv).splitlines()
            host, _, number = (published[0] if published else "").rpartition(":")
        else:
            host = mapping[0] if len(mapping) == 3 else "127.0.0.1"
            number = mapping[-2]
        host = "127.0.0.1" if host in ("", "0.0.0.0") else host
        found.append(f"http://{host}:{number}/")
    return found
