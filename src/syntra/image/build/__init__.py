"""Stage: build. Image backends, kept apart from publishing as ko keeps them.

Two kinds, both published by `syntra.image.job.publish_image(job, backend) -> ImageRecord`
(the contract they implement is in `contract.py`):
- a *layout builder* (podman, buildx) builds one platform into an OCI layout; Syntra
  tests the layouts and publishes them through its one registry client;
- a *pushing builder* (Apple's `container` CLI) cannot hand out a layout: it builds
  every platform and pushes them itself, and Syntra checks and records what it pushed.

Backends are found by name in BACKENDS. A new backend is one module exposing `ENTRY`
(an `Entry`) and one line here; it imports `contract`, never this package.
"""

from __future__ import annotations

import importlib
from typing import cast

from syntra.config.model import BUILDERS
from syntra.errors import SyntraError
from syntra.image.build.contract import (
    Backend,
    BuildRequest,
    Entry,
    LayoutBuilder,
    PushingBuilder,
)

__all__ = [
    "AUTO",
    "BACKENDS",
    "CHOICES",
    "Backend",
    "BuildRequest",
    "Entry",
    "LayoutBuilder",
    "PushingBuilder",
    "entry",
    "layout_builder",
    "select",
]

BACKENDS = {
    "buildx": "syntra.image.build.buildx",
    "podman": "syntra.image.build.podman",
    "container": "syntra.image.build.container",
}
"""Backend name → the module holding its `ENTRY`."""
AUTO = ("buildx", "podman")
"""What `auto` picks, in this order: the first one usable here."""
CHOICES = BUILDERS


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
