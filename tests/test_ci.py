"""Generated GitHub Actions workflows: valid against GitHub's schema, matrix == plan."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from syntra.config import load
from syntra.plan import build_plan
from tests.conftest import REPO, SCHEMAS, Result

WORKFLOWS = ["docker.yml", "macos_container.yml", "release.yml", "wasm.yml"]


def _workflow(root: Path, name: str) -> dict:  # type: ignore[type-arg]
    data: dict = YAML(typ="safe").load((root / ".github" / "workflows" / name).read_text())  # type: ignore[type-arg]
    return data


@pytest.mark.parametrize("name", WORKFLOWS)
def test_showcase_workflows_validate_against_the_schema(name: str) -> None:
    schema = json.loads((SCHEMAS / "github" / "github-workflow.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert list(validator.iter_errors(_workflow(REPO, name))) == []
    text = (REPO / ".github" / "workflows" / name).read_text()
    assert text.startswith("# Generated from syntra.yaml by `syntra ci` — do not edit.\n")


def test_schema_catches_a_broken_workflow() -> None:
    schema = json.loads((SCHEMAS / "github" / "github-workflow.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    broken = _workflow(REPO, "docker.yml")
    broken["jobs"]["build"]["runs-on"] = 42
    assert list(validator.iter_errors(broken))


def test_matrix_is_the_plan() -> None:
    plan = build_plan(load(REPO / "syntra.yaml"))
    include = _workflow(REPO, "docker.yml")["jobs"]["build"]["strategy"]["matrix"]["include"]
    assert [{"image": e["image"], "platform": e["platform"]} for e in include] == plan.matrix
    assert {e["platform"]: e["runner"] for e in include} == {
        "linux/amd64": "ubuntu-24.04",
        "linux/arm64": "ubuntu-24.04-arm",
    }
    merge = _workflow(REPO, "docker.yml")["jobs"]["merge"]["strategy"]["matrix"]["image"]
    assert merge == [image.name for image in plan.images]


def test_least_privilege_and_secrets_only_in_env() -> None:
    for name in WORKFLOWS:
        workflow = _workflow(REPO, name)
        assert workflow["permissions"] == {"contents": "read"}
        for job_name, job in workflow["jobs"].items():
            wants_oidc = job.get("permissions", {}).get("id-token") == "write"
            assert wants_oidc == (name == "docker.yml" and job_name == "supply")
            for step in job["steps"]:
                assert "secrets." not in step.get("run", "")
            passphrase = "SYNTRA_KEY_PASSPHRASE" in job.get("env", {})
            assert passphrase == (job_name == "supply")


def test_committed_workflows_are_current(syntra: Callable[..., Result]) -> None:
    result = syntra(REPO, "ci", "--check")
    assert result.code == 0, result.out


def test_pins_drift_and_rerender(project: Path, syntra: Callable[..., Result]) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    text = (project / "syntra.yaml").read_text()
    (project / "syntra.yaml").write_text(text + f"ci:\n  actions: {{actions/checkout: {sha}}}\n")
    assert syntra(project, "ci").code == 0
    first = {n: (project / ".github/workflows" / n).read_bytes() for n in WORKFLOWS}
    assert f"actions/checkout@{sha}".encode() in first["docker.yml"]
    assert b"actions/setup-python@v5" in first["docker.yml"]
    assert syntra(project, "ci").out == ""
    assert {n: (project / ".github/workflows" / n).read_bytes() for n in WORKFLOWS} == first
    (project / "syntra.yaml").write_text(text + "  api:\n    context: web\n")
    drift = syntra(project, "ci", "--check")
    assert drift.code == 1
    assert "+          - image: api\n" in drift.out
