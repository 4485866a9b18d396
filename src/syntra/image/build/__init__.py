"""Stage: build. Image backends, kept apart from publishing as ko keeps them.

Two kinds, both published by `syntra.image.job.publish(job, backend) -> ImageRecord`:
- a *layout builder* (podman, buildx) builds one platform into an OCI layout; Syntra
  tests the layouts and publishes them through its one registry client;
- a *pushing builder* (Apple's `container` CLI) cannot hand out a layout: it builds
  every platform and pushes them itself, and Syntra checks and records what it pushed.

Backends are found by name in BACKENDS. A new backend is one module exposing `ENTRY`
(an `Entry`) and one line here.
"""

from __future__ import annotations

import importlib
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, cast

from syntra.config.model import BUILDERS
from syntra.errors import SyntraError

if TYPE_CHECKING:
    from syntra.image.build.cache import CacheUse
    from syntra.image.inputs import Job
    from syntra.plan import ImagePlan
    from syntra.records import ImageRecord

BACKENDS = {
    "buildx": "syntra.image.build.buildx",
    "podman": "syntra.image.build.podman",
    "container": "syntra.image.build.container",
}
"""Backend name → the module holding its `ENTRY`."""
AUTO = ("buildx", "podman")
"""What `auto` picks, in this order: the first one usable here."""
CHOICES = BUILDERS


@dataclass(frozen=True)
class BuildRequest:
    image: ImagePlan
    platform: str
    root: Path
    source_date_epoch: int
    args: dict[str, str]
    """Build args, with the base image pinned to its digest."""
    layout: Path
    """Where the OCI image layout is written (replaced if present)."""
    log: Path
    insecure_pull: bool = False
    """The base image's registry speaks plain HTTP."""
    stage_images: dict[str, str] = field(default_factory=dict)
    """Each literal `FROM` reference of the spec → its `name@digest` from `syntra.lock`."""
    cache: CacheUse | None = None
    """The registry layer cache, checked usable before the build."""
    buildx_builder: str | None = None
    """The buildx builder (syntra.yaml `builders`); None: the current one."""


class Backend(Protocol):
    name: str

    @property
    def label(self) -> str:
        """What the build report names: `podman`, `container 1.3.0`."""
        ...


class PushingBuilder(Backend, Protocol):
    """A backend that builds and pushes in one step (Apple's `container`)."""

    def publish(self, job: Job) -> ImageRecord:
        """Build every platform of `job.image`, test it, push it with its index and
        tags, and write its record."""
        ...


class LayoutBuilder(ABC):
    """A backend that builds one platform at a time into an OCI layout."""

    name: str

    @property
    def label(self) -> str:
        return self.name

    @abstractmethod
    def argv(self, request: BuildRequest) -> list[str]:
        """The build command line, without running it (contract tests check it)."""

    @abstractmethod
    def build(self, request: BuildRequest) -> None:
        """Build and write `request.layout`; raise SyntraError naming what failed."""


@dataclass(frozen=True)
class Entry:
    """How the registry finds, checks and makes one backend."""

    unavailable: Callable[[], str | None]
    """Why the backend cannot run here (what to install), or None."""
    make: Callable[[], Backend]
    fallback: bool = False
    """When it cannot run here, `auto` stands in, with a note saying why (Apple's CLI off
    a Mac); otherwise that is an error."""


def entry(name: str) -> Entry:
    return cast(Entry, importlib.import_module(BACKENDS[name]).ENTRY)


def select(preference: str) -> tuple[Backend, str | None]:
    """The backend for `auto` or a name in BACKENDS, and a note when another stands in."""
    if preference == "auto":
        for name in AUTO:
            if entry(name).unavailable() is None:
                return entry(name).make(), None
        raise SyntraError(
            "no image builder found: install podman (apt-get install podman) "
            "or docker with buildx and a running engine"
        )
    if preference not in BACKENDS:
        raise SyntraError(f"unknown builder '{preference}' (one of: {', '.join(CHOICES)})")
    chosen = entry(preference)
    reason = chosen.unavailable()
    if reason is None:
        return chosen.make(), None
    if not chosen.fallback:
        raise SyntraError(f"builder '{preference}' is not usable here: {reason}")
    backend, _ = select("auto")
    return backend, f"{reason}: using the Linux builder"


def layout_builder(backend: Backend, what: str) -> LayoutBuilder:
    """`backend` when it writes OCI layouts; else one line saying `what` needs one."""
    if not isinstance(backend, LayoutBuilder):
        raise SyntraError(
            f"{what} needs a builder that writes OCI layouts (podman or buildx); "
            f"{backend.label} builds and pushes in one step"
        )
    return backend


def which(program: str) -> str | None:
    return shutil.which(program)
