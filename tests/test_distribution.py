"""Syntra's PyPI name is its own: nothing installs PyPI's `syntra` (another project), and
generated workflows install the exact version that generated them."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from syntra.ci import workflows
from syntra.config import load
from syntra.errors import SyntraError
from syntra.plan import build_plan
from syntra.version import DISTRIBUTION, VERSION, pinned_install
from tests.conftest import MINIMAL, REPO

STRANGER = re.compile(r"pip3? install (?:-\S+ )*['\"]?syntra(?![-_.\w])")


def test_the_distribution_is_ours_and_pyproject_agrees() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["name"] == DISTRIBUTION == "syntra-build"
    assert project["scripts"] == {"syntra": "syntra.cli:main"}


def test_no_file_installs_pypis_syntra() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    found = [
        f"{name}:{number}"
        for name in tracked
        if (REPO / name).is_file() and not name.startswith("tests/")
        for number, line in enumerate((REPO / name).read_text(errors="replace").splitlines(), 1)
        if STRANGER.search(line)
    ]
    assert not found


def test_workflows_install_the_exact_version_that_generated_them(project: Path) -> None:
    loaded = load(project / "syntra.yaml")
    rendered = "".join(g.text for g in workflows.render(loaded, build_plan(loaded)))
    assert f"SYNTRA_INSTALL: pip install syntra-build=={VERSION}\n" in rendered
    assert not STRANGER.search(rendered)


def test_a_development_build_asks_for_ci_install(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PyPI has no development build: guessing a version would install nothing (or
    somebody else's), so the workflows need `ci.install`."""
    assert pinned_install("0.2.0") == "pip install syntra-build==0.2.0"
    for version in ("0.2.0.dev0", "0.2.0rc1", "0.2.0+g1234"):
        assert pinned_install(version) is None
    monkeypatch.setattr(workflows, "pinned_install", lambda: None)
    monkeypatch.setattr(workflows, "installed_version", lambda: "0.2.0.dev0")
    loaded = load(project / "syntra.yaml")
    with pytest.raises(SyntraError) as refused:
        workflows.render(loaded, build_plan(loaded))
    assert str(refused.value).startswith(
        "syntra.yaml: ci.install: this Syntra is a development build (0.2.0.dev0)"
    )
    (project / "syntra.yaml").write_text(MINIMAL + "ci: {install: pip install ./syntra}\n")
    loaded = load(project / "syntra.yaml")
    rendered = "".join(g.text for g in workflows.render(loaded, build_plan(loaded)))
    assert "SYNTRA_INSTALL: pip install ./syntra\n" in rendered
