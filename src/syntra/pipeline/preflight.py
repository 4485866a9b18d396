"""Preconditions checked before long work: a build that would fail at its end, or push an
image built from a cached layer without the secret it needs, stops first with one line."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from syntra.config import Loaded
from syntra.image.buildsecrets import secret_set
from syntra.oci.locate import Registries
from syntra.plan import Destination, Plan


def push_access(registries: Registries, destinations: list[Destination]) -> None:
    """Every destination takes a push from us: a wrong or missing login fails in seconds,
    not after the build. (An upload is started and cancelled; nothing is written.)"""
    checked: set[tuple[int, str]] = set()
    for destination in destinations:
        if destination.registry is None:
            continue
        where = registries.locate(destination)
        if (id(where.registry), where.path) not in checked:
            where.registry.check_push(where.path)
            checked.add((id(where.registry), where.path))


def preconditions(loaded: Loaded, plan: Plan) -> dict[str, Any]:
    """What the checks depend on, read locally: the preflight task is up to date while
    this is unchanged, so a run with nothing to do needs no network and no passphrase.
    Variables count by whether they are set, never by their value; files by their bytes."""
    config = loaded.config
    signing = config.supply_chain.signing
    key = (loaded.root / signing.key) if signing.mode == "key" and signing.key else None
    used = {d.registry for d in destinations(plan) if d.registry}
    registries = {
        name: [entry.url, entry.insecure, _set(entry.credentials.username_env),
               _set(entry.credentials.password_env)] if entry.credentials else [entry.url]
        for name, entry in config.registries.items()
        if entry.url in used
    }  # fmt: skip
    return {
        "secrets": [
            [image.name, secret["id"], secret_set(loaded.root, secret)]
            for image in plan.images
            for secret in image.secrets
        ],
        "signing": [signing.mode, _file_digest(key), _set(signing.passphrase_env)],
        "registries": registries,
        "destinations": sorted({f"{d.registry}/{d.repository}" for d in destinations(plan)}),
    }


def destinations(plan: Plan) -> list[Destination]:
    return [d for output in plan.outputs() for d in output.destinations]


def _set(variable: str | None) -> bool:
    return bool(variable and os.environ.get(variable))


def _file_digest(path: Path | None) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() if path else None
    except OSError:
        return None
