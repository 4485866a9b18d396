"""Sandboxed Jinja2 shared by tag templates and Dockerfile templates.

Templates come from the repository, so they run in Jinja's immutable sandbox with
StrictUndefined: a misspelt variable fails loudly instead of rendering as ''.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment

from syntra.errors import did_you_mean


def environment(loader: jinja2.BaseLoader | None = None) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )


@cache
def _inline() -> ImmutableSandboxedEnvironment:
    return environment()


@cache
def _compiled(text: str) -> jinja2.Template:
    return _inline().from_string(text)


def check_syntax(text: str) -> None:
    """Raise ValueError when `text` is not a valid template."""
    try:
        _inline().parse(text)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"'{text}' is not a valid template: {exc.message}") from None


def render_inline(text: str, context: dict[str, Any]) -> str:
    """Render a one-line template such as a tag; ValueError names what went wrong."""
    if "{{" not in text and "{%" not in text:
        return text
    try:
        return _compiled(text).render(context).strip()
    except jinja2.UndefinedError as exc:
        raise ValueError(f"'{text}': {undefined_message(exc, context)}") from None
    except jinja2.TemplateError as exc:
        raise ValueError(f"'{text}': {exc}") from None


def undefined_message(exc: jinja2.UndefinedError, context: dict[str, Any]) -> str:
    """Jinja's message, plus the closest name the template could have meant."""
    message = str(exc.message or exc)
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
