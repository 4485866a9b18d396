"""Stage: build. One image for one platform → an OCI image layout on disk.

A builder only builds; publishing the layout (registry, local store) is the
publish stage's job. Backends live in one module each and share the argv of
`build` in `command.py`, adding only the flags where they differ.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from syntra.errors import SyntraError
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


class Builder(Protocol):
    name: str

    def argv(self, request: BuildRequest) -> list[str]:
        """The build command line, without running it (contract tests check it)."""
        ...

    def build(self, request: BuildRequest) -> None:
        """Build and write `request.layout`; raise SyntraError naming what failed."""
        ...


def select(preference: str) -> Builder:
    """The builder for `auto|buildx|podman|container`; explains what to install."""
    from syntra.build import buildx, podman

    available = {"podman": podman.available(), "buildx": buildx.available()}
    if preference == "auto":
        for name in ("buildx", "podman"):
            if available[name]:
                return _make(name)
        raise SyntraError(
            "no image builder found: install podman (apt-get install podman) "
            "or docker with buildx and a running engine"
        )
    if preference == "container":
        preference = next((n for n in ("buildx", "podman") if available[n]), "podman")
    if preference not in available:
        raise SyntraError(f"unknown builder '{preference}'")
    if not available[preference]:
        hint = "apt-get install podman" if preference == "podman" else "docker with buildx"
        raise SyntraError(f"builder '{preference}' is not usable here: install {hint}")
    return _make(preference)


def _make(name: str) -> Builder:
    from syntra.build import buildx, podman

    return podman.Podman() if name == "podman" else buildx.Buildx()


def which(program: str) -> str | None:
    return shutil.which(program)
