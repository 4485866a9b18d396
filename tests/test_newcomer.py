"""A newcomer's first hour: `syntra init`, `--version`, closed pipes, preflight checks,
templated build args, did-you-mean for paths, and tool errors found, not tailed."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from syntra.paths import STATE_DIR, logs_root
from tests.conftest import MINIMAL, PYTHON, REPO, Result, commit, git, run
from tests.support.projects import SHOWCASE, wasm_project


def test_init_in_an_empty_repository_validates(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    git(tmp_path, "init", "-q", "-b", "main")
    result = syntra(tmp_path, "init")
    assert result.code == 0, result.err
    assert "wrote syntra.yaml (0 images from Dockerfiles)" in result.out
    assert "next: `syntra validate`" in result.out
    assert (tmp_path / "dodo.py").read_text() == (REPO / "dodo.py").read_text()
    assert (tmp_path / ".gitignore").read_text() == f"{STATE_DIR}/\ndist/\n"
    assert (
        syntra(tmp_path, "validate").out
        == "syntra.yaml: ok (0 images, 0 wasm guests, 0 platform builds)\n"
    )


def test_init_finds_dockerfiles_and_never_overwrites(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    for path in ("Dockerfile", "services/api/Dockerfile", "tools/worker.Dockerfile"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("FROM scratch\n")
    (tmp_path / ".gitignore").write_text("build/\n")
    assert syntra(tmp_path, "init").code == 0
    plan = json.loads(syntra(tmp_path, "plan", "--json").out)
    images = {
        image["name"]: (image["source_dockerfile"], image["context"]) for image in plan["images"]
    }
    assert images == {
        tmp_path.name.lower().replace("_", "-"): ("Dockerfile", "."),
        "api": ("services/api/Dockerfile", "services/api"),
        "worker": ("tools/worker.Dockerfile", "tools"),
    }
    assert all(
        r.startswith("127.0.0.1:5000/") for i in plan["images"] for r in i["destination"]["refs"]
    )
    assert (tmp_path / ".gitignore").read_text() == f"build/\n{STATE_DIR}/\ndist/\n"
    before = (tmp_path / "syntra.yaml").read_text()
    again = syntra(tmp_path, "init")
    assert again.code == 2
    assert again.err.count("\n") == 1
    assert "syntra.yaml and dodo.py already exist" in again.err
    assert (tmp_path / "syntra.yaml").read_text() == before


def test_version(tmp_path: Path) -> None:
    done = subprocess.run([PYTHON, "-m", "syntra", "--version"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.strip().startswith("syntra 0.")


def test_a_closed_pipe_exits_quietly() -> None:
    """`syntra plan --json | head -c 10`: the reader is gone before the writer finishes."""
    for argv in (["schema"], ["plan", "--json"]):
        reader, writer = os.pipe()
        os.close(reader)
        done = subprocess.run(
            [PYTHON, "-m", "syntra", *argv],
            cwd=REPO,
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        )
        os.close(writer)
        assert (done.returncode, done.stderr) == (141, "")


def test_unset_build_secret_stops_before_building(
    project: Path, syntra: Callable[..., Result]
) -> None:
    text = MINIMAL + "    secrets: [{id: mirror, env: SYNTRA_TEST_MIRROR_TOKEN}]\n"
    (project / "syntra.yaml").write_text(text)
    os.environ.pop("SYNTRA_TEST_MIRROR_TOKEN", None)
    result = syntra(project, "build", "web")
    assert result.code == 2
    assert result.err == (
        "build secrets not set: $SYNTRA_TEST_MIRROR_TOKEN (images.web secret 'mirror')\n"
    )
    assert not logs_root(project).exists()  # no builder ever ran


def test_full_run_checks_the_passphrase_first(project: Path) -> None:
    text = MINIMAL.replace(
        "images:",
        "supply_chain:\n  signing: {mode: key, key: k/cosign.key, passphrase_env: SYNTRA_TEST_PW}\n"
        "images:",
    )
    (project / "syntra.yaml").write_text(text)
    env = {k: v for k, v in os.environ.items() if k != "SYNTRA_TEST_PW"}
    done = run(project, "doit", env=env)
    assert done.returncode != 0
    assert (
        "preflight: the signing key's passphrase is read from SYNTRA_TEST_PW, which is not set"
        in done.stdout
    )
    assert "render:" not in done.stdout  # nothing started before the check
    assert "Traceback" not in done.stdout + done.stderr


def test_build_args_and_labels_are_templates(project: Path, syntra: Callable[..., Result]) -> None:
    text = (
        MINIMAL
        + '    args: {APP_VERSION: "{{ version }}"}\n    labels: {build: "b-{{ git.short_sha }}"}\n'
    )
    (project / "syntra.yaml").write_text(text)
    (project / "syntra.yaml").write_text(
        text.replace("project:\n  name: demo", "project:\n  name: demo\n  version: 2.1.0")
    )
    commit(project, "templated args")
    image = json.loads(syntra(project, "plan", "--json").out)["images"][0]
    assert image["args"]["APP_VERSION"] == "2.1.0"
    assert image["labels"]["build"] == "b-" + git(project, "rev-parse", "--short=7", "HEAD")


def test_paths_get_a_did_you_mean(project: Path, syntra: Callable[..., Result]) -> None:
    (project / "syntra.yaml").write_text(MINIMAL.replace("context: web", "context: wbe"))
    result = syntra(project, "validate")
    assert result.err == (
        "syntra.yaml:10:14: images.web.context: 'wbe' is not a directory; did you mean 'web'?\n"
    )
    (project / "guests" / "pricing").mkdir(parents=True)
    (project / "syntra.yaml").write_text(
        MINIMAL + "wasm:\n  pricing:\n    language: swift\n    source: guests/prcing\n"
    )
    result = syntra(project, "validate")
    assert result.err == (
        "syntra.yaml:17:13: wasm.pricing.source: 'guests/prcing' is not a directory; "
        "did you mean 'guests/pricing'?\n"
    )


def _swift_guest(root: Path, tests: str) -> None:
    (root / "syntra.yaml").write_text(
        "version: 1\nproject: {name: plugins, version: 1.0.0}\nwasm:\n  fib:\n"
        f"    language: swift\n    source: WebAssembly/Guest/Swift\n    mode: embedded\n"
        f"    tests: {tests}\n"
    )


@pytest.mark.e2e
def test_sandbox_messages_name_the_call_once(tmp_path: Path, registry: str) -> None:
    root = wasm_project(tmp_path / "repo", registry)
    _swift_guest(root, "[{call: fbi, args: [3]}]")
    done = run(root, "doit", "wasm:fib.test")
    assert done.returncode != 0
    assert "wasm test fib: no exported function 'fbi'; did you mean 'fib'?" in done.stdout
    _swift_guest(root, "[{call: fib, args: []}]")
    done = run(root, "doit", "wasm:fib.test")
    assert "wasm test fib: fib(i32) takes 1 argument, 0 given" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.e2e
def test_componentize_error_is_found_under_a_rust_backtrace(tmp_path: Path, registry: str) -> None:
    root = wasm_project(tmp_path / "repo", registry)
    app = root / "WebAssembly" / "Guest" / "Python" / "app.py"
    app.write_text("import pricing_rules\n" + (SHOWCASE / "Python" / "app.py").read_text())
    commit(root, "broken guest")
    done = run(root, "doit", "wasm:fib-python.compile", env={"RUST_BACKTRACE": "1"})
    assert done.returncode != 0
    failure = next(line for line in done.stdout.splitlines() if "wasm compile fib-python" in line)
    assert failure == (
        "wasm compile fib-python: componentize-py failed (exit 1): "
        "ModuleNotFoundError: No module named 'pricing_rules'"
    )
    assert "backtrace" not in done.stdout.lower()
