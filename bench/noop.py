"""No-op `doit` on a generated repository of 20 images x 2 platforms and 4 guests, as
ratios against loading Syntra's task graph (`python -c "import syntra.pipeline.tasks"`,
what a `dodo.py` imports; `import syntra` alone loads next to nothing since it became
lazy) measured in this run.

The repository is built for real once (podman, a throwaway docker-registry, the Swift
guest four times over), then timed:

- no-op `doit`, clean tree: under 0.5 s and under 2x loading the task graph
- no-op `doit`, dirty tree (a tracked file outside every image edited; its dev version
  pushed once, untimed): under 0.5 s
- one file of one image's context edited: that image built again, every other one
  retagged with the dirty version (timed once: it builds)

Each no-op is the best of several runs and must print only `-- ` lines.
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
PY = sys.executable
IMAGES, GUESTS = 20, 4
SPEC = "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY . /srv/\n"


def generated(folder: Path, registry: str, base: str) -> Path:
    lines = [
        "version: 1",
        "project: {name: gen}",
        f"registries: {{local: {{url: '{registry}'}}}}",
        "defaults: {platforms: [linux/amd64, linux/arm64]}",
        "images:",
    ]
    for number in range(IMAGES):
        (folder / f"app-{number}").mkdir(parents=True)
        (folder / f"app-{number}" / "index.html").write_text(f"<h1>{number}</h1>\n")
        lines += [f"  app-{number}: {{context: app-{number}, template: app.j2, base: '{base}'}}"]
    lines.append("wasm:")
    for number in range(GUESTS):
        source = folder / "guests" / f"fib-{number}"
        shutil.copytree(ROOT / "WebAssembly" / "Guest" / "Swift", source)
        lines += [
            f"  fib-{number}:",
            f"    {{language: swift, source: guests/fib-{number}, mode: embedded, product: Fib,",
            "     tests: [{call: fib, args: [24], expect: 46368}]}",
        ]
    (folder / "templates").mkdir()
    (folder / "templates" / "app.j2").write_text(SPEC)
    (folder / "syntra.yaml").write_text("\n".join(lines) + "\n")
    (folder / "NOTES.md").write_text("outside every image\n")
    (folder / ".gitignore").write_text(".syntra/\n")
    shutil.copy(ROOT / "dodo.py", folder / "dodo.py")
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x.invalid",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x.invalid"}  # fmt: skip
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "generated"]):
        subprocess.run(["git", *args], cwd=folder, check=True, env=env)
    return folder


def doit(folder: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        [PY, "-m", "doit"], cwd=folder, capture_output=True, text=True, env=env, check=False
    )
    if done.returncode:
        raise SystemExit(f"doit failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def noop(folder: Path, env: dict[str, str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        out = doit(folder, env)
        times.append(time.perf_counter() - started)
        if not all(line.startswith("-- ") for line in out.splitlines()):
            raise SystemExit(f"not a no-op:\n{out[-2000:]}")
    return min(times)


def best_of(command: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> int:
    from tests.support.bases import seed_busybox

    from syntra.registry.local import serve

    arches = ("amd64", "arm64")
    binaries = {a: ROOT / ".cache" / "busybox" / a / "bin" / "busybox" for a in arches}
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(ROOT / "src")
    with serve() as registry, tempfile.TemporaryDirectory() as temp:
        base = seed_busybox(registry, binaries, "gen/busybox", "1.36")
        folder = generated(Path(temp) / "gen", registry, base)
        started = time.perf_counter()
        doit(folder, env)
        full = time.perf_counter() - started
        loading = best_of([PY, "-c", "import syntra.pipeline.tasks"])
        clean = noop(folder, env)
        (folder / "NOTES.md").write_text("edited, not committed\n")
        doit(folder, env)  # the dirty version pushed once
        dirty = noop(folder, env)
        (folder / "app-0" / "index.html").write_text("<h1>edited</h1>\n")
        started = time.perf_counter()
        edited = doit(folder, env)
        edit = time.perf_counter() - started
        if "app-0: built linux/amd64, linux/arm64" not in edited:
            raise SystemExit(f"app-0 was not built again:\n{edited[-2000:]}")
        rebuilt = [line for line in edited.splitlines() if ": built " in line]
    rows = [
        ('python -c "import syntra.pipeline.tasks"', loading),
        (f"first full doit ({IMAGES} images x 2, {GUESTS} guests)", full),
        ("no-op doit, clean tree", clean),
        ("no-op doit, dirty tree", dirty),
        (f"one file of one image edited ({len(rebuilt)} built)", edit),
    ]
    print(f"{'measurement':48} {'seconds':>8} {'ratio':>7}  baseline: the task graph loaded")
    for name, seconds in rows:
        print(f"{name:48} {seconds:8.3f} {seconds / loading:7.2f}x")
    checks = [
        ("no-op doit (clean) < 0.5 s", clean < 0.5),
        ("no-op doit (clean) < 2x loading the task graph", clean < 2 * loading),
        ("no-op doit (dirty) < 0.5 s", dirty < 0.5),
    ]
    for label, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
