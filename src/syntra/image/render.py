"""Stage 3, render: ContainerSpecs/<image>/{Dockerfile,Containerfile} from templates.

The rendered files hold nothing that changes from commit to commit (version, git
sha, registry host, base image): those reach the build as build args and labels,
so committed specs only drift when syntra.yaml or a template really changed.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2

from syntra import generated
from syntra.errors import SyntraError
from syntra.generated import Family, Generated
from syntra.paths import CONFIG_FILE, SPEC_NAMES, SPECS_DIR, template_dirs
from syntra.plan import BASE_IMAGE_ARG, ImagePlan, Plan
from syntra.templating import TEMPLATE_FAILURES, environment, undefined_message

_PARSER_DIRECTIVE = ("# syntax=", "# escape=", "# check=")
GENERATED_MARK = "do not edit"


Spec = Generated
SPECS = Family(
    SPECS_DIR, tuple(f"*/{name}" for name in SPEC_NAMES), f"generated from {CONFIG_FILE}"
)
"""Rendered specs: `ContainerSpecs/<image>/<spec>`, their header names syntra.yaml."""


def header(image: ImagePlan, spec: str) -> str:
    source = f"template {image.template}" if image.template else image.source_dockerfile
    edit = "the template" if image.template else image.source_dockerfile
    return (
        f"# {spec} for images.{image.name}, generated from {CONFIG_FILE} and {source}"
        f" — {GENERATED_MARK}.\n"
        f"# Edit {edit} or {CONFIG_FILE}, then run `doit render`.\n"
    )


def render_image(image: ImagePlan, root: Path, project: str) -> list[Spec]:
    """Both specs of one image; SyntraError names the template line that failed."""
    return [
        Spec(
            f"{SPECS_DIR}/{image.name}/{spec}",
            _with_header(image, spec, _body(image, root, spec, project)),
        )
        for spec in SPEC_NAMES
    ]


def render_plan(plan: Plan, root: Path) -> list[Spec]:
    return [spec for image in plan.images for spec in render_image(image, root, plan.project)]


def _body(image: ImagePlan, root: Path, spec: str, project: str) -> str:
    if image.source_dockerfile:
        try:
            text = (root / image.source_dockerfile).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise SyntraError(f"{image.source_dockerfile}: cannot read: {exc}") from None
        plugins = "".join(
            f"COPY --from=plugins {p}.wasm /opt/plugins/{p}.wasm\n" for p in image.plugins
        )
        if image.plugins:
            plugins += f"COPY --from=plugins {image.name}.plugins.json /opt/plugins/plugins.json\n"
        return (text if text.endswith("\n") else text + "\n") + plugins
    assert image.template is not None
    context = _template_context(image, spec, project)
    try:
        return _environment(root).get_template(image.template).render(context)
    except jinja2.TemplateSyntaxError as exc:
        where = f"{_shown(root, exc.filename)}:{exc.lineno}"
        raise SyntraError(f"{where}: {exc.message} (rendering images.{image.name})") from None
    except jinja2.UndefinedError as exc:
        where = _template_line(exc.__traceback__, root) or image.template
        message = undefined_message(exc, context)
        raise SyntraError(f"{where}: {message} (rendering images.{image.name})") from None
    except TEMPLATE_FAILURES as exc:  # templates are user input: a failure is a user error
        where = _template_line(exc.__traceback__, root) or image.template
        message = (
            str(exc) if isinstance(exc, jinja2.TemplateError) else f"{type(exc).__name__}: {exc}"
        )
        raise SyntraError(f"{where}: {message} (rendering images.{image.name})") from None


def _template_context(image: ImagePlan, spec: str, project: str) -> dict[str, Any]:
    return {
        "spec": spec,
        "project": {"name": project},
        "vars": image.vars,
        "image": {
            "name": image.name,
            "base": image.base,
            "base_arg": BASE_IMAGE_ARG,
            "args": [name for name in image.args if name != BASE_IMAGE_ARG],
            "platforms": image.platforms,
            "target": image.target,
            "plugins": [{"name": p, "file": f"{p}.wasm"} for p in image.plugins],
            "plugin_manifest": f"{image.name}.plugins.json" if image.plugins else None,
            "secrets": [secret["id"] for secret in image.secrets],
        },
    }


def render_inputs(image: ImagePlan, project: str) -> dict[str, Any]:
    """Everything from the plan that can change an image's specs (for doit's uptodate)."""
    return {
        "template": image.template,
        "dockerfile": image.source_dockerfile,
        "context": _template_context(image, "", project),
    }


@cache
def _environment(root: Path) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader([str(d) for d in template_dirs(root)])
    return environment(loader)


def _shown(root: Path, filename: str | None) -> str:
    if not filename:
        return "<template>"
    path = Path(filename)
    return str(path.relative_to(root)) if path.is_relative_to(root) else f"syntra:{path.name}"


def _template_line(tb: TracebackType | None, root: Path) -> str | None:
    """Jinja maps template frames to the template file and line; take the innermost."""
    found = None
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            found = f"{_shown(root, filename)}:{tb.tb_lineno}"
        tb = tb.tb_next
    return found


def _with_header(image: ImagePlan, spec: str, body: str) -> str:
    """Put the header after any parser directives, which must stay first."""
    lines = body.splitlines(keepends=True)
    directives = 0
    while directives < len(lines) and lines[directives].startswith(_PARSER_DIRECTIVE):
        directives += 1
    return "".join(lines[:directives]) + header(image, spec) + "".join(lines[directives:])


def write_specs(specs: list[Spec], root: Path) -> list[str]:
    """Write specs that changed; returns their paths."""
    return generated.write_generated(specs, root)


def spec_paths(plan: Plan) -> list[str]:
    return [f"{SPECS_DIR}/{image.name}/{spec}" for image in plan.images for spec in SPEC_NAMES]


def prune(plan: Plan, root: Path) -> list[str]:
    """Remove the specs of images no longer in syntra.yaml; their paths."""
    return generated.prune(SPECS, spec_paths(plan), root)


def drift(plan: Plan, root: Path) -> list[str]:
    """Unified diffs between what is committed and what syntra.yaml renders to."""
    return generated.drift(render_plan(plan, root), SPECS, root)
