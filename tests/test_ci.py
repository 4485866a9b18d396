"""Generated GitHub Actions workflows: valid against GitHub's schema, clean under zizmor
(offline, default persona) and actionlint with shellcheck, matrices within GitHub's
limits, and their shell steps run here."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from syntra.ci import workflows as ci
from syntra.ci.workflows import DEFAULT_ACTIONS, PULL_REQUEST
from syntra.config import load
from syntra.plan import build_plan
from tests.conftest import REPO, SCHEMAS, Result, commit, git

BIN = Path(sys.executable).parent


def _workflow(root: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(
        (root / ".github" / "workflows" / name).read_text()
    )
    return data


def _validator() -> Any:
    schema = json.loads((SCHEMAS / "github" / "github-workflow.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


FEATURES = """\
version: 1
project: {name: shop}
registries:
  staging:
    url: staging.example.com/shop
    credentials: {username_env: STAGING_USER, password_env: STAGING_TOKEN}
  prod:
    url: ghcr.io/acme
    credentials: {username_env: GHCR_USER, password_env: GHCR_TOKEN}
defaults:
  registry: staging
  tags: ["{{ version }}", "sha-{{ git.short_sha }}", "{{ git.branch }}"]
  cache: {registry: staging, repository: shop/cache}
images:
  web:
    context: web
    secrets: [{id: mirror, env: MIRROR_TOKEN}, {id: npmrc, src: web/npmrc}]
    plugins: [rules]
  api: {context: api, registry: prod}
  worker: {context: api, registry: prod, platforms: [linux/amd64]}
wasm:
  rules: {language: swift, source: rules, registry: prod}
  pricing: {language: python, source: pricing, world: pricing, registry: prod}
supply_chain:
  sbom: [spdx-json, cyclonedx-json]
  signing: SIGNING
ci:
  variables: [DEPLOY_ENV]
