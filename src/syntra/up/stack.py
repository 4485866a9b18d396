"""`syntra up`, `down` and `logs`: the services of syntra.yaml on this machine's engine.

`up` builds the file's images for this host's platform when their inputs changed (a
snapshot: nothing pushed, no credentials), loads them into the engine's image store,
writes the compose file it runs (`paths.up_compose_file`) with each pinned by the digest
there, and starts the services one by one through the engine's compose, dependencies
first, waiting for the health checks a `service_healthy` dependency asks for. A
container whose definition (image digest included) is unchanged and running is left
alone: a second `up` restarts nothing. Health checks are run by `up` itself while it
waits (`podman healthcheck run`), since podman schedules them with systemd timers, which
a container or CI host may lack.

What `up` prints is what happened, in order, and what the engine said when a service did
not start or stay up is read back from it (podman-compose exits 0 whatever happened):
one line naming the cause. Engine output is redacted: registry passwords and the values
syntra.yaml's `${VAR}`s gave the services never show.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from syntra import process
from syntra.config.model import Healthcheck, duration_seconds
from syntra.errors import RegistryError, SyntraError, ToolError, did_you_mean, one_line
from syntra.fsutil import write_atomic, write_if_changed
from syntra.paths import up_compose_file, up_images, up_log
from syntra.pipeline.context import Context
from syntra.up import compose
from syntra.up.compose import CONFIG_LABEL, Stack

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
GRACE = 30.0
"""Seconds a health check gets beyond what its own settings allow."""


@dataclass(frozen=True)
class Engine:
    """The container engine and its compose."""

    program: str
    compose: tuple[str, ...]


class Built(BaseModel):
    """An image `up` built and loaded: `paths.up_images` keeps one per image."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    inputs: str
    engine: str
    pin: str
    base: str | None = None
    """The base image's digest reference it was built from: a later `up` checks its
    inputs against it without asking the base's registry."""


_BUILT = TypeAdapter(dict[str, Built])


class _Check(BaseModel):
    Output: str = ""


class _Health(BaseModel):
    Status: str = ""
    Log: list[_Check] | None = None


class _State(BaseModel):
    Running: bool
    Status: str = ""
    ExitCode: int = 0
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
    status: str = ""
    """The engine's word: `created`, `running`, `exited`, …"""
    exit_code: int = 0
    last_check: str = ""
    """What the last health check printed."""


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


def project(ctx: Context) -> str:
    """The compose project: the project's name as compose spells names."""
    return re.sub(r"[^a-z0-9_-]", "-", ctx.plan.project)


def up(ctx: Context, wanted: list[str]) -> Iterator[str]:
    services = ctx.loaded.config.services
    eng = engine(ctx)
    _note_secrets(ctx)
    chosen = compose.stack(ctx.loaded, ctx.plan).closure(_services(ctx, wanted))
    references: dict[str, str] = {}
    images = dict.fromkeys(services[name].image for name in chosen)
    locked = compose.locked_services(ctx.loaded, ctx.lock)  # syntra.lock: external images
    # External images first: one the engine lacks is said before anything is built.
    for image in sorted(images, key=lambda image: image in ctx.image_names()):
        if image in locked:
            references[image] = locked[image]
            continue
        references[image], lines = run_reference(ctx, eng, image)
        yield from lines
    run = compose.stack(ctx.loaded, ctx.plan, references)
    runfile = _write(ctx, run)
    healthy: set[str] = set()
    for name in chosen:
        for dependency, condition in services[name].dependencies().items():
            if condition == "service_healthy" and dependency not in healthy:
                yield _healthy(ctx, eng, dependency)
                healthy.add(dependency)
        yield _start(ctx, eng, runfile, name, run.services[name]["labels"][CONFIG_LABEL])
    for name in chosen:
        if services[name].healthcheck and name not in healthy:
            yield _healthy(ctx, eng, name)
    for name in chosen:
        for url in urls(ctx, eng, name):
            yield f"{name}: {url}"


def run_reference(ctx: Context, eng: Engine, image: str) -> tuple[str, list[str]]:
    """The reference `up` runs for a service's `image` as syntra.yaml writes it, and the
    lines to say: one of the file's images built for this host and pinned by its digest in
    the engine; an external one as written (pinned by tag or digest, validated)."""
    if image in ctx.image_names():
        return _pinned(ctx, eng, image)
    if _local_only(eng, image) and _engine_digest(eng, image) is None:
        raise ToolError(_not_in_store(eng, image))
    return image, []


def _local_only(eng: Engine, image: str) -> bool:
    """On podman, `localhost/…` names an image of this engine that no registry serves."""
    return eng.program == "podman" and image.startswith("localhost/") and "@" not in image


def _engine_digest(eng: Engine, image: str) -> str | None:
    argv = [eng.program, "image", "inspect", "--format", "{{.Digest}}", image]
    found = process.run(argv, check=False)
    return found.out.strip() if found.ok else None


def _not_in_store(eng: Engine, image: str) -> str:
    return (
        f"image {image} is not in {eng.program}'s image store, and no registry has it "
        "(`syntra import` makes one from a root filesystem tarball)"
    )


