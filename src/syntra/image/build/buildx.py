"""The docker buildx backend: BuildKit writes the OCI layout itself.

Tested against real BuildKit (Debian 13's dockerd with the containerd image store,
tests/support/dockerd.py); remote and Kubernetes builders (`builders:`) by argv
contract tests only. Its flags coincide with podman's wherever both have one.
"""

from __future__ import annotations

import os
import shutil

from python_on_whales import DockerClient
from python_on_whales.exceptions import DockerException
from python_on_whales.utils import run

from syntra import process
from syntra.errors import SyntraError
from syntra.image.build.cache import buildx_flags, docker_env
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
        chosen = ["--builder", request.buildx_builder] if request.buildx_builder else []
        cache = request.cache
        cached = buildx_flags(cache, request.image.name, request.platform) if cache else []
        return [
            *docker,
            "buildx",
            "build",
            *chosen,
            *shared_flags(request),
            *cached,
            "--provenance=false",
            "--sbom=false",
            "--output",
            output,
            "--progress",
            "plain",
            str(request.root / request.image.context),
        ]

    def check_builder(self, name: str, platform: str) -> None:
        """The builder syntra.yaml names for `platform` exists (before any build)."""
        docker = [str(part) for part in self.client.client_config.docker_cmd]
        found = process.run([*docker, "buildx", "inspect", name], check=False)
        if not found.ok:
            raise SyntraError(
                f"buildx builder '{name}' (builders, for {platform}) is not there: "
                f"create it with `docker buildx create --name {name} ...`"
            )

    def build(self, request: BuildRequest) -> None:
        if request.buildx_builder:
            self.check_builder(request.buildx_builder, request.platform)
        shutil.rmtree(request.layout, ignore_errors=True)
        env = {**os.environ, "SOURCE_DATE_EPOCH": str(request.source_date_epoch)}
        what = f"buildx build of {request.image.name} for {request.platform}"
        with docker_env(request.cache) as auth:
            process.streamed(self.argv(request), request.log, what, env=env | auth)


ENTRY = Entry(unavailable, Buildx)
