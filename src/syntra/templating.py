"""Sandboxed Jinja2 shared by tag templates and Dockerfile templates.

Templates come from the repository, so they run in Jinja's immutable sandbox with
StrictUndefined: a misspelt variable fails loudly instead of rendering as ''.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from syntra.errors import did_you_mean

# Tag templates are one-line expressions: no loops, calls or arithmetic that
# could make `syntra validate` spin or allocate without bound.
_TAG_NODES = (
    nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Getattr,
    nodes.Getitem, nodes.Const, nodes.Filter, nodes.Concat, nodes.CondExpr, nodes.Compare,
    nodes.Operand, nodes.And, nodes.Or, nodes.Not, nodes.If, nodes.Test,
)  # fmt: skip
_TAG_FILTERS = {"lower", "upper", "replace", "default", "d", "trim", "truncate", "string"}


TEMPLATE_FAILURES = (
    jinja2.TemplateError,
    ArithmeticError,  # {{ 1 / 0 }}
    LookupError,  # {{ x[9] }} on a list, a missing key of a mapping
    TypeError,  # {{ "a" + 1 }}
    ValueError,
    AttributeError,
    RecursionError,  # a macro that calls itself
)
"""What rendering a template can raise: Jinja's errors and those of its expressions."""


def dockerfile_string(value: object) -> str:
    """A double-quoted Dockerfile word: only backslash, quote and `$` are escaped."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return '"' + text.replace("\n", "\\n") + '"'


def environment(loader: jinja2.BaseLoader | None = None) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["dockerfile_string"] = dockerfile_string
    return env


@cache
def _inline() -> ImmutableSandboxedEnvironment:
    return environment()


@cache
def _compiled(text: str) -> jinja2.Template:
    return _inline().from_string(text)


def check_syntax(text: str) -> None:
    """Raise ValueError unless `text` is a valid one-line expression template."""
    try:
        tree = _inline().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"'{text}' is not a valid template: {exc.message}") from None
    for node in _walk(tree):
        if not isinstance(node, _TAG_NODES):
            raise ValueError(
                f"'{text}': tag templates hold expressions and filters only, "
                f"not {type(node).__name__.lower()}"
            )
        if isinstance(node, nodes.Filter) and node.name not in _TAG_FILTERS:
            allowed = ", ".join(sorted(_TAG_FILTERS))
            raise ValueError(f"'{text}': filter '{node.name}' is not one of {allowed}")


def _walk(node: nodes.Node) -> Iterator[nodes.Node]:
    yield node
    for child in node.iter_child_nodes():
        yield from _walk(child)


def render_inline(text: str, context: dict[str, Any]) -> str:
    """Render a one-line template such as a tag; ValueError names what went wrong."""
    if "{{" not in text and "{%" not in text:
        return text
    try:
        return _compiled(text).render(context).strip()
    except jinja2.UndefinedError as exc:
        raise ValueError(f"'{text}': {undefined_message(exc, context)}") from None
    except TEMPLATE_FAILURES as exc:  # a template is user input: its failure is a user error
        raise ValueError(f"'{text}': {type(exc).__name__}: {exc}") from None


def undefined_message(exc: jinja2.UndefinedError, context: dict[str, Any]) -> str:
    """Jinja's message, plus the closest name the template could have meant."""
    message = str(exc.message or exc)
    # Jinja says "'dict object' has no attribute 'x'": the object's type helps nobody.
    message = re.sub(r"^'[^']* object' has no attribute '([^']*)'$", r"'\1' is undefined", message)
    quoted = message.split("'")
    name = quoted[-2] if len(quoted) >= 3 else ""
    return message + did_you_mean(name, _names(context)) if name else message


def _names(value: Any, depth: int = 3) -> set[str]:
    """Every key reachable in the template context: the candidates for did-you-mean."""
    if not isinstance(value, dict) or depth == 0:
        return set()
    found = {str(key) for key in value}
    for child in value.values():
        found |= _names(child, depth - 1)
    return found