def _start(ctx: Context, eng: Engine, runfile: Path, name: str, config_hash: str) -> str:
    """The service's container started, unless it runs its current definition already."""
    found = container(ctx, eng, name)
    if found and found.running and found.config_hash == config_hash:
        return f"{name}: unchanged, running ({found.id[:12]})"
    if found:
        process.run([eng.program, "rm", "-f", found.id], f"{eng.program} rm")
    said = _compose(ctx, eng, runfile, "up", "-d", "--no-deps", name)
    # podman-compose 1.0 exits 0 whatever happened: the container and the output say.
    now = _settled(ctx, eng, name)
    if now is None or not now.running:
        raise _not_started(ctx, eng, name, now, said)
    return f"{name}: {'recreated' if found else 'started'}"


_AT_REST = ("running", "exited", "stopped", "created", "configured")
"""Container states that say what happened; others (`stopping`) are on their way."""


def _settled(ctx: Context, eng: Engine, name: str) -> Container | None:
    """The service's container once its state says what happened (a command that exits
    at once may still be `stopping` when compose returns), within a few seconds."""
    now = container(ctx, eng, name)
    deadline = time.monotonic() + 5
    while now is not None and now.status not in _AT_REST and time.monotonic() < deadline:
        time.sleep(0.2)
        now = container(ctx, eng, name)
    return now


_PULL_FAILED = ("initializing source", "reading manifest", "manifest unknown", "pull access")


def _not_started(
    ctx: Context, eng: Engine, name: str, now: Container | None, said: str
) -> SyntraError:
    """One line with the cause: the container's exit code and last log line when it ran
    and stopped, else the engine's own error (a port in use, an image it could not pull)."""
    see = f"(see {up_log(ctx.root)})"
    if now is not None and now.status in ("exited", "stopped"):
        return ToolError(f"{name}: exited with code {now.exit_code}{_last_words(eng, now)} {see}")
    errors = [line[len("Error: ") :] for line in said.splitlines() if line.startswith("Error: ")]
    errors = errors or process.error_lines(said)  # docker compose words it otherwise
    cause = one_line(errors[0]) if errors else f"{eng.program} gave no reason"
    if now is None and any(word in cause for word in _PULL_FAILED):
        return RegistryError(f"{name}: did not start: image not pulled: {cause} {see}")
    return ToolError(f"{name}: did not start: {cause} {see}")


def _note_secrets(ctx: Context) -> None:
    """What no output of `up`, `down` or `logs` may show: the registries' passwords from
    the environment, and what syntra.yaml's `${VAR}`s gave the services (environment,
    command, health check: any of them may carry a secret)."""
    for registry in ctx.loaded.config.registries.values():
        if registry.credentials and (password := os.environ.get(registry.credentials.password_env)):
            process.keep_secret(password)
    for loc, values in ctx.loaded.document.expanded.items():
        if loc[:1] == ("services",):
            for value in values.values():
                process.keep_secret(value)


def down(ctx: Context, volumes: bool = False) -> Iterator[str]:
    """Stop and remove the stack's containers and network; its named volumes (the data)
    only with `volumes`, as `docker compose down -v`."""
    _services(ctx, [])
    _note_secrets(ctx)
    eng = engine(ctx)
    runfile = _write(ctx, compose.stack(ctx.loaded, ctx.plan))
    _compose(ctx, eng, runfile, "down")
    label = f"label={PROJECT_LABEL}={project(ctx)}"
    # podman-compose 1.0 leaves the network behind; anything compose missed goes too.
    for kind, listing, removal in (
        ("container", ["ps", "-a"], ["rm", "-f"]),
        ("network", ["network", "ls"], ["network", "rm"]),
        ("volume", ["volume", "ls"], ["volume", "rm"]),
    ):
        argv = [eng.program, *listing, "-q", "--filter", label]
        for item in process.output(argv, f"{eng.program} {kind} list").split():
            if kind == "volume" and not volumes:
                yield f"kept volume {item} (`syntra down --volumes` removes it)"
                continue
            process.run([eng.program, *removal, item], f"{eng.program} {kind} removal")
            yield f"removed {kind} {item[:12] if kind == 'container' else item}"
    yield f"{project(ctx)}: down"


