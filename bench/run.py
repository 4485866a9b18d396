"""Speed targets, as ratios against baselines measured in this run.

- no-op `doit render` on the showcase: under 3x `python -c "import syntra"`
- no-op `doit docker` on the showcase: under 0.5 s (after one real build into a
  throwaway registry)
- no-op `doit wasm` on the showcase: under 0.5 s (after one real run)
- warm sandbox test run of the Python component (compile cache) under 1 s, against the
  cold run that compiles it
- `syntra plan` on 500 images x 2 platforms: under 1.5 s
- `syntra validate` on an alias bomb and on a merge-key bomb: refused in under 1 s, and
  an error on the last line of a file near the size limit reported in under 1.5 s

Every command runs with this interpreter directly (no shims); each time is the best
of several runs, so the numbers say what the code costs, not what the machine was
doing meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
ARCHES = ("amd64", "arm64")


def best_of(
    command: list[str], cwd: Path, runs: int = 7, env: dict[str, str] | None = None
) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=cwd, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - started)
    return min(times)


def big_project(folder: Path, images: int) -> Path:
    (folder / "ctx").mkdir(parents=True)
    lines = [
        "version: 1",
        "project: {name: big}",
        "registries: {local: {url: '127.0.0.1:5000', insecure: true}}",
        "defaults: {platforms: [linux/amd64, linux/arm64]}",
        "images:",
    ]
    for number in range(images):
        lines += [
            f"  image-{number}:",
            "    context: ctx",
            f"    base: 127.0.0.1:5000/big/base:{number}",
            "    args: {A: 1, B: two}",
            "    tags: ['{{ version }}', 'sha-{{ git.short_sha }}', latest]",
        ]
    (folder / "syntra.yaml").write_text("\n".join(lines) + "\n")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "b",
        "GIT_AUTHOR_EMAIL": "b@x.invalid",
        "GIT_COMMITTER_NAME": "b",
        "GIT_COMMITTER_EMAIL": "b@x.invalid",
    }
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "big"]):
        subprocess.run(["git", *args], cwd=folder, check=True, env=env)
    return folder


def alias_bomb(folder: Path) -> Path:
    folder.mkdir()
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 12)]
    text = "version: 1\nproject: {name: bomb}\nimages:\n  x:\n    vars:\n"
    (folder / "syntra.yaml").write_text(text + "".join(f"      {x}\n" for x in levels))
    return folder


def noop_pipeline() -> tuple[float, float]:
    """Run the showcase once into a throwaway registry, then time no-op `doit docker`
    and `doit wasm`."""
    from tests.support.bases import seed_busybox

    from syntra.registry.local import serve

    binaries = {arch: ROOT / ".cache" / "busybox" / arch / "bin" / "busybox" for arch in ARCHES}
    with serve() as registry:
        env = {
            **os.environ,
            "SYNTRA_REGISTRY": registry,
            "SYNTRA_BASE_IMAGE": seed_busybox(registry, binaries, "syntra/busybox", "1.36"),
        }
        stages = ["render", "wasm", "docker"]  # what is timed below; signing needs a key
        subprocess.run(
            [PY, "-m", "doit", *stages], cwd=ROOT, check=True, env=env, capture_output=True
        )
        docker = best_of([PY, "-m", "doit", "docker"], ROOT, env=env)
        wasm = best_of([PY, "-m", "doit", "wasm"], ROOT, env=env)
        return docker, wasm


def component_test_runs() -> tuple[float, float]:
    """Cold (compiles the component) and warm (compile cache) runs of fib-python's tests."""
    from syntra import build_plan, load
    from syntra.plugins.sandbox import run_tests

    plan = build_plan(load(ROOT / "syntra.yaml"))
    guest = next(g for g in plan.guests if g.name == "fib-python")
    with tempfile.TemporaryDirectory() as folder:
        cache = Path(folder)
        started = time.perf_counter()
        list(run_tests(guest, ROOT / guest.output, cache))
        cold = time.perf_counter() - started
        started = time.perf_counter()
        list(run_tests(guest, ROOT / guest.output, cache))
        warm = time.perf_counter() - started
    return cold, warm


