"""The doit task graph, run as users run it: `python -m doit` in a repository."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from syntra.paths import doit_state
from tests.conftest import PYTHON, REPO, ran


def doit(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(REPO / "dodo.py", root / "dodo.py")
    return subprocess.run(
        [PYTHON, "-m", "doit", *args],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )


def test_list_shows_the_stages(project: Path) -> None:
    done = doit(project, "list")
    assert done.returncode == 0
    assert [line.split()[0] for line in done.stdout.splitlines()] == [
        "ci",
        "container",
        "docker",
        "preflight",
        "release",
        "render",
        "supply",
        "wasm",
    ]


def test_a_dodo_py_of_an_earlier_version_still_runs(project: Path) -> None:
    """`syntra init` once wrote `from syntra.tasks import *`: the same graph answers."""
    (project / "dodo.py").write_text("from syntra.tasks import *  # noqa: F403\n")
    done = subprocess.run(
        [PYTHON, "-m", "doit", "list"],
        cwd=project,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert done.returncode == 0, done.stderr
    assert "preflight" in done.stdout.split() and "supply" in done.stdout.split()


def test_second_run_does_nothing(project: Path) -> None:
    first = doit(project, "render")
    assert first.returncode == 0, first.stderr
    assert ran(first.stdout) == ["render:web", "render:stale"]
    assert (project / "ContainerSpecs" / "web" / "Dockerfile").is_file()
    second = doit(project, "render")
    assert second.returncode == 0
    assert ran(second.stdout) == []
    assert "-- render:web" in second.stdout
    assert (doit_state(project)).is_file()
    assert not list(project.glob(".doit*"))


def test_changes_rerender_only_what_they_touch(project: Path) -> None:
    text = (project / "syntra.yaml").read_text()
    text += "  api:\n    context: web\n"
    (project / "syntra.yaml").write_text(text)
    assert doit(project, "render").returncode == 0
    (project / "syntra.yaml").write_text(text.replace("dest: /srv/", "dest: /www/"))
    assert ran(doit(project, "render").stdout) == ["render:web"]
    (project / "templates").mkdir()
    (project / "templates" / "extra.j2").write_text("FROM scratch\n")
    assert sorted(ran(doit(project, "render").stdout)) == ["render:api", "render:web"]


def test_deleted_spec_is_rendered_again(project: Path) -> None:
    assert doit(project, "render").returncode == 0
    (project / "ContainerSpecs" / "web" / "Containerfile").unlink()
    assert ran(doit(project, "render").stdout) == ["render:web"]
    assert (project / "ContainerSpecs" / "web" / "Containerfile").is_file()


def test_parallel_run(project: Path) -> None:
    text = (project / "syntra.yaml").read_text()
    for name in ("a", "b", "c"):
        text += f"  {name}:\n    context: web\n"
    (project / "syntra.yaml").write_text(text)
    done = doit(project, "-n", "2", "render")
    assert done.returncode == 0, done.stderr
    assert len(list(project.glob("ContainerSpecs/*/Dockerfile"))) == 4
    assert ran(doit(project, "-n", "2", "render").stdout) == []


def test_bad_config_stops_doit_with_one_line(project: Path) -> None:
    (project / "syntra.yaml").write_text(
        (project / "syntra.yaml").read_text().replace("insecure: true", "insecure: 2x")
    )
    done = doit(project, "render")
    assert done.returncode == 2
    assert done.stderr == (
        "syntra.yaml:7:15: registries.local.insecure: expected true or false, got '2x'\n"
    )


def test_failure_names_stage_and_image(project: Path) -> None:
    (project / "templates").mkdir()
    (project / "templates" / "default.j2").write_text("FROM {{ image.bse }}\n")
    done = doit(project, "render")
    assert done.returncode != 0
    assert "render web: templates/default.j2:1: 'bse' is undefined" in (done.stdout + done.stderr)
    assert "Traceback" not in done.stdout + done.stderr
