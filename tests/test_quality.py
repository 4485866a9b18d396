"""The code base stays ruff-clean, ruff-formatted and mypy --strict clean."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import PYTHON, REPO

CHECKS = {
    "ruff check": [PYTHON, "-m", "ruff", "check", "src", "tests", "bench", "dodo.py"],
    "ruff format": [PYTHON, "-m", "ruff", "format", "--check", "src", "tests", "bench", "dodo.py"],
    "mypy": [PYTHON, "-m", "mypy"],
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_clean(name: str) -> None:
    done = subprocess.run(CHECKS[name], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
