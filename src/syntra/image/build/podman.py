"""The podman backend: `podman build` per platform, exported with `podman push oci:`."""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence

from python_on_whales import DockerClient

from syntra import process
from syntra.image.build.cache import podman_auth, podman_flags
from syntra.image.build.contract import BuildRequest, Entry, LayoutBuilder, which
from syntra.image.build.flags import shared_flags


def unavailable() -> str | None:
    return None if which("podman") else "install podman (apt-get install podman)"


def isolation() -> str:
    """chroot works where podman runs inside a container or without user namespaces;
    BUILDAH_ISOLATION chooses another."""
    return os.environ.get("BUILDAH_ISOLATION", "chroot")


class Podman(LayoutBuilder):
    name = "podman"

    def __init__(self) -> None:
        self.client = DockerClient(client_call=["podman"])

    @property
    def command(self) -> list[str]:
        return [str(part) for part in self.client.client_config.docker_cmd]

    def argv(self, request: BuildRequest, auth: Sequence[str] = ()) -> list[str]:
        argv = [*self.command, "build", *shared_flags(request)]
        argv += ["--isolation", isolation(), "--timestamp", str(request.source_date_epoch)]
        argv += ["--iidfile", str(request.layout.with_suffix(".iid"))]
        if request.cache:
            argv += [*podman_flags(request.cache), *auth]
        if request.insecure_pull and "--tls-verify=false" not in argv:
            argv.append("--tls-verify=false")
        argv.append(str(request.root / request.image.context))
        return argv

    def export_argv(self, request: BuildRequest, image_id: str) -> list[str]:
        return [*self.command, "push", "--quiet", image_id, f"oci:{request.layout}:image"]

    def build(self, request: BuildRequest) -> None:
        what = f"podman build of {request.image.name} for {request.platform}"
        with podman_auth(request.cache) as auth:
            process.streamed(self.argv(request, auth), request.log, what)
        image_id = request.layout.with_suffix(".iid").read_text().strip()
        shutil.rmtree(request.layout, ignore_errors=True)
        process.streamed(self.export_argv(request, image_id), request.log, f"export of {what}")


ENTRY = Entry(unavailable, Podman)
