"""Rendering ContainerSpecs: headers, overrides, determinism, drift, stale specs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Result, commit, git


def _spec(root: Path, name: str = "Dockerfile") -> str:
    return (root / "ContainerSpecs" / "web" / name).read_text()


def test_builtin_template_renders_both_specs(project: Path, syntra: Callable[..., Result]) -> None:
    result = syntra(project, "render")
    assert result.code == 0
    assert result.out.splitlines() == [
        "rendered ContainerSpecs/web/Dockerfile",
        "rendered ContainerSpecs/web/Containerfile",
    ]
    dockerfile = _spec(project)
    assert dockerfile.startswith(
        "# Dockerfile for images.web, generated from syntra.yaml and template default.j2"
        " — do not edit.\n"
    )
    assert "ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nCOPY index.html /srv/\n" in dockerfile
    assert _spec(project, "Containerfile").startswith("# Containerfile for images.web")


def test_rerender_is_byte_identical_and_leaves_files_alone(
    project: Path, syntra: Callable[..., Result]
) -> None:
    syntra(project, "render")
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in project.glob("ContainerSpecs/*/*")}
    result = syntra(project, "render")
    assert result.out == "ContainerSpecs up to date\n"
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in project.glob("ContainerSpecs/*/*")}
    assert before == after


def test_specs_do_not_change_with_commits(project: Path, syntra: Callable[..., Result]) -> None:
    syntra(project, "render")
    first = _spec(project)
    commit(project, "another commit")
    git(project, "tag", "v9.9.9")
    assert syntra(project, "render", "--check").code == 0
    assert _spec(project) == first


def test_repository_template_overrides_builtin(
    project: Path, syntra: Callable[..., Result]
) -> None:
    (project / "templates").mkdir()
    (project / "templates" / "default.j2").write_text(
        "FROM scratch\nLABEL spec={{ spec }} image={{ image.name }} project={{ project.name }}\n"
    )
    syntra(project, "render")
    assert "LABEL spec=Dockerfile image=web project=demo\n" in _spec(project)
    assert "LABEL spec=Containerfile image=web" in _spec(project, "Containerfile")


def test_parser_directives_stay_first(project: Path, syntra: Callable[..., Result]) -> None:
    (project / "templates").mkdir()
    (project / "templates" / "default.j2").write_text(
        "# syntax=docker/dockerfile:1\nFROM scratch\n"
    )
    syntra(project, "render")
    lines = _spec(project).splitlines()
    assert lines[0] == "# syntax=docker/dockerfile:1"
    assert lines[1].startswith("# Dockerfile for images.web")


def test_hand_written_dockerfile_gets_a_header(
    project: Path, syntra: Callable[..., Result]
) -> None:
    (project / "web" / "Dockerfile").write_text("FROM scratch\nCOPY index.html /\n")
    text = (project / "syntra.yaml").read_text() + "    dockerfile: web/Dockerfile\n"
    (project / "syntra.yaml").write_text(text)
    syntra(project, "render")
    assert _spec(project).endswith(
        "do not edit.\n# Edit web/Dockerfile or syntra.yaml, then run "
        "`doit render`.\nFROM scratch\nCOPY index.html /\n"
    )
    assert "generated from syntra.yaml and web/Dockerfile" in _spec(project)


def test_check_reports_drift_with_a_diff(project: Path, syntra: Callable[..., Result]) -> None:
    syntra(project, "render")
    spec = project / "ContainerSpecs" / "web" / "Dockerfile"
    spec.write_text(spec.read_text().replace("COPY index.html /srv/", "COPY index.html /tmp/"))
    result = syntra(project, "render", "--check")
    assert result.code == 1
    assert "--- a/ContainerSpecs/web/Dockerfile" in result.out
    assert "-COPY index.html /tmp/\n+COPY index.html /srv/\n" in result.out
    assert result.err == (
        "1 spec(s) differ from what syntra.yaml and its templates or Dockerfiles render; "
        "run `doit render`\n"
    )


def test_check_reports_missing_specs(project: Path, syntra: Callable[..., Result]) -> None:
    result = syntra(project, "render", "--check")
    assert result.code == 1
    assert "+++ b/ContainerSpecs/web/Containerfile" in result.out


def test_specs_of_removed_images_are_pruned(project: Path, syntra: Callable[..., Result]) -> None:
    syntra(project, "render")
    (project / "ContainerSpecs" / "old").mkdir()
    (project / "ContainerSpecs" / "old" / "Dockerfile").write_text(_spec(project))
    (project / "ContainerSpecs" / "mine").mkdir()
    (project / "ContainerSpecs" / "mine" / "Dockerfile").write_text("FROM scratch\n")
    check = syntra(project, "render", "--check")
    assert check.code == 1
    assert "--- a/ContainerSpecs/old/Dockerfile\n+++ /dev/null\n" in check.out
    assert "mine" not in check.out  # not generated: the project's own
    result = syntra(project, "render")
    assert "removed ContainerSpecs/old/Dockerfile (no such image)" in result.out
    assert not (project / "ContainerSpecs" / "old").exists()
    assert (project / "ContainerSpecs" / "mine" / "Dockerfile").exists()


def test_template_error_names_file_line_and_image(
    project: Path, syntra: Callable[..., Result]
) -> None:
    (project / "templates").mkdir()
    (project / "templates" / "default.j2").write_text("FROM scratch\n\nRUN {{ image.nmae }}\n")
    result = syntra(project, "render")
    assert result.code == 2
    assert result.err == (
        "templates/default.j2:3: 'nmae' is undefined; did you mean 'name'? (rendering images.web)\n"
    )


def test_template_syntax_error(project: Path, syntra: Callable[..., Result]) -> None:
    (project / "templates").mkdir()
    (project / "templates" / "default.j2").write_text("FROM scratch\n{% if %}\n")
    result = syntra(project, "render")
    assert result.code == 2
    assert result.err.startswith("templates/default.j2:2: ")
    assert result.err.endswith("(rendering images.web)\n")


def test_templates_are_sandboxed(project: Path, syntra: Callable[..., Result]) -> None:
    (project / "templates").mkdir()
    (project / "templates" / "default.j2").write_text(
        "{{ image.__class__.__mro__[1].__subclasses__() }}\n"
    )
    result = syntra(project, "render")
    assert result.code == 2
    assert "(rendering images.web)" in result.err
    assert not (project / "ContainerSpecs").exists()


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ 1 / 0 }}\n", "templates/default.j2:1: ZeroDivisionError: division by zero"),
        ("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}\n", "RecursionError"),
        ("{% for x in vars.run %}{% endfor %}\n", "'run' is undefined"),
    ],
)
def test_any_template_failure_is_one_line(
    project: Path, syntra: Callable[..., Result], template: str, message: str
) -> None:
    (project / "templates").mkdir()
    (project / "templates" / "default.j2").write_text(template)
    result = syntra(project, "render")
    assert result.code == 2
    assert message in result.err
    assert result.err.count("\n") == 1 and result.err.endswith("(rendering images.web)\n")


def test_template_that_is_not_utf8(project: Path, syntra: Callable[..., Result]) -> None:
    (project / "templates").mkdir()
    (project / "templates" / "default.j2").write_bytes(b"FROM scratch\n\xff\n")
    result = syntra(project, "render")
    assert result.code == 2
    assert result.err.startswith("default.j2: UnicodeDecodeError")
    assert result.err.count("\n") == 1


def test_env_values_are_quoted_for_dockerfiles(
    project: Path, syntra: Callable[..., Result]
) -> None:
    text = (project / "syntra.yaml").read_text()
    text += '      env: {X: "a<b & c\'d é \\"q\\" $HOME"}\n'
    (project / "syntra.yaml").write_text(text)
    syntra(project, "render")
    assert 'ENV X="a<b & c\'d é \\"q\\" \\$HOME"\n' in _spec(project)


def test_symlinked_spec_folder_is_left_alone(
    project: Path, syntra: Callable[..., Result], tmp_path: Path
) -> None:
    syntra(project, "render")
    (tmp_path / "elsewhere").mkdir()
    (project / "ContainerSpecs" / "linked").symlink_to(tmp_path / "elsewhere")
    assert syntra(project, "render").code == 0
    assert (project / "ContainerSpecs" / "linked").is_symlink()
