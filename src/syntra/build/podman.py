"""The podman backend: `podman build` per platform, exported with `podman push oci:`."""

from __future__ import annotations

import os
import shutil

from python_on_whales import DockerClient

from syntra.build import BuildRequest, which
from syntra.build.command import run_logged, shared_flags


def available() -> bool:
    return which("podman") is not None


def isolation() -> str:
    """chroot works where podman runs inside a container or without user namespaces;
    BUILDAH_ISOLATION chooses another."""
    return os.environ.get("BUILDAH_ISOLATION", "chroot")


class Podman:
    name = "podman"

    def __init__(self) -> None:
        self.client = DockerClient(client_call=["podman"])

    @property
    def command(self) -> list[str]:
        return [str(part) for part in self.client.client_config.docker_cmd]

    def argv(self, request: BuildRequest) -> list[str]:
        argv = [*self.command, "build", *shared_flags(request)]
        argv += ["--isolation", isolation(), "--timestamp", str(request.source_date_epoch)]
        argv += ["--iidfile", str(request.layout.with_suffix(".iid"))]
        if request.insecure_pull:
            argv.append("--tls-verify=false")
        argv.append(str(request.root / request.image.context))
        return argv

    def export_argv(self, request: BuildRequest, image_id: str) -> list[str]:
        return [*self.command, "push", "--quiet", image_id, f"oci:{request.layout}:image"]

    def build(self, request: BuildRequest) -> None:
        what = f"podman build of {request.image.name} for {request.platform}"
        run_logged(self.argv(request), request.log, what)
        image_id = request.layout.with_suffix(".iid").read_text().strip()
        shutil.rmtree(request.layout, ignore_errors=True)
        run_logged(self.export_argv(request, image_id), request.log, f"export of {what}")
