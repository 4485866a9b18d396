"""Build flags every builder CLI spells the same way. Kept apart from the runners so
importing them costs nothing (doit's no-op checks import the Apple backend)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from syntra.paths import plugins_dir
from syntra.plan import ImagePlan

if TYPE_CHECKING:
    from syntra.image.build.contract import BuildRequest


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


def shared_flags(request: BuildRequest) -> list[str]:
    """What docker buildx and podman share: platform, spec, the image flags and the
    plugins build context (the rendered specs `COPY --from=plugins <guest>.wasm`), and
    each locked `FROM` image as a build context of the same name, pulled by digest."""
    image = request.image
    flags = ["--platform", request.platform, "--file", str(request.root / image.dockerfile)]
    flags += image_flags(image, request.root, request.args)
    if image.plugins:
        flags += ["--build-context", f"plugins={plugins_dir(request.root)}"]
    for reference, pinned in request.stage_images.items():
        flags += ["--build-context", f"{reference}=docker-image://{pinned}"]
    return flags