def merge_bomb(folder: Path) -> Path:
    folder.mkdir()
    lines = ["  a0: &a0 {context: .}"]
    lines += [f"  a{i}: &a{i} {{<<: [*a{i - 1}, *a{i - 1}]}}" for i in range(1, 30)]
    text = "version: 1\nproject: {name: bomb}\nimages:\n" + "\n".join(lines) + "\n"
    (folder / "syntra.yaml").write_text(text)
    return folder


def late_error(folder: Path) -> Path:
    """A file just under the size limit whose only error is on its last line."""
    folder.mkdir()
    items = "".join(f"        - item-{n}\n" for n in range(40_000))
    text = "version: 1\nproject: {name: big}\nimages:\n  web:\n    vars:\n      list:\n"
    (folder / "syntra.yaml").write_text(text + items + "    contxt: .\n")
    return folder


def refused_in(folder: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([PY, "-m", "syntra", "validate"], cwd=folder, capture_output=True)
    elapsed = time.perf_counter() - started
    return elapsed if done.returncode == 2 else float("inf")


def main() -> int:
    subprocess.run([PY, "-m", "doit", "render"], cwd=ROOT, check=True, capture_output=True)
    with tempfile.TemporaryDirectory() as temp:
        big = big_project(Path(temp) / "big", 500)
        bomb = alias_bomb(Path(temp) / "bomb")
        python_pass = best_of([PY, "-c", "pass"], ROOT)
        import_syntra = best_of([PY, "-c", "import syntra"], ROOT)
        noop_render = best_of([PY, "-m", "doit", "render"], ROOT)
        noop_images, noop_wasm = noop_pipeline()
        cold_component, warm_component = component_test_runs()
        plan = best_of([PY, "-m", "syntra", "plan"], big, runs=3)
        plan_json = best_of([PY, "-m", "syntra", "plan", "--json"], big, runs=3)
        bomb_time = refused_in(bomb)
        merge_time = refused_in(merge_bomb(Path(temp) / "merge"))
        late_time = refused_in(late_error(Path(temp) / "late"))
    rows = [
        ("python -c pass", python_pass, python_pass, None),
        ('python -c "import syntra"', import_syntra, python_pass, None),
        ("no-op doit render (showcase)", noop_render, import_syntra, 3.0),
        ("no-op doit docker (showcase)", noop_images, import_syntra, None),
        ("no-op doit wasm (showcase)", noop_wasm, import_syntra, None),
        ("fib-python tests, cold (compiles)", cold_component, python_pass, None),
        ("fib-python tests, warm (cache)", warm_component, cold_component, None),
        ("syntra plan, 500 images x 2 platforms", plan, python_pass, None),
        ("syntra plan --json, 500 x 2", plan_json, python_pass, None),
        ("alias bomb refused (exit 2)", bomb_time, python_pass, None),
        ("merge-key bomb refused (exit 2)", merge_time, python_pass, None),
        ("error on the last of 40,000 lines", late_time, python_pass, None),
    ]
    print(f"{'measurement':40} {'seconds':>8} {'ratio':>7}  baseline")
    names = {id(python_pass): "python -c pass", id(import_syntra): "import syntra"}
    for name, seconds, base, _ in rows:
        baseline = names.get(id(base), "the cold run")
        print(f"{name:40} {seconds:8.3f} {seconds / base:7.2f}x  {baseline}")
    checks = [
        ("no-op doit render < 3x import syntra", noop_render / import_syntra < 3.0),
        ("no-op doit docker < 0.5 s", noop_images < 0.5),
        ("no-op doit wasm < 0.5 s", noop_wasm < 0.5),
        ("warm Python component test run < 1 s", warm_component < 1.0),
        ("syntra plan 500x2 < 1.5 s", max(plan, plan_json) < 1.5),
        ("alias bomb refused < 1 s", bomb_time < 1.0),
        ("merge-key bomb refused < 1 s", merge_time < 1.0),
        ("error at the end of a 1 MiB file < 1.5 s", late_time < 1.5),
    ]
    for label, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {label}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
