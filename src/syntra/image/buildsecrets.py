"""Build secrets (`RUN --mount=type=secret`): each variable set and each file there, and
every value noted so no log or message shows it."""

from __future__ import annotations

import os
from pathlib import Path

from syntra import process
from syntra.errors import SyntraError
from syntra.plan import ImagePlan


def check(root: Path, images: list[ImagePlan]) -> None:
    """Every build secret's variable is set and every secret file exists; their values
    are noted, so no log or message shows them.

    Checked before any build: podman reuses a cached `RUN --mount=type=secret` layer
    without looking at the secret, so an unset variable would otherwise go unnoticed."""
    missing: list[str] = []
    for image in images:
        for secret in image.secrets:
            if secret_set(root, secret):
                process.keep_secret(str(_secret_value(root, secret)).strip())
            else:
                where = f"${secret['env']}" if "env" in secret else secret["src"]
                missing.append(f"{where} (images.{image.name} secret '{secret['id']}')")
    if missing:
        raise SyntraError(f"build secrets not set: {', '.join(missing)}")


def secret_set(root: Path, secret: dict[str, str]) -> bool:
    """An empty file is a secret, an empty variable not."""
    value = _secret_value(root, secret)
    return value is not None and bool(value or "src" in secret)


def _secret_value(root: Path, secret: dict[str, str]) -> str | None:
    if "env" in secret:
        return os.environ.get(secret["env"])
    try:
        return (root / secret["src"]).read_text(errors="replace")
    except OSError:
        return None
