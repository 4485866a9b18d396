"""The build contract every image backend implements, apart from the registry of
backends (`syntra.image.build.BACKENDS`) so that a backend module imports this and
nothing that finds it: ko's split, a builder builds and returns a result, and
`syntra.image.job` publishes it."""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from syntra.image.build.cache import CacheUse
    from syntra.image.inputs import Job
    from syntra.image.publish import Pushed
    from syntra.oci.locate import Where
    from syntra.plan import ImagePlan


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

    def build_and_push(self, job: Job, where: Where) -> Pushed:
        """Build every platform of `job.image`, test it and push it with its index and
        tags to `where`; what was pushed (`syntra.image.job.publish_image` records it)."""
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


def which(program: str) -> str | None:
    return shutil.which(program)
