"""Builder selection, and the buildx backend against a recording docker stand-in.

No Docker engine runs here, so buildx is checked by its exact command line and
environment; its OCI layout then goes through the same publisher as podman's.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from syntra.config import load
from syntra.errors import SyntraError
from syntra.image import build
from syntra.image.build import BuildRequest
from syntra.image.build.buildx import Buildx
from syntra.image.build.podman import Podman
from syntra.paths import build_dir
from syntra.plan import build_plan
from tests.conftest import REPO, run
from tests.support.projects import make_project

STANDINS = REPO / "tests" / "standins"


def _path_with(tmp_path: Path, *programs: str) -> str:
    """A PATH holding only the named programs (symlinked from where they are)."""
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for program in programs:
        found = STANDINS / program if (STANDINS / program).exists() else shutil.which(program)
        if program == "python3":  # the stand-ins' interpreter, not a shim needing more PATH
            found = sys.executable
        assert found, program
        (folder / program).symlink_to(found)
    return str(folder)


def test_nothing_installed_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path))
    with pytest.raises(SyntraError) as caught:
        build.select("auto")
    assert str(caught.value) == (
        "no image builder found: install podman (apt-get install podman) "
        "or docker with buildx and a running engine"
    )


def test_docker_client_without_engine_is_not_buildx(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, "docker", "podman", "python3"))
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "log"))
    (tmp_path / "bin" / "docker").unlink()
    (tmp_path / "bin" / "docker").symlink_to(shutil.which("docker") or "/usr/bin/docker")
    assert build.select("auto")[0].name == "podman"
    with pytest.raises(SyntraError, match="builder 'buildx' is not usable here"):
        build.select("buildx")


def test_auto_prefers_buildx_when_an_engine_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", _path_with(tmp_path, "docker", "podman", "python3"))
    monkeypatch.setenv("STANDIN_LOG", str(tmp_path / "log"))
    assert build.select("auto")[0].name == "buildx"
    assert build.select("podman")[0].name == "podman"


def _request(root: Path, layout: Path) -> BuildRequest:
    loaded = load(root / "syntra.yaml", {"APP_TOKEN": "unused"})
    image = build_plan(loaded).image("app")
    return BuildRequest(
        image=image,
        platform="linux/arm64",
        root=root,
        source_date_epoch=1_700_000_000,
        args={"BASE_IMAGE": "reg.example/base@sha256:" + "a" * 64, "GREETING": "hello"},
        layout=layout,
        log=root / "build.log",
        insecure_pull=True,
    )


def test_buildx_and_podman_share_every_flag_they_both_have(tmp_path: Path) -> None:
    root = make_project(
        tmp_path / "repo",
        "127.0.0.1:5000",
        "127.0.0.1:5000/base:1",
        "    target: final\n    secrets: [{id: token, env: APP_TOKEN}]\n",
    )
    request = _request(root, tmp_path / "layout")
    buildx, podman = Buildx().argv(request), Podman().argv(request)
    shared = [
        "--platform", "linux/arm64",
        "--file", f"{root}/ContainerSpecs/app/Dockerfile",
        "--build-arg", "BASE_IMAGE=reg.example/base@sha256:" + "a" * 64,
        "--build-arg", "GREETING=hello",
        *[item for label in request.image.labels.items() for item in ("--label", "=".join(label))],
        "--target", "final",
        "--secret", "id=token,env=APP_TOKEN",
    ]  # fmt: skip
    assert buildx == [
        shutil.which("docker") or "docker", "buildx", "build", *shared,
        "--provenance=false", "--sbom=false",
        "--output", f"type=oci,dest={tmp_path}/layout,tar=false,rewrite-timestamp=true",
        "--progress", "plain", f"{root}/app",
    ]  # fmt: skip
    assert podman == [
        shutil.which("podman"), "build", *shared,
        "--isolation", "chroot", "--timestamp", "1700000000",
        "--iidfile", f"{tmp_path}/layout.iid", "--tls-verify=false", f"{root}/app",
    ]  # fmt: skip
    assert "unused" not in " ".join(buildx + podman)


@pytest.mark.e2e
def test_buildx_build_through_the_standin_is_published(
    tmp_path: Path, registry: str, base: str
) -> None:
    """podman builds the layouts once; the buildx stand-in then hands them out."""
    root = make_project(tmp_path / "repo", registry, base, "    repository: tests/buildx\n")
    built = run(root, "syntra", "build", "app", "--builder", "podman")
    assert built.returncode == 0, built.stderr
    by_podman = json.loads(built.stdout)
    layouts = tmp_path / "layouts"
    shutil.copytree(build_dir(root, "app"), layouts)
    log = tmp_path / "calls.jsonl"
    outputs = []
    for platform in ("linux/amd64", "linux/arm64"):
        env = {
            "PATH": f"{STANDINS}:{os.environ['PATH']}",
            "STANDIN_LOG": str(log),
            "STANDIN_LAYOUT": str(layouts / platform.replace("/", "-")),
        }
        done = run(root, "syntra", "build", "app", "--builder", "buildx", "--platform", platform,
                   "--push-by-digest", env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs.append(json.loads(done.stdout))
    merged = run(root, "syntra", "merge", "app")
    assert json.loads(merged.stdout)["digest"] == by_podman["digest"]
    builds = [json.loads(line) for line in log.read_text().splitlines()]
    builds = [call for call in builds if call["argv"][:2] == ["buildx", "build"]]
    assert [call["argv"][call["argv"].index("--platform") + 1] for call in builds] == [
        "linux/amd64",
        "linux/arm64",
    ]
    assert {call["epoch"] for call in builds} == {str(by_podman["source_date_epoch"])}
