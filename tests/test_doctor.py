"""`syntra doctor`: the real tools, run the way the stages run them; a missing package is
named, and the stage that hits it prints the same line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from syntra.paths import STATE_DIR
from tests.conftest import PYTHON, REPO, commit, git, run

pytestmark = pytest.mark.e2e

RUST_GUEST = """\
version: 1
project: {name: doctor, version: 1.0.0}
registries: {local: {url: '127.0.0.1:9', insecure: true}}
wasm:
  fib-rust:
    language: rust
    source: Rust
    tests: [{call: fib, args: [24], expect: 46368}]
"""
SERVICE = """\
version: 1
project: {name: doctor}
registries: {local: {url: '127.0.0.1:9', insecure: true}}
services:
  db:
    image: 127.0.0.1:9/library/postgres:15
"""


def repository(root: Path, config: str) -> Path:
    root.mkdir()
    (root / "syntra.yaml").write_text(config)
    (root / ".gitignore").write_text(f"{STATE_DIR}/\n")
    git(root, "init", "-q", "-b", "main")
    commit(root, "initial")
    return root


def programs(folder: Path, *names: str) -> str:
    """A PATH of just these programs (links to the machine's), in a folder of its own."""
    folder.mkdir()
    for name in names:
        found = shutil.which(name)
        assert found, f"{name} is needed by this test"
        (folder / name).symlink_to(found)
    return str(folder)


def test_a_dangling_rust_lld_is_named_with_its_package_by_doctor_and_by_the_compile(
    tmp_path: Path,
) -> None:
    """Debian's rust-lld links to lld-14, which the wasm32 std only recommends: with the
    link dangling, doctor names lld-14 and exits 3, and so does the compile task."""
    root = repository(tmp_path / "repo", RUST_GUEST)
    shutil.copytree(REPO / "WebAssembly" / "Guest" / "Rust", root / "Rust")
    commit(root, "guest")
    path = programs(tmp_path / "bin", "git", "wasm-opt")
    (Path(path) / "rust-lld").symlink_to("lld-14")  # as Debian's, without lld-14
    env = {"PATH": path}

    done = run(root, "syntra", "doctor", env=env)
    expected = (
        f"{path}/rust-lld links to lld-14, which is not installed (Rust guests link with "
        "it): apt-get install lld-14"
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert f"MISSING rust guests: {expected}" in done.stdout.splitlines()
    assert "ok      wasm-opt: wasm-opt " in done.stdout
    assert "Traceback" not in done.stderr

    built = run(root, "doit", "wasm:fib-rust.compile", env={**env, "SYNTRA_SNAPSHOT": "1"})
    assert built.returncode != 0
    assert expected in built.stdout + built.stderr
    assert "Traceback" not in built.stdout + built.stderr

    healthy = run(root, "syntra", "doctor", "--json")  # the machine's PATH: lld-14 is there
    findings = {f["check"]: f for f in json.loads(healthy.stdout)}
    assert healthy.returncode == 0, healthy.stdout
    assert findings["rust guests"]["ok"] is True
    assert "links wasm32-wasi" in findings["rust guests"]["detail"]


def test_netavark_without_iptables_is_named(tmp_path: Path) -> None:
    """`syntra up` needs podman's network stack: netavark runs iptables from PATH."""
    root = repository(tmp_path / "repo", SERVICE)
    path = programs(tmp_path / "bin", "git", "podman", "podman-compose")
    done = run(root, "syntra", "doctor", env={"PATH": path})
    assert done.returncode == 3, done.stdout + done.stderr
    assert (
        "MISSING podman networks: netavark needs iptables to set up podman networks "
        "(syntra up): apt-get install iptables"
    ) in done.stdout.splitlines()
    assert "ok      compose: podman-compose " in done.stdout

    healthy = run(root, "syntra", "doctor", "--json")
    findings = {f["check"]: f for f in json.loads(healthy.stdout)}
    assert findings["podman networks"]["ok"] is True, findings
    assert findings["podman networks"]["detail"].endswith("with iptables")


def test_the_showcase_has_every_tool_it_needs() -> None:
    """What .ci/setup ends with: each stage's tools, compiled and linked for real."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "SYNTRA_SNAPSHOT": "1"}
    argv = [PYTHON, "-m", "syntra", "doctor", "--json"]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env)
    findings = {f["check"]: f for f in json.loads(done.stdout)}
    assert done.returncode == 0, done.stdout + done.stderr
    assert {"image builder", "qemu for linux/arm64", "wasm-opt", "syft", "compose"} <= set(findings)
    for name in ("swift", "python", "rust", "c"):
        assert findings[f"{name} guests"]["ok"], findings[f"{name} guests"]


def test_a_registry_that_does_not_answer_exits_4(tmp_path: Path) -> None:
    root = repository(tmp_path / "repo", RUST_GUEST)
    shutil.copytree(REPO / "WebAssembly" / "Guest" / "Rust", root / "Rust")
    commit(root, "guest")
    done = run(root, "syntra", "doctor", "--registries", env={"SYNTRA_REGISTRY_TRIES": "1"})
    assert done.returncode == 4, done.stdout + done.stderr
    assert "MISSING registry 127.0.0.1:9: registry local (127.0.0.1:9): push to " in done.stdout
    assert "Traceback" not in done.stderr
