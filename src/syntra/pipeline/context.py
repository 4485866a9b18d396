"""One run's context: built once per `syntra` command or doit process, handed to every
stage (GoReleaser's `context.Context`).

It holds the loaded config and its plan, the environment's choices (builder, snapshot),
the registry clients (one per host, with syntra.yaml's logins), and what a run must
resolve only once: a base image tag is pinned to one digest per run, so the digest that
decided a rebuild is the digest built, recorded and named in the provenance. With a
`syntra.lock`, the lock pins it instead, and no registry is asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from syntra import config as config_stage
from syntra import lockfile
from syntra.config import Loaded
from syntra.errors import SyntraError, did_you_mean
from syntra.lockfile import Lock
from syntra.oci.locate import Registries
from syntra.paths import BUILDER_ENV, CONFIG_FILE, SNAPSHOT_ENV
from syntra.plan import Plan, build_plan

if TYPE_CHECKING:
    from syntra.image.build import Backend
    from syntra.image.inputs import Job
    from syntra.image.publish import Pinned


@dataclass
class Context:
    loaded: Loaded
    plan: Plan
    builder: str = ""
    """Builder preference: `--builder`, else $SYNTRA_BUILDER, else syntra.yaml."""
    snapshot: bool = False
    """`SYNTRA_SNAPSHOT=1`: build and write to dist/snapshot/; push, sign, release nothing.
    Decided here, once per run (the only read of the variable); `pipeline.stages` is the
    one module that acts on it (`publishes`, `skipped`)."""
    dry_run: bool = False
    """Say what would change, change nothing (`syntra release --dry-run`)."""
    _registries: Registries | None = field(default=None, repr=False)
    _pinned: dict[str, Pinned] = field(default_factory=dict, repr=False)
    _jobs: dict[str, Job] = field(default_factory=dict, repr=False)
    _backends: dict[str, tuple[Backend, str | None]] = field(default_factory=dict, repr=False)
    _lock: list[Lock | None] = field(default_factory=list, repr=False)
    """Empty until the lock was read, then the one lock (or None)."""

    def __post_init__(self) -> None:
        self.builder = self.builder or os.environ.get(BUILDER_ENV) or self.loaded.config.builder
        self._registries = self._registries or Registries(self.loaded.config.registries)

    @classmethod
    def load(cls, file: str | Path = CONFIG_FILE, builder: str | None = None) -> Context:
        loaded = config_stage.load(file)
        snapshot = os.environ.get(SNAPSHOT_ENV) == "1"
        return cls(loaded, build_plan(loaded), builder or "", snapshot)

    @property
    def registries(self) -> Registries:
        """The run's registry clients, with syntra.yaml's registries and their logins."""
        assert self._registries is not None  # set once, in __post_init__
        return self._registries

    @property
    def root(self) -> Path:
        return self.loaded.root

    def image_names(self) -> list[str]:
        return [image.name for image in self.plan.images]

    def check_image(self, name: str) -> str:
        """`name` when syntra.yaml has that image; else one line with the closest name."""
        names = self.image_names()
        if name not in names:
            where = self.loaded.path
            raise SyntraError(f"no image '{name}' in {where}{did_you_mean(name, names)}")
        return name

    def job(self, name: str) -> Job:
        """Image `name`'s job, one per run: its inputs are hashed once, whether doit asks
        if it is current or the build runs."""
        from syntra.image.inputs import Job

        if name not in self._jobs:
            self._jobs[name] = Job(self, self.plan.image(self.check_image(name)))
        return self._jobs[name]

    def backend(self) -> tuple[Backend, str | None]:
        """The run's image backend, chosen once (probing buildx runs docker), and a note
        when another one stands in for it."""
        from syntra.image import build

        if self.builder not in self._backends:
            self._backends[self.builder] = build.select(self.builder)
        return self._backends[self.builder]

    @property
    def lock(self) -> Lock | None:
        """The repository's `syntra.lock`, read and checked against syntra.yaml and the
        specs it renders to, once per run; None when there is none. A lock that
        disagrees stops the run with one line that says to run `syntra lock`."""
        if not self._lock:
            found = lockfile.read(self.root)
            if found is not None:
                from syntra.image.locking import Repository, wanted

                uses = wanted(Repository(self.loaded, self.plan, self.registries))
                problem = lockfile.disagreement(found, uses)
                if problem:
                    raise SyntraError(problem)
            self._lock.append(found)
        return self._lock[0]

    def pin(self, reference: str) -> Pinned:
        """`reference` pinned to the digest it points at: the locked one, else resolved
        once in this run."""
        from syntra.image.publish import locked_base, resolve_base

        if reference not in self._pinned:
            lock = self.lock
            self._pinned[reference] = (
                locked_base(self.registries, lock.entry(reference))
                if lock and not lockfile.engine_local(reference)
                else resolve_base(self.registries, reference)
            )
        return self._pinned[reference]

    def pin_as(self, reference: str, pinned: Pinned) -> None:
        """Pin `reference` without asking its registry: `syntra up` pins a base that
        lives in the local engine by its digest there."""
        self._pinned[reference] = pinned