def logs(ctx: Context, service: str | None) -> Iterator[str]:
    eng = engine(ctx)
    _note_secrets(ctx)
    for name in _services(ctx, [service] if service else []):
        found = container(ctx, eng, name)
        if found is None:
            yield f"{name}: not created (run `syntra up`)"
            continue
        done = process.run([eng.program, "logs", found.id], f"{eng.program} logs")
        for line in process.redact(done.out + done.err).splitlines():
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
    from syntra.image.inputs import inputs_tag, local_inputs_tag
    from syntra.image.job import load_built
    from syntra.pipeline import stages
    from syntra.registry.transfer import host_platform

    for _ in stages.render(ctx, name):
        pass
    platform = host_platform()
    job = ctx.job(name)
    local = _local_base(ctx, eng, job.image.base)
    record = up_images(ctx.root)
    known, said = _read_built(record)
    entry = known.get(name)
    # A base in the engine as it is now; else as it was pinned when the image was built:
    # an unchanged image asks no registry. Changed inputs resolve the base again.
    if (
        entry
        and entry.engine == eng.program
        and (entry.base is not None or not job.image.base)
        and local_inputs_tag(job, platform, local or job.local_base(entry.base)) == entry.inputs
    ):
        present = process.run([eng.program, "image", "inspect", entry.pin], check=False)
        if present.ok:
            return entry.pin, [*said, f"{name}: unchanged for {platform} ({entry.pin})"]
    key = inputs_tag(job, platform)
    backend, _ = ctx.backend()
    image_id = load_built(job, backend, platform)
    named = compose.local_name(ctx.plan, name)
    process.run([eng.program, "tag", image_id, named], f"{eng.program} tag")
    pin = image_id  # docker: the image ID
    if eng.program == "podman":
        digest = process.output([eng.program, "image", "inspect", "--format", "{{.Digest}}", named])
        pin = f"{named.rsplit(':', 1)[0]}@{digest}"
    known[name] = Built(inputs=key, engine=eng.program, pin=pin, base=job.base_reference)
    text = json.dumps(_BUILT.dump_python(known), indent=2, sort_keys=True)
    write_atomic(record, text.encode())
    return pin, [*said, f"{name}: built for {platform}, loaded into {eng.program} ({pin})"]


def _local_base(ctx: Context, eng: Engine, base: str | None) -> str | None:
    """A `localhost/…` base on podman (`_local_only`), made with `syntra import` or
    built here: pinned by its digest in the engine, which `podman build` then reads from
    its store, with no registry asked. Returns that pinned reference."""
    from syntra.image.publish import Pinned

    if not base or not _local_only(eng, base):
        return None
    digest = _engine_digest(eng, base)
    if digest is None:
        raise ToolError(f"base {_not_in_store(eng, base)}")
    pinned = f"{base.rsplit(':', 1)[0]}@{digest}"
    ctx.pin_as(base, Pinned(pinned, insecure=False))
    return pinned


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
    runfile = up_compose_file(ctx.root)
    write_if_changed(runfile, compose.dump(run.document()).encode())
    runfile.chmod(0o600)  # it holds the values the services were given
    return runfile


def _compose(ctx: Context, eng: Engine, runfile: Path, *args: str) -> str:
    """What compose printed (redacted); a compose that fails says so in one line."""
    log = up_log(ctx.root)
    argv = [*eng.compose, "-p", project(ctx), "-f", str(runfile), *args]
    done = process.run(argv, " ".join([*eng.compose, args[0]]), check=False, log=log)
    said = process.redact(done.out + "\n" + done.err)
    if not done.ok:
        if args[0] == "up":
            return said  # the container says what happened, and the output why
        shown = " ".join(process.error_lines(said)[-2:])
        raise ToolError(f"{' '.join([*eng.compose, *args])} failed: {shown} (see {log})")
    return said


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
    checks = health.Log or []
    return Container(
        state.Id,
        state.State.Running,
        labels.get(CONFIG_LABEL, ""),
        health.Status,
        state.State.Status,
        state.State.ExitCode,
        checks[-1].Output.strip() if checks else "",
    )


def _healthy(ctx: Context, eng: Engine, name: str) -> str:
    """Until the service's health check passes, as soon as the engine says it failed;
    it is run here on podman, which leaves scheduling it to systemd."""
    check: Healthcheck | None = ctx.loaded.config.services[name].healthcheck
    assert check is not None
    interval = max(duration_seconds(check.interval), 0.2)
    budget = duration_seconds(check.start_period) + check.retries * (
        interval + duration_seconds(check.timeout)
    )
    deadline = time.monotonic() + budget + GRACE
    log = up_log(ctx.root)
    see = f"(see {log})"
    while True:
        found = container(ctx, eng, name)
        if found is None or not found.running:
            code = f"exited with code {found.exit_code}" if found else "its container is gone"
            raise ToolError(f"{name}: {code}{_last_words(eng, found)} {see}")
        if eng.program == "podman":
            process.run([eng.program, "healthcheck", "run", found.id], check=False, log=log)
            found = container(ctx, eng, name) or found
        if found.health == "healthy":
            return f"{name}: healthy"
        if found.health == "unhealthy" or time.monotonic() > deadline:
            waited = f"not healthy after {budget + GRACE:.0f} s"
            state = "unhealthy" if found.health == "unhealthy" else waited
            output = one_line(process.redact(found.last_check)) or "no output"
            raise ToolError(f"{name}: {state}; its health check's last output: {output} {see}")
        time.sleep(interval)


def _last_words(eng: Engine, found: Container | None) -> str:
    """`; last log line: …`, redacted, when the container logged anything."""
    if found is None:
        return ""
    done = process.run([eng.program, "logs", "--tail", "5", found.id], check=False)
    lines = [line for line in process.redact(done.out + done.err).splitlines() if line.strip()]
    return f"; last log line: {one_line(lines[-1].strip())}" if lines else ""


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
