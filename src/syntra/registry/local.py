"""A throwaway OCI registry on a free loopback port (Debian's docker-registry).

Used by the main job, the benchmarks and the tests: it lives in a temporary directory and is gone
when the context exits.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from syntra import process
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
        server = process.Background([binary, "serve", str(config)], sink=log)
        try:
            _wait(addr, server, log, timeout)
            yield addr
        finally:
            server.stop()


def _wait(addr: str, server: process.Background, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
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