"""
KEY = "{mode: key, key: keys/cosign.key}"
KEYLESS = "{mode: keyless, identity: 'https://github\\\\.com/acme/shop/.*'}"


def _repository(root: Path, config: str) -> Path:
    for folder in ("web", "api", "rules", "pricing/wit"):
        (root / folder).mkdir(parents=True)
    (root / "web" / "index.html").write_text("hi\n")
    (root / "web" / "npmrc").write_text("registry=x\n")
    (root / "api" / "index.html").write_text("api\n")
    (root / "rules" / "Rules.swift").write_text("// rules\n")
    (root / "pricing" / "wit" / "p.wit").write_text("package a:b;\nworld pricing {}\n")
    (root / "syntra.yaml").write_text(config)
    git(root, "init", "-q", "-b", "main")
    commit(root, "features")
    return root


def _many(root: Path, count: int) -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "index.html").write_text("hi\n")
    images = "".join(f"  img{n}: {{context: app}}\n" for n in range(count))
    (root / "syntra.yaml").write_text(
        "version: 1\nproject: {name: big}\nregistries: {r: {url: registry.example.com}}\n"
        f"images:\n{images}"
    )
    git(root, "init", "-q", "-b", "main")
    commit(root, "many")
    return root


def _lint(root: Path) -> None:
    """zizmor (offline, default persona) and actionlint with shellcheck: no finding."""
    assert shutil.which("shellcheck"), "run .ci/setup: actionlint checks scripts with shellcheck"
    folder = root / ".github" / "workflows"
    zizmor = subprocess.run([str(BIN / "zizmor"), "--offline", "--no-progress", str(folder)],
                            capture_output=True, text=True, check=False)  # fmt: skip
    assert zizmor.returncode == 0 and "No findings" in zizmor.stdout, zizmor.stdout
    actionlint = subprocess.run([str(BIN / "actionlint"), *sorted(map(str, folder.glob("*.yml")))],
                                capture_output=True, text=True, check=False)  # fmt: skip
    assert actionlint.returncode == 0 and actionlint.stdout == "", actionlint.stdout
    for path in folder.glob("*.yml"):
        assert list(_validator().iter_errors(_workflow(root, path.name))) == []


@pytest.mark.parametrize("signing", [KEY, KEYLESS])
def test_every_feature_lints_clean(
    tmp_path: Path, syntra: Callable[..., Result], signing: str
) -> None:
    root = _repository(tmp_path, FEATURES.replace("SIGNING", signing))
    done = syntra(root, "ci")
    assert done.code == 0, done.err
    assert sorted(p.name for p in (root / ".github" / "workflows").iterdir()) == [
        "docker.yml", "lock.yml", "macos_container.yml",
    ]  # fmt: skip
    _lint(root)
    docker = _workflow(root, "docker.yml")
    jobs = docker["jobs"]
    assert docker["permissions"] == {}
    oidc = {name for name, job in jobs.items() if job["permissions"].get("id-token")}
    assert oidc == ({"supply"} if "keyless" in signing else set())
    for name, job in jobs.items():
        uses = [step["uses"] for step in job["steps"] if "uses" in step]
        assert all(len(u.split("@")[1]) == 40 for u in uses), uses
        assert all(
            step.get("with", {}).get("persist-credentials") is False
            for step in job["steps"]
            if step.get("uses", "").startswith("actions/checkout@")
        )
        assert not any("cache" in u for u in uses)
        scripts = " ".join(step.get("run", "") for step in job["steps"])
        assert "secrets." not in scripts and "${{" not in scripts
        secrets = " ".join(json.dumps(step.get("env", {})) for step in job["steps"])
        pull_request = [s for s in job["steps"] if s.get("if") == PULL_REQUEST]
        if name.startswith(("test-", "wasm-check")):
            pull_request = job["steps"]
        assert "secrets." not in json.dumps([s.get("env", {}) for s in pull_request]), name
        if "SYNTRA_KEY_PASSPHRASE" in secrets:
            assert name == "supply"
    # Build secrets reach the build step, and only it.
    build = jobs["build-0"]["steps"]
    assert any(step.get("env", {}).get("MIRROR_TOKEN") == "${{ secrets.MIRROR_TOKEN }}"
               for step in build)  # fmt: skip
    # Pull requests: contents: read only, nothing pushed.
    for name in ("test-0", "wasm-check"):
        assert dict(jobs[name]["permissions"]) == {"contents": "read"}
    assert "syntra test" in jobs["test-0"]["steps"][-1]["run"]
    # The layer cache: read by pull requests (no login, so forks cannot write it), read
    # and written by the build jobs through the registry's login.
    assert jobs["test-0"]["steps"][-1]["env"]["SYNTRA_LAYER_CACHE"] == "read"
    build_step = next(s for s in jobs["build-0"]["steps"] if "syntra build" in s.get("run", ""))
    assert "SYNTRA_LAYER_CACHE" not in build_step["env"] and "STAGING_TOKEN" in build_step["env"]
    assert "release" in jobs and "workflow_run" not in json.dumps(docker["on"])
    # Apple's container: on demand only (never racing the pipeline), no image with plugins.
    mac = _workflow(root, "macos_container.yml")
    assert list(mac["on"]) == ["workflow_dispatch"]
    build = mac["jobs"]["container"]["steps"][-1]
    assert build["env"]["IMAGES"] == "api worker"  # names reach the script through env
    assert build["run"] == (
        'for image in $IMAGES; do syntra build "$image" --builder container; done\n'
    )


def test_every_run_checks_the_lock_and_a_scheduled_one_updates_it(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    root = _repository(tmp_path, FEATURES.replace("SIGNING", KEY))
    assert syntra(root, "ci").code == 0
    plan = _workflow(root, "docker.yml")["jobs"]["plan"]["steps"]
    check = next(step for step in plan if step.get("name") == "syntra.lock matches syntra.yaml")
    assert check == {
        "name": "syntra.lock matches syntra.yaml",
        "if": "hashFiles('syntra.lock') != ''",
        "run": "syntra lock --check --offline",
    }
    assert plan.index(check) < next(i for i, s in enumerate(plan) if s.get("id") == "changed")
    lock = _workflow(root, "lock.yml")
    assert set(lock["on"]) == {"schedule", "workflow_dispatch"}
    assert lock["permissions"] == {}
    job = lock["jobs"]["lock"]
    assert dict(job["permissions"]) == {"contents": "write", "pull-requests": "write"}
    assert job["steps"][-2]["run"] == "syntra lock --update"
    publish = job["steps"][-1]
    assert publish["env"] == {"GH_TOKEN": "${{ github.token }}"}
    assert (
        "git push --force" in publish["run"] and "gh pr create --head syntra-lock" in publish["run"]
    )
    _lint(root)


def test_showcase_workflows_lint_clean_and_are_current(syntra: Callable[..., Result]) -> None:
    assert syntra(REPO, "ci", "--check").code == 0
    _lint(REPO)
    text = (REPO / ".github" / "workflows" / "docker.yml").read_text()
    assert text.startswith("# Generated from syntra.yaml by `syntra ci` — do not edit.\n")
    for action, (sha, version) in DEFAULT_ACTIONS.items():
        if action in text:
            assert f"{action}@{sha}  # {version}" in text


def test_schema_catches_a_broken_workflow() -> None:
    broken = _workflow(REPO, "docker.yml")
    broken["jobs"]["build-0"]["runs-on"] = 42
    assert list(_validator().iter_errors(broken))


def test_five_hundred_images_stay_within_githubs_matrix_limit(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    root = _many(tmp_path, 500)
    assert syntra(root, "ci").code == 0
    jobs = _workflow(root, "docker.yml")["jobs"]
    assert sorted(name for name in jobs if name.startswith("build-")) == [
        f"build-{k}" for k in range(4)
    ]
    _lint(root)
    planned = syntra(root, "plan", "--matrix", "--json")
    chunks = json.loads(planned.out)["chunks"]
    assert [len(chunk) for chunk in chunks] == [256, 256, 256, 232]
    assert chunks[0][0] == {"image": "img0", "platform": "linux/amd64", "slug": "linux-amd64",
                            "runner": "ubuntu-24.04"}  # fmt: skip


def test_plan_step_writes_the_chunks_github_reads(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    """The plan job's shell step, run as GitHub runs it (with `bash -e`)."""
    root = _many(tmp_path / "repo", 3)
    assert syntra(root, "ci").code == 0
    step = next(s for s in _workflow(root, "docker.yml")["jobs"]["plan"]["steps"]
                if s.get("id") == "all")  # fmt: skip
    output = tmp_path / "output"
    env = {**os.environ, "RUNNER_TEMP": str(tmp_path), "GITHUB_OUTPUT": str(output),
           "PATH": f"{BIN}:{os.environ['PATH']}"}  # fmt: skip
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=root, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    name, _, value = output.read_text().strip().partition("=")
    entries = [(e["image"], e["platform"]) for e in json.loads(value)]
    assert name == "chunk-0" and entries == [
        (f"img{n}", p) for n in range(3) for p in ("linux/amd64", "linux/arm64")
    ]


