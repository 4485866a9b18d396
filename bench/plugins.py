"""Plugin host targets, as ratios against the cold call measured in this run.

The showcase's Python guest (an 18 MB component) loaded through `syntra.plugins` from a
local file: the cold load compiles it (empty compile cache); a warm load takes the
compiled code from the cache. Targets: the warm load-and-call under 1/20 of the cold
one, and a warm call (the plugin already loaded) under 50 ms.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from syntra import plugins  # noqa: E402
from syntra.paths import plugin_file  # noqa: E402

GUEST = plugin_file(ROOT, "fib-python")
LIMITS = plugins.Limits(max_mem=256 << 20, max_ms=5000)


def load_and_call(cache: Path) -> float:
    started = time.perf_counter()
    plugin = plugins.load_file(GUEST, limits=LIMITS, cache=cache)
    assert plugin.call("fib", 24) == 46368
    return time.perf_counter() - started


def main() -> int:
    if not GUEST.is_file():  # the showcase guest, built once
        subprocess.run([sys.executable, "-m", "doit", "wasm:fib-python.optimize"], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="syntra-bench-") as folder:
        cache = Path(folder)
        cold = load_and_call(cache)
        warm = min(load_and_call(cache) for _ in range(5))
        plugin = plugins.load_file(GUEST, limits=LIMITS, cache=cache)
        call = min(plugin.measure("fib", 24).elapsed_ms for _ in range(20)) / 1000
    print(f"{'measurement':40} {'seconds':>8} {'ratio':>7}")
    print(f"{'cold load + call (compiles)':40} {cold:8.3f} {1:7.2f}x")
    print(f"{'warm load + call (compile cache)':40} {warm:8.3f} {warm / cold:7.3f}x")
    print(f"{'warm call, plugin loaded':40} {call:8.4f} {call / cold:7.4f}x")
    checks = [(warm < cold / 20, "warm load under 1/20 of cold"), (call < 0.05, "call < 50 ms")]
    for ok, label in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
