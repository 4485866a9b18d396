"""Base images for builds offline: no base image can be pulled here, so the tests, the
benchmarks and the main job push a multi-arch busybox built `FROM scratch` first."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

BUSYBOX_SPEC = """\
FROM scratch
ARG TARGETARCH
COPY busybox-${TARGETARCH} /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
"""


def seed_busybox(registry: str, binaries: dict[str, Path], repository: str, tag: str) -> str:
    """Push a multi-arch busybox base (static binaries by Debian arch) with Syntra itself.

    No base image can be pulled offline: this is the base the showcase and the tests
    build on. Returns the reference of the pushed index.
    """
    from syntra import build, config, plan, render
    from syntra.context import Context

    platforms = ", ".join(f"linux/{arch}" for arch in sorted(binaries))
    with tempfile.TemporaryDirectory(prefix="syntra-busybox-") as folder:
        root = Path(folder)
        for arch, binary in binaries.items():
            shutil.copy(binary, root / f"busybox-{arch}")
        (root / "Containerfile").write_text(BUSYBOX_SPEC)
        (root / "syntra.yaml").write_text(
            f"version: 1\nproject: {{name: seed, version: '{tag}'}}\n"
            f"registries: {{local: {{url: '{registry}', insecure: true}}}}\n"
            f"defaults: {{platforms: [{platforms}], tags: ['{tag}']}}\n"
            f"images: {{busybox: {{dockerfile: Containerfile, repository: {repository}}}}}\n"
        )
        loaded = config.load(root / "syntra.yaml")
        resolved = plan.build_plan(loaded)
        render.write(render.render_plan(resolved, root), root)
        backend, _ = build.select("podman")
        backend.publish(Context(loaded, resolved).job("busybox"))
    return f"{registry}/{repository}:{tag}"