def test_workflows_no_longer_generated_are_removed(
    project: Path, syntra: Callable[..., Result]
) -> None:
    assert syntra(project, "ci").code == 0
    assert (project / ".github" / "workflows" / "docker.yml").exists()
    own = project / ".github" / "workflows" / "lint.yml"
    own.write_text("name: lint\n")  # a workflow of the project's own: left alone
    text = (project / "syntra.yaml").read_text()
    (project / "syntra.yaml").write_text(text[: text.index("images:")])
    stale = syntra(project, "ci", "--check")
    assert stale.code == 1 and "+++ /dev/null" in stale.out
    assert syntra(project, "ci").code == 0
    assert sorted(p.name for p in (project / ".github" / "workflows").iterdir()) == ["lint.yml"]


def test_pins_are_overridden_by_ci_actions(project: Path, syntra: Callable[..., Result]) -> None:
    sha = "0123456789abcdef0123456789abcdef01234567"
    text = (project / "syntra.yaml").read_text()
    (project / "syntra.yaml").write_text(text + f"ci:\n  actions: {{actions/checkout: {sha}}}\n")
    assert syntra(project, "ci").code == 0
    first = (project / ".github/workflows/docker.yml").read_text()
    assert f"actions/checkout@{sha}\n" in first
    assert f"actions/setup-python@{DEFAULT_ACTIONS['actions/setup-python'][0]}  # v6" in first
    assert syntra(project, "ci").out == ""


