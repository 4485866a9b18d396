"""A real Docker engine with BuildKit for the buildx tests: Debian 13's dockerd 26 and
containerd 1.7 from `.cache/docker` (see .ci/setup), started per test session.

Settings for this kind of machine, not Syntra's: the containerd image store (what
buildx needs for OCI output and the registry cache), the `native` snapshotter (no
overlay inside this container), a bridge of its own (RUN steps need one), no iptables,
and the system's runc; data, exec root and socket under a temporary folder.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import REPO

DOCKER = REPO / ".cache" / "docker"
READY_SECONDS = 90


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextmanager
def dockerd(folder: Path) -> Iterator[dict[str, str]]:
    """Start the engine; yield the environment a docker client needs to reach it (PATH,
    DOCKER_HOST, and a DOCKER_CONFIG holding the buildx plugin)."""
    assert (DOCKER / "bin" / "dockerd").exists(), "run .ci/setup: it unpacks .cache/docker"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "daemon.json").write_text(json.dumps({"features": {"containerd-snapshotter": True}}))
    config = folder / "config"
    config.mkdir()
    (config / "config.json").write_text("{}")  # buildah (the image tests) stats it
    (config / "cli-plugins").symlink_to(
        DOCKER / "root" / "usr" / "libexec" / "docker" / "cli-plugins"
    )
    socket = folder / "docker.sock"
    bridge = f"sy{secrets.token_hex(3)}"
    subnet = 100 + int.from_bytes(secrets.token_bytes(1)) % 100
    _ip("link", "add", bridge, "type", "bridge")
    env = {
        "PATH": f"{DOCKER / 'bin'}:{os.environ['PATH']}",
        "DOCKER_HOST": f"unix://{socket}",
        "DOCKER_CONFIG": str(config),
    }
    daemon = None
    try:
        _ip("addr", "add", f"10.{subnet}.77.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        argv = [
            "dockerd", "--config-file", str(folder / "daemon.json"),
            "--data-root", str(folder / "data"), "--exec-root", str(folder / "exec"),
            "--pidfile", str(folder / "docker.pid"), "--host", env["DOCKER_HOST"],
            "--storage-driver", "native", "--bridge", bridge,
            "--iptables=false", "--ip6tables=false",
        ]  # fmt: skip
        log = (folder / "dockerd.log").open("wb")
        daemon = subprocess.Popen(argv, env={**os.environ, **env}, stdout=log, stderr=log)
        deadline = time.monotonic() + READY_SECONDS
        while True:
            ask = ["docker", "info", "--format", "{{.ServerVersion}}"]
            info = subprocess.run(ask, env={**os.environ, **env}, capture_output=True, check=False)
            if info.returncode == 0:
                break
            assert daemon.poll() is None, (folder / "dockerd.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "dockerd did not answer in time"
            time.sleep(0.5)
        yield env
    finally:
        if daemon is not None:
            daemon.terminate()
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        _ip("link", "del", bridge)
        shutil.rmtree(folder / "data", ignore_errors=True)
