"""What an OpenTelemetry collector that is down costs a no-op `doit`: the same no-op run
without telemetry (the baseline), with `OTEL_EXPORTER_OTLP_ENDPOINT` at a closed port
(dead), at a port that accepts connections and never answers (stalled), and at a live
OTLP receiver, all measured in this run on a small committed repository.

- dead and stalled: at most 1 s more than the baseline (docs/observability.md)
- dead and stalled: stderr is one warning line naming the endpoint, nothing else

Each figure is the best of several runs; each run must print only `-- ` lines.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
BOUND = 1.0
"""Seconds a collector that is down may add to a run."""
CONFIG = """\
version: 1
project: {name: bench}
registries: {local: {url: '127.0.0.1:5000', insecure: true}}
images:
  web: {context: web, base: '127.0.0.1:5000/bench/base:1'}
  api: {context: web, base: '127.0.0.1:5000/bench/base:1'}
"""


def repository(folder: Path) -> Path:
    (folder / "web").mkdir(parents=True)
    (folder / "web" / "index.html").write_text("<h1>hi</h1>\n")
    (folder / "syntra.yaml").write_text(CONFIG)
    (folder / ".gitignore").write_text(".syntra/\n")
    (folder / "dodo.py").write_text((ROOT / "dodo.py").read_text())
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x.invalid"}  # fmt: skip
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "bench"]):
        subprocess.run(["git", *args], cwd=folder, check=True, env=env)
    return folder


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def stalled() -> Iterator[str]:
    """A collector that accepts every connection and never says a word."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for connection in held:
            connection.close()


def noop(folder: Path, env: dict[str, str], runs: int = 5) -> tuple[float, str]:
    """The best time of a no-op `doit render`, and the stderr of the last run."""
    times, err = [], ""
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(
            [PY, "-m", "doit", "render"], cwd=folder, env=env, capture_output=True, text=True
        )
        times.append(time.perf_counter() - started)
        if done.returncode or not all(x.startswith("-- ") for x in done.stdout.splitlines()):
            raise SystemExit(f"not a no-op:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        err = done.stderr
    return min(times), err


def main() -> int:
    from tests.support.otlp import receiver

    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SYNTRA_TRACE"))}
    env["PYTHONPATH"] = str(ROOT / "src")
    endpoint = "OTEL_EXPORTER_OTLP_ENDPOINT"
    dead = f"http://127.0.0.1:{closed_port()}"
    with tempfile.TemporaryDirectory() as temp, receiver() as live, stalled() as silent:
        folder = repository(Path(temp) / "repo")
        subprocess.run([PY, "-m", "doit", "render"], cwd=folder, env=env, check=True,
                       capture_output=True)  # fmt: skip
        baseline, _ = noop(folder, env)
        with_dead, dead_err = noop(folder, {**env, endpoint: dead})
        with_stalled, stalled_err = noop(folder, {**env, endpoint: silent})
        with_live, _ = noop(folder, {**env, endpoint: live.endpoint})
    rows = [
        ("no-op doit render, no telemetry (baseline)", baseline),
        ("no-op, live OTLP receiver", with_live),
        ("no-op, dead collector (closed port)", with_dead),
        ("no-op, stalled collector (never answers)", with_stalled),
    ]
    print(f"{'measurement':44} {'seconds':>8} {'added':>7}")
    for name, seconds in rows:
        print(f"{name:44} {seconds:8.3f} {seconds - baseline:+7.3f}")

    def warned(err: str, where: str) -> bool:
        lines = err.splitlines()
        return len(lines) == 1 and where in lines[0] and "collector" in lines[0]

    checks = [
        (f"dead collector adds <= {BOUND} s", with_dead - baseline <= BOUND),
        (f"stalled collector adds <= {BOUND} s", with_stalled - baseline <= BOUND),
        ("dead collector: one warning line naming it", warned(dead_err, dead)),
        ("stalled collector: one warning line naming it", warned(stalled_err, silent)),
    ]
    for label, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
