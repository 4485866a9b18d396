"""Shared fixtures: throwaway repositories with real git, and the CLI run in-process."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from syntra.cli import main
from syntra.paths import STATE_DIR
from tests.unit_lane import in_unit_lane

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

MINIMAL = """\
version: 1
project:
  name: demo
registries:
  local:
    url: 127.0.0.1:5000
    insecure: true
images:
  web:
    context: web
    base: 127.0.0.1:5000/demo/base:1
    vars:
      copy: [{src: index.html, dest: /srv/}]
"""


@dataclass
class Result:
    code: int
    out: str
    err: str


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, env=env
    )
    return done.stdout.strip()


def commit(root: Path, message: str = "change", when: int = 1_700_000_000) -> str:
    git(root, "add", "-A")
    stamp = f"@{when} +0000"
    os.environ["GIT_COMMITTER_DATE"] = stamp
    try:
        git(root, "commit", "-q", "--allow-empty", "-m", message, "--date", stamp)
    finally:
        del os.environ["GIT_COMMITTER_DATE"]
    return git(root, "rev-parse", "HEAD")


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A committed repository with one templated image."""
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("<h1>hi</h1>\n")
    (tmp_path / "syntra.yaml").write_text(MINIMAL)
    (tmp_path / ".gitignore").write_text(f"{STATE_DIR}/\n")
    git(tmp_path, "init", "-q", "-b", "main")
    commit(tmp_path, "initial")
    return tmp_path


@pytest.fixture
def syntra(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """Run the CLI in-process in a directory; any traceback fails the test by itself."""

    def run(cwd: Path, *argv: str) -> Result:
        monkeypatch.chdir(cwd)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(argv))
        return Result(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture(autouse=True)
def _no_source_date_epoch(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    yield


# Images: a real registry, an isolated podman store and a busybox base, per session.

SCHEMAS = REPO / "tests" / "schemas"
BUSYBOX = {
    arch: REPO / ".cache" / "busybox" / arch / "bin" / "busybox" for arch in ("amd64", "arm64")
}


@pytest.fixture(scope="session")
def registry() -> Iterator[str]:
    from syntra.registry.local import serve

    with serve() as address:
        yield address


def podman_store(folder: Path) -> dict[str, str]:
    """Environment that gives podman its own image store and its own state under `folder`,
    so resetting it touches nothing else (podman's default tmp_dir is the shared
    /run/libpod)."""
    folder.mkdir(parents=True, exist_ok=True)
    storage = folder / "storage.conf"
    storage.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{folder}/graph"\nrunroot = "{folder}/run"\n'
    )
    engine = folder / "containers.conf"
    engine.write_text(f'[engine]\ntmp_dir = "{folder}/tmp"\n')
    return {"CONTAINERS_STORAGE_CONF": str(storage), "CONTAINERS_CONF": str(engine)}


def reset_store(env: dict[str, str]) -> None:
    """Remove a store's images and unmount its layers, so its folder can be deleted."""
    subprocess.run(
        ["podman", "system", "reset", "--force"],
        env={**os.environ, **env},
        capture_output=True,
        check=True,
    )


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    env = podman_store(tmp_path_factory.mktemp("podman"))
    previous = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    yield env
    reset_store(env)
    for name, value in previous.items():
        if value is None:
            del os.environ[name]
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def base(registry: str, store: dict[str, str]) -> str:
    from tests.support.bases import seed_busybox

    return seed_busybox(registry, BUSYBOX, "fixtures/busybox", "1.36")


def run(
    cwd: Path, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A Python module (doit, syntra) in `cwd`, as a user runs it."""
    shutil.copy(REPO / "dodo.py", cwd / "dodo.py")
    return subprocess.run(
        [PYTHON, "-m", *argv],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), **(env or {})},
    )


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=True)
    return done.stdout


def ran(output: str) -> list[str]:
    """The doit tasks that did work, in order, not the up-to-date ones (`preflight` is
    one of them: it runs when what it checks changed)."""
    return [line[3:] for line in output.splitlines() if line.startswith(".  ")]


@pytest.fixture
def screenshot(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Path]:
    """Where a browser test saves its page: under tmp_path with the test's output, then
    copied to .syntra/screenshots/<test>/ (git-ignored), where it outlives the run."""
    shot = tmp_path / "page.png"
    kept = REPO / STATE_DIR / "screenshots" / request.node.name / "page.png"
    print(f"screenshot: {shot} (kept: {kept})")
    yield shot
    if shot.is_file():
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, kept)


# The suite runs on two xdist workers, a file per worker at a time (pyproject's addopts):
# the longest files start first, so no long file starts last and runs alone.
LONGEST_FIRST = ("test_up", "test_registry", "test_supply", "test_images", "test_wasm",
                 "test_release", "test_install", "test_plugins", "test_container")  # fmt: skip


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:  # the unit lane: tests/unit_lane.py names them
        if in_unit_lane(item.path.name, item.name) and item.get_closest_marker("e2e") is None:
            item.add_marker(pytest.mark.unit)

    def rank(item: pytest.Item) -> int:
        stem = item.path.stem
        return LONGEST_FIRST.index(stem) if stem in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests keep their order


class SubprocessInUnitLane(AssertionError):
    """A test marked `unit` started another program: it belongs in the fast lane."""


@pytest.fixture(autouse=True)
def _unit_lane_runs_no_program(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test marked `unit` fails the moment it starts another program (git, podman, a
    registry, a doit run): every spawn goes through `subprocess.Popen._execute_child`,
    `os.posix_spawn` or `os.fork`, and here each of them raises."""
    if request.node.get_closest_marker("unit") is None:
        return

    def refuse(*args: object, **kwargs: object) -> None:
        raise SubprocessInUnitLane(f"{request.node.nodeid}: the unit lane starts no program")

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)
    for name in ("posix_spawn", "posix_spawnp", "fork", "system"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, refuse)
