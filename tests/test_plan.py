"""The resolved plan: tags, references, labels, matrix — and `syntra plan` output."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from syntra.cli import main
from syntra.config import load
from syntra.plan import build_plan
from tests.conftest import Result, commit, git


def test_plan_json_resolves_every_image_platform_and_tag(
    project: Path, syntra: Callable[..., Result]
) -> None:
    git(project, "tag", "v1.2.3")
    sha = git(project, "rev-parse", "HEAD")
    result = syntra(project, "plan", "--json")
    assert result.code == 0
    plan = json.loads(result.out)
    assert plan["version"] == "1.2.3"
    assert plan["source_date_epoch"] == 1_700_000_000
    image = plan["images"][0]
    assert image["destination"]["tags"] == ["1.2.3", f"sha-{sha[:7]}"]
    assert image["destination"]["refs"] == [
        "127.0.0.1:5000/demo/web:1.2.3",
        f"127.0.0.1:5000/demo/web:sha-{sha[:7]}",
    ]
    assert image["args"] == {"BASE_IMAGE": "127.0.0.1:5000/demo/base:1"}
    assert image["labels"]["org.opencontainers.image.revision"] == sha
    assert image["labels"]["org.opencontainers.image.version"] == "1.2.3"
    assert image["labels"]["org.opencontainers.image.created"] == "2023-11-14T22:13:20Z"
    assert plan["matrix"] == [
        {"image": "web", "platform": "linux/amd64"},
        {"image": "web", "platform": "linux/arm64"},
    ]


def test_tag_templates_and_duplicates(project: Path) -> None:
    text = (project / "syntra.yaml").read_text()
    text += "    tags: ['{{ version }}', '{{ name }}-{{ git.short_sha }}', '{{ version }}']\n"
    text += "    platforms: [linux/arm64, linux/arm/v7]\n"
    (project / "syntra.yaml").write_text(text)
    sha = commit(project, "tags")
    plan = build_plan(load(project / "syntra.yaml", {}))
    image = plan.image("web")
    assert image.destination.tags == [f"0.0.0-dev.2.g{sha[:7]}", f"web-{sha[:7]}"]
    assert [m["platform"] for m in plan.matrix] == ["linux/arm64", "linux/arm/v7"]


def test_no_registry_means_local_only(tmp_path: Path) -> None:
    (tmp_path / "syntra.yaml").write_text("version: 1\nproject: {name: p}\nimages: {x: {}}\n")
    image = build_plan(load(tmp_path / "syntra.yaml", {})).image("x")
    assert image.destination.registry is None
    assert image.destination.refs == []
    assert image.destination.repository == "p/x"


def test_human_plan_lists_images(project: Path, syntra: Callable[..., Result]) -> None:
    result = syntra(project, "plan")
    assert result.code == 0
    assert "linux/arm64" in result.out and "web" in result.out


def test_validate_summary(project: Path, syntra: Callable[..., Result]) -> None:
    result = syntra(project, "validate")
    assert (result.code, result.out) == (
        0,
        "syntra.yaml: ok (1 image, 0 wasm guests, 2 platform builds)\n",
    )


def _tags_of(root: Path) -> list[str]:
    return build_plan(load(root / "syntra.yaml")).images[0].destination.tags


BRANCH_TAGS = (
    "defaults:\n  tags: ['{{ version }}', 'sha-{{ git.short_sha }}', '{{ git.branch }}']\n"
)


def test_a_dirty_tree_moves_no_commit_or_branch_tag(project: Path) -> None:
    (project / "syntra.yaml").write_text((project / "syntra.yaml").read_text() + BRANCH_TAGS)
    commit(project, "branch tags")
    clean = _tags_of(project)
    assert clean[1:] == [f"sha-{git(project, 'rev-parse', '--short=7', 'HEAD')}", "main"]
    (project / "web" / "index.html").write_text("<h1>uncommitted</h1>\n")
    (dirty,) = _tags_of(project)
    assert dirty.endswith(".dirty") and dirty.startswith(clean[0])


def test_detached_head_takes_the_branch_from_github_or_skips_the_tag(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "syntra.yaml").write_text((project / "syntra.yaml").read_text() + BRANCH_TAGS)
    commit(project, "branch tags")
    git(project, "checkout", "-q", "--detach", "HEAD")
    for name in ("GITHUB_HEAD_REF", "GITHUB_REF_NAME", "GITHUB_REF_TYPE"):
        monkeypatch.delenv(name, raising=False)
    skipped = "defaults.tags.2: '{{ git.branch }}' renders empty here: skipped (for images 'web')"
    plan = build_plan(load(project / "syntra.yaml"))
    assert len(plan.images[0].destination.tags) == 2  # no branch: that tag is skipped
    assert plan.warnings == [skipped]  # returned with the plan, printed by no core module
    assert capsys.readouterr().err == ""
    assert main(["--file", str(project / "syntra.yaml"), "validate"]) == 0
    assert capsys.readouterr().err == skipped + "\n"  # the command line says it, once
    monkeypatch.setenv("GITHUB_REF_TYPE", "branch")
    monkeypatch.setenv("GITHUB_REF_NAME", "release-2")
    assert _tags_of(project)[-1] == "release-2"
    monkeypatch.setenv("GITHUB_HEAD_REF", "feature-x")  # a pull request's source branch
    assert _tags_of(project)[-1] == "feature-x"
