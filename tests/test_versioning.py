"""Versions from real git repositories: tags, distance, dirty trees, pre-releases."""

from __future__ import annotations

from pathlib import Path

import pytest

from syntra.versioning import SemVer, derive, read_git
from tests.conftest import commit, git


def _version(root: Path) -> str:
    return derive(read_git(root)).version


def test_exact_tag(project: Path) -> None:
    git(project, "tag", "v1.4.0")
    info = read_git(project)
    assert (info.tag, info.distance, info.dirty) == ("v1.4.0", 0, False)
    assert _version(project) == "1.4.0"


def test_commits_after_a_tag_sort_after_it(project: Path) -> None:
    git(project, "tag", "v1.4.0")
    commit(project, "one")
    sha = commit(project, "two")
    version = _version(project)
    assert version == f"1.4.1-dev.2.g{sha[:7]}"
    assert SemVer.parse("1.4.0") < SemVer.parse(version) < SemVer.parse("1.4.1")  # type: ignore[operator]


def test_after_a_pre_release(project: Path) -> None:
    git(project, "tag", "v2.0.0-rc.1")
    sha = commit(project, "fix")
    version = _version(project)
    assert version == f"2.0.0-rc.1.dev.1.g{sha[:7]}"
    assert SemVer.parse("2.0.0-rc.1") < SemVer.parse(version) < SemVer.parse("2.0.0-rc.2")  # type: ignore[operator]


def test_no_tag_counts_commits(project: Path) -> None:
    sha = commit(project, "second")
    assert _version(project) == f"0.0.0-dev.2.g{sha[:7]}"


def test_dirty_tree_is_marked_even_on_a_tag(project: Path) -> None:
    git(project, "tag", "v1.0.0")
    (project / "syntra.yaml").write_text((project / "syntra.yaml").read_text() + "# edit\n")
    info = read_git(project)
    assert info.dirty
    assert _version(project) == f"1.0.1-dev.0.g{info.short_sha}.dirty"


def test_highest_of_several_tags_on_one_commit(project: Path) -> None:
    for tag in ("v1.2.0-rc.2", "v1.2.0", "not-a-version"):
        git(project, "tag", tag)
    assert _version(project) == "1.2.0"


def test_source_date_epoch_is_the_commit_time(project: Path) -> None:
    commit(project, "later", when=1_750_000_000)
    assert derive(read_git(project)).source_date_epoch == 1_750_000_000


def test_source_date_epoch_from_environment_wins(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1234")
    assert derive(read_git(project)).source_date_epoch == 1234


def test_declared_version_is_used_as_is(project: Path) -> None:
    assert derive(read_git(project), "3.1.4").version == "3.1.4"


def test_outside_git(tmp_path: Path) -> None:
    info = read_git(tmp_path)
    assert info.commit == ""
    assert derive(info).version == "0.0.0-dev.0.gunknown"


def test_remote_is_shown_as_https(project: Path) -> None:
    git(project, "remote", "add", "origin", "git@github.com:acme/shop.git")
    assert read_git(project).remote == "https://github.com/acme/shop"


@pytest.mark.parametrize(
    ("low", "high"),
    [
        ("1.0.0-alpha", "1.0.0-alpha.1"),
        ("1.0.0-alpha.1", "1.0.0-alpha.beta"),
        ("1.0.0-beta.2", "1.0.0-beta.11"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.0.0", "1.0.1"),
        ("1.9.0", "1.10.0"),
    ],
)
def test_semver_precedence(low: str, high: str) -> None:
    assert SemVer.parse(low) < SemVer.parse(high)  # type: ignore[operator]
