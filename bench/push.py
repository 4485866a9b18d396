"""Registry push targets, against `skopeo copy` of the same OCI layout measured in this run.

- Three incompressible 512 MiB layers: the push process peaks under 160 MiB RSS (blobs
  stream from disk), and takes at most skopeo's time.
- Ten 8 MiB layers behind 50 ms of latency per request (the fault proxy with no faults):
  at most skopeo's time (concurrent uploads hide the round trips).

Each side pushes into its own fresh repository of a throwaway registry, so neither finds
blobs the other uploaded.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.faults import fault_proxy  # noqa: E402
from tests.support.layouts import PUSH, oci_layout  # noqa: E402

from syntra.registry.local import serve  # noqa: E402

MIB = 1 << 20


def measured(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall time and peak RSS (bytes) of one process."""
    started = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        assert process.stderr is not None
        raise SystemExit(f"{argv[0]} failed: {process.stderr.read().decode()[-500:]}")
    return elapsed, usage.ru_maxrss * 1024


def pair(address: str, layout: Path, name: str) -> tuple[tuple[float, int], tuple[float, int]]:
    """(Syntra, skopeo) pushing `layout` to `address`."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    ours = measured([sys.executable, "-c", PUSH, address, str(layout), f"bench/{name}-syntra"], env)
    skopeo = shutil.which("skopeo") or "skopeo"
    theirs = measured(
        [skopeo, "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}",
         f"docker://{address}/bench/{name}-skopeo:v1"]
    )  # fmt: skip
    return ours, theirs


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="syntra-bench-") as temp:
        large = oci_layout(Path(temp) / "large", layers=3, size=512 * MIB, seed=1)
        small = oci_layout(Path(temp) / "small", layers=10, size=8 * MIB, seed=2)
        with serve() as registry:
            (big_ours, big_rss), (big_skopeo, _) = pair(registry, large, "large")
            with fault_proxy(registry, latency=0.05) as slow:
                (lag_ours, _), (lag_skopeo, _) = pair(slow.address, small, "latency")
    print(f"{'measurement':46} {'seconds':>8} {'ratio':>7}")
    print(f"{'skopeo copy, 3 x 512 MiB':46} {big_skopeo:8.2f} {1:7.2f}x")
    print(f"{'syntra push, 3 x 512 MiB':46} {big_ours:8.2f} {big_ours / big_skopeo:7.2f}x")
    print(f"{'syntra push peak RSS (MiB)':46} {big_rss / MIB:8.1f}")
    print(f"{'skopeo copy, 10 x 8 MiB, 50 ms per request':46} {lag_skopeo:8.2f} {1:7.2f}x")
    print(f"{'syntra push, 10 x 8 MiB, 50 ms per request':46} {lag_ours:8.2f} "
          f"{lag_ours / lag_skopeo:7.2f}x")  # fmt: skip
    checks = [
        ("3 x 512 MiB push peaks under 160 MiB RSS", big_rss < 160 * MIB),
        ("3 x 512 MiB push at most skopeo's time", big_ours <= big_skopeo),
        ("10 layers behind 50 ms latency at most skopeo's time", lag_ours <= lag_skopeo),
    ]
    for label, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
