"""Syntra as a user gets it: the sdist and wheel built as PyPI would, the wheel installed
alone into a fresh virtualenv outside the checkout, and the README's first run there."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from syntra.version import DISTRIBUTION, VERSION
from tests.conftest import REPO, git

pytestmark = pytest.mark.e2e

WHEEL = f"{DISTRIBUTION.replace('-', '_')}-{VERSION}-py3-none-any.whl"
SDIST = f"{DISTRIBUTION.replace('-', '_')}-{VERSION}.tar.gz"


def build(*args: str, source: Path = REPO, out: Path) -> None:
    """`python -m build`, with its own isolated build environment, as a release is built."""
    epoch = git(REPO, "log", "-1", "--format=%ct").strip()
    env = {**os.environ, "SOURCE_DATE_EPOCH": epoch}
    argv = [sys.executable, "-m", "build", *args, "--outdir", str(out), str(source)]
    done = subprocess.run(argv, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel built from it (what `python -m build` does by default)."""
    out = tmp_path_factory.mktemp("dist")
    build(out=out)
    assert {p.name for p in out.iterdir()} == {WHEEL, SDIST}
    return out


def contents(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_wheel_carries_every_file_of_the_package(dist: Path) -> None:
    """Templates, the web templates, the C shim and py.typed: everything git has under
    src/syntra, nothing of the tests or the checkout."""
    tracked = git(REPO, "ls-files", "src/syntra").split()
    wanted = {path.removeprefix("src/") for path in tracked}
    info = f"{WHEEL.removesuffix('-py3-none-any.whl')}.dist-info/"
    carried = contents(dist / WHEEL)
    assert {name for name in carried if not name.startswith(info)} == wanted
    assert f"Name: {DISTRIBUTION}\n".encode() in carried[f"{info}METADATA"]
    assert b"syntra = syntra.cli:main" in carried[f"{info}entry_points.txt"]


def test_the_sdist_rebuilds_the_same_wheel(dist: Path, tmp_path: Path) -> None:
    build("--wheel", out=tmp_path)
    assert contents(tmp_path / WHEEL) == contents(dist / WHEEL)


def readme_first_run() -> tuple[str, str, list[str]]:
    """The README's first run: the set-up script, the guest's YAML, the commands after."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## A first run", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(\w+)\n(.*?)```", section, re.S)
    assert [kind for kind, _ in blocks] == ["sh", "yaml", "sh"], blocks
    return blocks[0][1], blocks[1][1], blocks[2][1].strip().splitlines()


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh virtualenv with only the wheel installed (and what it depends on, from PyPI)."""
    folder = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
    pip = [str(folder / "bin" / "python"), "-m", "pip", "install", "-q"]
    done = subprocess.run(
        [*pip, "--disable-pip-version-check", str(dist / WHEEL)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    yield folder


def test_the_installed_wheel_runs_the_readme_first_run(venv: Path, tmp_path: Path) -> None:
    home = tmp_path / "user"
    home.mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "SYNTRA"))
    }
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"

    def sh(script: str, cwd: Path) -> str:
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, f"{script}\n{done.stdout}{done.stderr}"
        assert "Traceback" not in done.stderr
        return done.stdout

    assert sh("syntra --version", home).strip() == f"syntra {VERSION}"
    where = sh("python -c 'import syntra; print(syntra.__file__)'", home)
    assert where.startswith(str(venv)), where

    setup, guest, commands = readme_first_run()
    said = sh(setup, home)
    assert "wrote syntra.yaml" in said
    hello = home / "hello"
    config = (hello / "syntra.yaml").read_text()
    top = re.search(r"^wasm:.*\n(?: .*\n|\n)*", config, re.M)
    assert top, config
    (hello / "syntra.yaml").write_text(config[: top.start()] + guest + config[top.end() :])

    runs: list[str] = []
    for line in commands:
        command, _, comment = line.partition("#")
        runs.append(sh(command, hello))
        if command.startswith("syntra validate"):
            assert runs[-1].strip() == comment.strip()
    first, second = runs[-2], runs[-1]
    assert [line for line in first.splitlines() if line.startswith(".  ")]
    assert second.strip() and all(line.startswith("-- ") for line in second.splitlines()), second
    assert (hello / "dist" / "snapshot" / "fib.wasm").read_bytes().startswith(b"\0asm")
