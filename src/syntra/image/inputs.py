"""What an image is built from, and its digest: the one thing an up-to-date check of an
image needs, kept apart from the build and push code (and their imports) so that a
no-op `doit` loads neither."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from syntra.errors import SyntraError
from syntra.formats import canonical_json
from syntra.image.buildcontext import BuildContext
from syntra.lockfile import spec_images
from syntra.paths import plugin_file
from syntra.plan import BASE_IMAGE_ARG, ImagePlan, Plan

if TYPE_CHECKING:
    from syntra.config import Loaded
    from syntra.image.publish import Pinned
    from syntra.lockfile import Lock
    from syntra.oci.locate import Registries


class Run(Protocol):
    """What a job needs of its run (`syntra.pipeline.context.Context`): the loaded config,
    its plan, and base images pinned once per run."""

    @property
    def loaded(self) -> Loaded: ...

    @property
    def plan(self) -> Plan: ...

    @property
    def root(self) -> Path: ...

    @property
    def lock(self) -> Lock | None: ...

    @property
    def registries(self) -> Registries: ...

    @property
    def snapshot(self) -> bool: ...

    def pin(self, reference: str) -> Pinned: ...


@dataclass(frozen=True)
class Job:
    """One image of one run, with what its build resolves once."""

    ctx: Run
    image: ImagePlan

    @property
    def loaded(self) -> Loaded:
        return self.ctx.loaded

    @property
    def plan(self) -> Plan:
        return self.ctx.plan

    @property
    def root(self) -> Path:
        return self.ctx.root

    @cached_property
    def base(self) -> Pinned | None:
        """The base image pinned to its digest for this run."""
        return self.ctx.pin(self.image.base) if self.image.base else None

    @property
    def base_reference(self) -> str | None:
        return self.base.reference if self.base else None

    def local_base(self, recorded: str | None) -> str | None:
        """The base an up-to-date check compares with, asking no registry: the locked one
        with a `syntra.lock`, else `recorded` (as a record or syntra.yaml names it)."""
        return self.base_reference if self.ctx.lock else recorded

    @cached_property
    def stage_images(self) -> dict[str, str]:
        """With a `syntra.lock`: each image a rendered spec names in a literal `FROM`,
        and its locked `name@digest` (the builders get them as build contexts)."""
        if self.ctx.lock is None:
            return {}
        found: dict[str, str] = {}
        for spec in (self.image.dockerfile, self.image.containerfile):
            try:
                text = (self.root / spec).read_text()
            except (OSError, UnicodeDecodeError):
                continue  # not rendered yet: the inputs digest says so
            found |= {ref: self.ctx.pin(ref).reference for ref in spec_images(text)}
        return dict(sorted(found.items()))

    @property
    def insecure_pull(self) -> bool:
        """The base or a locked `FROM` image comes from a registry over plain HTTP."""
        pulled = [self.base] if self.base else []
        return any(p.insecure for p in pulled + [self.ctx.pin(r) for r in self.stage_images])

    @property
    def args(self) -> dict[str, str]:
        """Build args, with the base image pinned to its digest."""
        pinned = self.base_reference
        return self.image.args | ({BASE_IMAGE_ARG: pinned} if pinned else {})

    @cached_property
    def inputs(self) -> dict[str, Any]:
        """Everything the image is built from, its tags included. Computed once per job:
        hashing the context and pinning the base cost time."""
        return _inputs(self, self.base_reference)

    @cached_property
    def shared_inputs(self) -> dict[str, Any]:
        """What every platform of the image is built from, but the commit it is built at."""
        return _shared(self.inputs)

    @cached_property
    def inputs_digest(self) -> str:
        """A record that names this digest is current, whichever backend wrote it."""
        return _digest(self.inputs)


def _shared(inputs: dict[str, Any]) -> dict[str, Any]:
    shared = {k: v for k, v in inputs.items() if k not in ("refs", "platforms")}
    labels = inputs["labels"].items()
    return shared | {"labels": {k: v for k, v in labels if k not in PER_COMMIT_LABELS}}


def _digest(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(inputs)).hexdigest()


def local_inputs_digest(job: Job, base: str | None) -> str:
    """`Job.inputs_digest` with the base taken as given (`base`, e.g. as a record pinned
    it) instead of asking its registry: an up-to-date check that stays local."""
    return _digest(_inputs(job, base))


def _inputs(job: Job, base: str | None) -> dict[str, Any]:
    """Everything that must trigger a rebuild when it changes (`Job.inputs`)."""
    image = job.image
    specs = {}  # both, whichever backend reads which: the inputs do not depend on it
    for spec in (image.dockerfile, image.containerfile):
        try:
            specs[spec] = spec_text((job.root / spec).read_text())
        except OSError:
            continue
    if not specs:
        raise SyntraError(f"{image.dockerfile}: not rendered yet; run `doit render`")
    return {
        "spec": specs,
        "context": BuildContext(job.root / image.context).digest(),
        "base": base,
        "args": image.args,
        "labels": image.labels,
        "platforms": image.platforms,
        "target": image.target,
        "secrets": [secret["id"] for secret in image.secrets],
        "refs": image.destination.refs,
        "plugins": image.plugins,
        "plugin_bytes": [_plugin_digest(job.root, name) for name in image.plugins],
        "plugin_limits": [g.limits for g in job.plan.guests if g.name in image.plugins],
        "tests": image.tests,
    } | ({"stage_images": job.stage_images} if job.stage_images else {})


_DIRECTIVE = re.compile(r"^#[ \t]*[A-Za-z][A-Za-z0-9_-]*[ \t]*=")


def spec_text(text: str) -> str:
    """A Dockerfile as its builder reads it, for the inputs digest: comment lines
    removed (a generated header that changes wording rebuilds nothing). Parser
    directives at the top stay, as they change how the rest is read; from the first line
    that may open a heredoc (`<<`) on, every line stays, since a `#` line in a heredoc
    is content, not a comment."""
    lines = text.splitlines()
    top = 0
    while top < len(lines) and _DIRECTIVE.match(lines[top]):
        top += 1
    kept = lines[:top]
    for index in range(top, len(lines)):
        line = lines[index]
        if line.lstrip().startswith("#"):
            continue
        if "<<" in line:
            kept += lines[index:]
            break
        kept.append(line)
    return "\n".join(kept)


PER_COMMIT_LABELS = (
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
)
"""Labels that change with every commit but say nothing about what the image holds:
left out of the inputs digest, so an unchanged image keeps the labels of the commit
that built it."""


def inputs_tag(job: Job, platform: str) -> str:
    """`inputs-<sha256>` of what one platform image is built from; the registry tag that
    finds an image already built from exactly these inputs."""
    return "inputs-" + _digest({**job.shared_inputs, "platform": platform})


def local_inputs_tag(job: Job, platform: str, base: str | None) -> str:
    """`inputs_tag` with the base taken as given (as `syntra up` recorded it) instead
    of asking its registry."""
    return "inputs-" + _digest({**_shared(_inputs(job, base)), "platform": platform})


def _plugin_digest(root: Path, guest: str) -> str:
    try:
        data = plugin_file(root, guest).read_bytes()
        return "sha256:" + hashlib.sha256(data).hexdigest()
    except OSError:
        shown = plugin_file(root, guest).relative_to(root)
        raise SyntraError(
            f"plugin {guest}: {shown} is missing; build it first (`doit wasm`)"
        ) from None
