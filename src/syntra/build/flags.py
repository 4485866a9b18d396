"""Build flags every builder CLI spells the same way. Kept apart from the runners so
importing them costs nothing (doit's no-op checks import the Apple backend)."""

from __future__ import annotations

from pathlib import Path

from syntra.plan import ImagePlan


def image_flags(
    image: ImagePlan, root: Path, args: dict[str, str], label_flag: str = "--label"
) -> list[str]:
    """Build args, labels, target and secrets: spelt the same by every builder CLI
    but for the label flag (Apple's `container` only has `-l`)."""
    flags: list[str] = []
    for key, value in args.items():
        flags += ["--build-arg", f"{key}={value}"]
    for key, value in image.labels.items():
        flags += [label_flag, f"{key}={value}"]
    if image.target:
        flags += ["--target", image.target]
    for secret in image.secrets:
        source = f"env={secret['env']}" if "env" in secret else f"src={root / secret['src']}"
        flags += ["--secret", f"id={secret['id']},{source}"]
    return flags
