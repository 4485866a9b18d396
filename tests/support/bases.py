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
    from syntra import config, plan
    from syntra.image import build, job, render
    from syntra.pipeline.context import Context

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
        render.write_specs(render.render_plan(resolved, root), root)
        backend, _ = build.select("podman")
        job.publish_image(Context(loaded, resolved).job("busybox"), backend)
    return f"{registry}/{repository}:{tag}"


POSTGRES_ROOTFS = Path(".cache") / "debian" / "bookworm-postgresql.tar"
POSTGRES_LOCAL = "localhost/syntra/postgres:15-bookworm"
"""The database image in the engine, as the official one is used: see scripts/postgres/."""
POSTGRES_IMPORT = [
    "--entrypoint=docker-entrypoint.sh",
    "--cmd=postgres",
    "--env=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ":/usr/lib/postgresql/15/bin",
    "--env=PGDATA=/var/lib/postgresql/data",
    "--expose=5432",
    "--stop-signal=SIGINT",
]
"""`syntra import`'s flags for the tarball, as docs/local-development.md gives them."""


def seed_postgres(root: Path, registry: str) -> str:
    """PostgreSQL 15 from Debian's packages, nothing pulled: the rootfs tarball that
    scripts/debian-postgres makes once under .cache/, imported into podman's store as
    POSTGRES_LOCAL with `syntra import` and pushed to `registry` (the base of the
    showcase's notes image). Returns the registry reference."""
    import subprocess

    from syntra.cli import main

    subprocess.run([str(root / "scripts" / "debian-postgres")], check=True)
    exists = subprocess.run(["podman", "image", "exists", POSTGRES_LOCAL], check=False)
    if exists.returncode != 0:
        tarball = str(root / POSTGRES_ROOTFS)
        assert main(["import", tarball, POSTGRES_LOCAL, *POSTGRES_IMPORT]) == 0
    reference = f"{registry}/syntra/postgres:15-bookworm"
    push = ["podman", "push", "--quiet", "--tls-verify=false", POSTGRES_LOCAL, reference]
    subprocess.run(push, check=True, capture_output=True)
    return reference
