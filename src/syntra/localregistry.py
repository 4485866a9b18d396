"""A throwaway OCI registry on a free loopback port (Debian's docker-registry).

Used by the main job and the tests: it lives in a temporary directory and is gone
when the context exits.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from syntra.errors import SyntraError

_CONFIG = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: {addr}
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def serve(timeout: float = 15.0, htpasswd: Path | None = None) -> Iterator[str]:
    """Start a registry and yield its `127.0.0.1:PORT`; stop and delete it afterwards.

    With `htpasswd` (bcrypt entries), every request needs basic authentication.
    """
    binary = shutil.which("docker-registry")
    if binary is None:
        raise SyntraError("docker-registry is not installed (apt-get install docker-registry)")
    with tempfile.TemporaryDirectory(prefix="syntra-registry-") as folder:
        addr = f"127.0.0.1:{free_port()}"
        config = Path(folder) / "config.yml"
        text = _CONFIG.format(root=Path(folder) / "data", addr=addr)
        if htpasswd is not None:
            text += f"auth:\n  htpasswd:\n    realm: syntra\n    path: {htpasswd}\n"
        config.write_text(text)
        log = Path(folder) / "registry.log"
        # A file, not a pipe: the registry logs every 404, and a pipe nobody reads
        # fills up and blocks it mid-request.
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [binary, "serve", str(config)], stdout=sink, stderr=subprocess.STDOUT
            )
            try:
                _wait(addr, process, log, timeout)
                yield addr
            finally:
                process.terminate()
                process.wait(timeout=10)


def _wait(addr: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = log.read_text(errors="replace").strip()[-300:]
            raise SyntraError(f"docker-registry exited: {error}")
        try:
            with urllib.request.urlopen(f"http://{addr}/v2/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # 401 from a registry that wants a login: it is serving
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    raise SyntraError(f"docker-registry did not answer on {addr} within {timeout:.0f}s")


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
    from syntra.images import Job, build_and_publish

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
        build_and_publish(Job(loaded, resolved, resolved.image("busybox")), build.select("podman"))
    return f"{registry}/{repository}:{tag}"
