"""`syntra copy oci:LAYOUT REGISTRY` of three incompressible 256 MiB blobs, against a
floor measured in this run: curl uploading the same blobs to the same loopback registry
as parallel monolithic POST + PUT requests (what the wire costs, with no checking at
all). Target: at most 1.25x the floor. Syntra hashes each blob in the read that uploads
it, so checking the layout costs no second read of it.

Each run pushes into its own fresh repository; the best of three runs counts on each side.
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

from tests.support.layouts import oci_layout  # noqa: E402

from syntra.registry.local import serve  # noqa: E402

MIB = 1 << 20
TARGET = 1.25
UPLOAD = """
set -e
location=$(curl -sS -o /dev/null -D - -X POST -H 'Content-Length: 0' \
  "http://$1/v2/$2/blobs/uploads/" | tr -d '\\r' | sed -n 's/^[Ll]ocation: //p')
case "$location" in http*) ;; *) location="http://$1$location" ;; esac
case "$location" in *\\?*) join='&' ;; *) join='?' ;; esac
curl -sS -f -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
  --data-binary "@$3" "$location${join}digest=$4"
"""


def layers(layout: Path) -> list[tuple[Path, str]]:
    """(file, digest) of each layer blob: the large ones."""
    blobs = layout / "blobs" / "sha256"
    return [(p, f"sha256:{p.name}") for p in sorted(blobs.iterdir()) if p.stat().st_size > MIB]


def floor(address: str, layout: Path, repository: str) -> float:
    """curl: the layer blobs uploaded in parallel, one POST and one PUT each."""
    curl = shutil.which("curl") or "curl"
    env = {**os.environ, "PATH": f"{Path(curl).parent}:{os.environ.get('PATH', '')}"}
    started = time.perf_counter()
    running = [
        subprocess.Popen(
            ["sh", "-c", UPLOAD, "upload", address, repository, str(path), digest], env=env
        )
        for path, digest in layers(layout)
    ]
    if any(process.wait() != 0 for process in running):
        raise SystemExit("curl upload failed")
    return time.perf_counter() - started


def ours(address: str, layout: Path, repository: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "syntra", "copy", f"oci:{layout}", f"{address}/{repository}:v1"],
        env=env, capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"syntra copy failed: {done.stderr[-500:]}")
    return time.perf_counter() - started


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="syntra-bench-") as temp:
        layout = oci_layout(Path(temp) / "layout", layers=3, size=256 * MIB, seed=3)
        with serve() as registry:
            curl_times, syntra_times = [], []
            for run in range(3):
                curl_times.append(floor(registry, layout, f"bench/curl{run}"))
                syntra_times.append(ours(registry, layout, f"bench/syntra{run}"))
    base, measured = min(curl_times), min(syntra_times)
    print(f"{'measurement':52} {'seconds':>8} {'ratio':>7}")
    print(f"{'curl POST+PUT, 3 x 256 MiB in parallel (floor)':52} {base:8.2f} {1:7.2f}x")
    print(f"{'syntra copy oci:LAYOUT REGISTRY, 3 x 256 MiB':52} {measured:8.2f} "
          f"{measured / base:7.2f}x")  # fmt: skip
    ok = measured <= TARGET * base
    print(f"{'PASS' if ok else 'FAIL'}  layout copy at most {TARGET}x the curl floor")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
