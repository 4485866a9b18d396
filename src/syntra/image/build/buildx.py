"""The docker buildx backend: BuildKit writes the OCI layout itself.

No Docker engine runs where Syntra is developed, so this backend is covered by
argv contract tests; its flags coincide with podman's wherever both have one.
"""

from __future__ import annotations

import os
import shutil

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from python_on_whales.utils import run

from syntra import process
from syntra.image.build.contract import BuildRequest, Entry, LayoutBuilder, which
from syntra.image.build.flags import shared_flags


def unavailable() -> str | None:
    """None for docker with the buildx plugin and an engine that answers."""
    needs = "install docker with buildx and a running engine"
    if which("docker") is None:
        return needs
    docker = [str(part) for part in DockerClient().client_config.docker_cmd]
    try:
        run([*docker, "buildx", "version"])
        run([*docker, "info", "--format", "{{.ServerVersion}}"])
    except DockerException:
        return needs
    return None


class Buildx(LayoutBuilder):
    name = "buildx"

    def __init__(self) -> None:
        self.client = DockerClient()

    def argv(self, request: BuildRequest) -> list[str]:
        docker = [str(part) for part in self.client.client_config.docker_cmd]
        output = f"type=oci,dest={request.layout},tar=false,rewrite-timestamp=true"
        return [
            *docker,
            "buildx",
            "build",
            *shared_flags(request),
            "--provenance=false",
            "--sbom=false",
            "--output",
            output,
            "--progress",
            "plain",
            str(request.root / request.image.context),
        ]

    def build(self, request: BuildRequest) -> None:
        shutil.rmtree(request.layout, ignore_errors=True)
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(request.source_date_epoch)}
        what = f"buildx build of {request.image.name} for {request.platform}"
        process.streamed(self.argv(request), request.log, what, env=env)


ENTRY = Entry(unavailable, Buildx)