def test_guests_in_wasi_mode_need_the_sdk_action_pinned(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    root = tmp_path
    (root / "g").mkdir()
    (root / "g" / "Package.swift").write_text("// package\n")
    (root / "syntra.yaml").write_text(
        "version: 1\nproject: {name: w}\nwasm:\n  g: {language: swift, source: g, mode: wasi}\n"
    )
    git(root, "init", "-q", "-b", "main")
    commit(root, "wasi")
    refused = syntra(root, "ci")
    assert refused.code == 2 and refused.err == (
        "ci.actions: swiftwasm/setup-swiftwasm has no pinned commit: "
        "add `swiftwasm/setup-swiftwasm: <full commit SHA>`\n"
    )
    with (root / "syntra.yaml").open("a") as config:
        config.write(f"ci:\n  actions: {{swiftwasm/setup-swiftwasm: {'a' * 40}}}\n")
    assert syntra(root, "ci").code == 0
    assert sorted(p.name for p in (root / ".github" / "workflows").iterdir()) == ["wasm.yml"]
    _lint(root)


def test_matrix_is_the_plan(syntra: Callable[..., Result]) -> None:
    plan = build_plan(load(REPO / "syntra.yaml"))
    planned = json.loads(syntra(REPO, "plan", "--matrix", "--json").out)
    assert [{"image": e["image"], "platform": e["platform"]} for e in planned["matrix"]] == (
        plan.matrix
    )
    assert {e["platform"]: e["runner"] for e in planned["matrix"]} == {
        "linux/amd64": "ubuntu-24.04",
        "linux/arm64": "ubuntu-24.04-arm",
    }


@pytest.mark.parametrize("signing", [KEY, KEYLESS])
def test_a_release_that_promotes_signs_there_and_lints_clean(
    tmp_path: Path, syntra: Callable[..., Result], signing: str
) -> None:
    """`release.promote_to` signs at the other registry: the release job gets what the
    supply job gets for signing, and nothing more when nothing is promoted."""
    config = FEATURES.replace("SIGNING", signing) + "release: {promote_to: [prod]}\n"
    root = _repository(tmp_path, config)
    assert syntra(root, "ci").code == 0
    _lint(root)
    release = _workflow(root, "docker.yml")["jobs"]["release"]
    promote = next(step for step in release["steps"] if step.get("run") == "syntra release")
    if "keyless" in signing:
        assert release["permissions"].get("id-token") == "write"
        assert "SYNTRA_KEY_PASSPHRASE" not in promote["env"]
    else:
        assert "id-token" not in release["permissions"]
        assert promote["env"]["SYNTRA_KEY_PASSPHRASE"] == "${{ secrets.SYNTRA_KEY_PASSPHRASE }}"
        keys = next(step for step in release["steps"] if step.get("name") == "Signing keys")
        assert "SIGNING_KEY" in keys["env"]


def _step(workflow: dict[str, Any], job: str, name: str) -> dict[str, Any]:
    step: dict[str, Any] = next(s for s in workflow["jobs"][job]["steps"] if s.get("name") == name)
    return step


def _bash(step: dict[str, Any], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """A `run:` step as GitHub runs it (`bash -e`), with its `env:` as written (here no
    expression is evaluated: what the script makes of the raw values is the point)."""
    given = {k: str(v) for k, v in step.get("env", {}).items()}
    return subprocess.run(["bash", "-e", "-c", step["run"]], cwd=cwd, capture_output=True,
                          text=True, check=False, env={**os.environ, **given, **env})  # fmt: skip


def _recorder(folder: Path, program: str) -> Path:
    """`program` on PATH, recording its arguments one per line."""
    folder.mkdir(exist_ok=True)
    (folder / program).write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{folder}/{program}.args"\n')
    (folder / program).chmod(0o755)
    return folder / f"{program}.args"


def test_syntra_yaml_values_reach_scripts_only_through_env(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    """Values as odd as validation lets through: the workflows lint clean, and the
    scripts, run with bash, take each value as data: no glob, no redirection."""
    odd = FEATURES.replace("SIGNING", "{mode: key, key: 'keys/my key+@=,.key'}").replace(
        "variables: [DEPLOY_ENV]", "variables: [DEPLOY_ENV]\n  install: pip install x[t]>=1 * <y"
    )
    root = _repository(tmp_path / "repo", odd)
    assert syntra(root, "ci").code == 0
    _lint(root)
    docker = _workflow(root, "docker.yml")
    for job in docker["jobs"].values():
        for step in job["steps"]:
            assert "my key" not in step.get("run", "") and "x[t]" not in step.get("run", "")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    keys = _bash(_step(docker, "supply", "Signing keys"), scratch, SIGNING_KEY="K", PUBLIC_KEY="P")
    assert keys.returncode == 0, keys.stderr
    assert (scratch / "keys" / "my key+@=,.key").read_text() == "K\n"
    assert (scratch / "keys" / "my key+@=,.pub").read_text() == "P\n"
    (scratch / "a").touch()  # something a `*` would expand to
    args = _recorder(tmp_path / "bin", "pip")
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    install = _bash(_step(docker, "plan", "Install Syntra"), scratch, PATH=path)
    assert install.returncode == 0, install.stderr
    assert args.read_text().splitlines() == ["install", "x[t]>=1", "*", "<y"]
    assert sorted(p.name for p in scratch.iterdir()) == ["a", "keys"]


def test_hostile_values_past_validation_are_still_never_run(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    """The generator does not rely on validation: a key path and an install command
    holding `$(…)`, backticks, quotes, a newline and `${{ … }}` (validation refused
    them: see tests/corpus/signing_key_*.yaml), written into workflows all the same,
    lint clean and run without creating the marker."""
    root = _repository(tmp_path / "repo", FEATURES.replace("SIGNING", KEY))
    loaded = load(root / "syntra.yaml")
    hostile = "$(touch pwned)`touch pwned`\"'${{ github.token }}\n; touch pwned #"
    signing = loaded.config.supply_chain.signing.model_copy(update={"key": f"k/{hostile}.key"})
    supply = loaded.config.supply_chain.model_copy(update={"signing": signing})
    ci_settings = loaded.config.ci.model_copy(update={"install": f"pip install {hostile}"})
    config = loaded.config.model_copy(update={"supply_chain": supply, "ci": ci_settings})
    hostile_loaded = dataclasses.replace(loaded, config=config)
    ci.write_workflows(ci.render(hostile_loaded, build_plan(hostile_loaded)), root)
    _lint(root)
    docker = _workflow(root, "docker.yml")
    scripts = [s.get("run", "") for job in docker["jobs"].values() for s in job["steps"]]
    assert not any("pwned" in script or "github.token" in script for script in scripts)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    keys = _bash(_step(docker, "supply", "Signing keys"), scratch, SIGNING_KEY="K", PUBLIC_KEY="P")
    assert keys.returncode == 0, keys.stderr
    args = _recorder(tmp_path / "bin", "pip")
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    assert _bash(_step(docker, "supply", "Install Syntra"), scratch, PATH=path).returncode == 0
    assert args.read_text().splitlines()[:2] == ["install", "$(touch"]
    assert not list(scratch.rglob("pwned")) and not (root / "pwned").exists()
    written = [p for p in scratch.rglob("*.key")]
    assert len(written) == 1 and written[0].read_text() == "K\n"
