"""Preconditions checked before long work: a build that would fail at its end, or push an
image built from a cached layer without the secret it needs, stops first with one line."""

from __future__ import annotations

import os
from pathlib import Path

from syntra import process
from syntra.config import Loaded
from syntra.errors import SyntraError
from syntra.plan import Destination, ImagePlan, Plan


def build_secrets(root: Path, images: list[ImagePlan]) -> None:
    """Every build secret's variable is set and every secret file exists; their values
    are noted, so no log or message shows them.

    Checked before any build: podman reuses a cached `RUN --mount=type=secret` layer
    without looking at the secret, so an unset variable would otherwise go unnoticed."""
    missing: list[str] = []
    for image in images:
        for secret in image.secrets:
            value = _secret_value(root, secret)  # an empty file is a secret, an empty variable not
            if value is not None and (value or "src" in secret):
                process.keep_secret(value.strip())
            else:
                where = f"${secret['env']}" if "env" in secret else secret["src"]
                missing.append(f"{where} (images.{image.name} secret '{secret['id']}')")
    if missing:
        raise SyntraError(f"build secrets not set: {', '.join(missing)}")


def _secret_value(root: Path, secret: dict[str, str]) -> str | None:
    if "env" in secret:
        return os.environ.get(secret["env"])
    try:
        return (root / secret["src"]).read_text(errors="replace")
    except OSError:
        return None


def signing(loaded: Loaded) -> None:
    """In key mode the key exists and the passphrase opens it."""
    mode = loaded.config.supply_chain.signing
    if mode.mode == "key" and mode.key:
        from syntra.supply import keys

        keys.load_private(loaded.root, mode.key, mode.passphrase_env)


def push_access(loaded: Loaded, destinations: list[Destination]) -> None:
    """Every destination takes a push from us: a wrong or missing login fails in seconds,
    not after the build. (An upload is started and cancelled; nothing is written.)"""
    from syntra.publish import locate

    checked: set[tuple[int, str]] = set()
    for destination in destinations:
        if destination.registry is None:
            continue
        where = locate(loaded.config, destination)
        if (id(where.registry), where.path) not in checked:
            where.registry.check_push(where.path)
            checked.add((id(where.registry), where.path))


def destinations(plan: Plan) -> list[Destination]:
    return [d for output in plan.outputs() for d in output.destinations]
