"""The registry client as a library: docs/registry.md's Python example, run as written
against a real registry with no syntra.yaml anywhere, and its result read back with
skopeo rather than through Syntra."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO, skopeo

pytestmark = pytest.mark.e2e

EXAMPLE_HOST = "127.0.0.1:5000"


def _example() -> str:
    page = (REPO / "docs" / "registry.md").read_text()
    section = page.split("## From Python, without syntra.yaml", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found, "docs/registry.md: the Python example is missing"
    return found.group(1)


def test_the_documented_example_pushes_without_syntra_yaml(
    registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no syntra.yaml here
    code = _example().replace(EXAMPLE_HOST, registry)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/registry.md", "exec"), {})
    identity, digest, tags = out.getvalue().split(" ", 2)
    assert identity == f"{registry}/demo/notes"
    assert tags.strip() == "['1']"
    raw = skopeo("inspect", "--tls-verify=false", "--raw", f"docker://{registry}/demo/notes:1")
    manifest = json.loads(raw)
    assert manifest["artifactType"] == "text/plain"
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == digest
