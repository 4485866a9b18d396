"""pydantic validation errors → one positioned line each, with a hint where one helps."""

from __future__ import annotations

import re
import types
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from syntra.config.model import Config
from syntra.config.yamldoc import Document, Loc, format_loc
from syntra.errors import ConfigError, did_you_mean

_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}

# Keys people reach for that must never hold a secret in the file.
_SECRET_KEYS = {"password", "token", "secret", "username", "auth"}


def first_error(exc: ValidationError, document: Document) -> ConfigError:
    """The error that comes first in the file, as a ConfigError."""
    errors = exc.errors()
    # A misspelt key also makes the real one missing: report the cause first.
    causes = [e for e in errors if e["type"] != "missing"] or errors
    found = [_to_config_error(error, document) for error in causes]
    return min(found, key=lambda e: (e.position.line, e.position.column))


def _to_config_error(error: ErrorDetails, document: Document) -> ConfigError:
    full: Loc = tuple(part for part in error["loc"] if part != "[key]")
    loc, tag = _without_tags(full)
    kind = error["type"]
    if kind == "extra_forbidden":
        return document.error(loc, _unknown_key(full), key=True)
    if kind in ("missing", "union_tag_not_found"):
        key = (error.get("ctx") or {}).get("discriminator", "").strip("'")
        parent, name = (loc, key) if kind == "union_tag_not_found" else (loc[:-1], loc[-1])
        position, _ = document.position(parent, key=True)
        which = f" ({_discriminator(parent)}: {tag})" if tag else ""
        return ConfigError(position, format_loc(parent), f"missing required key '{name}'{which}")
    if kind == "union_tag_invalid":
        ctx = error.get("ctx") or {}
        loc = (*loc, str(ctx.get("discriminator", "")).strip("'"))
        choices = re.findall(r"'([^']*)'", str(ctx.get("expected_tags", "")))
        given = str(ctx.get("tag"))
        message = f"'{given}' is not one of {', '.join(choices)}{did_you_mean(given, choices)}"
        return document.error(loc, message)
    _, found = document.position(loc)
    loc = loc[:found] if found else loc
    # A null value has no position of its own: point at its key.
    on_key = error["loc"][-1] == "[key]" or error.get("input", "") is None
    return document.error(loc, _message(error), key=on_key)


def _without_tags(loc: Loc) -> tuple[Loc, str | None]:
    """`loc` without the tag pydantic puts in it for a discriminated union member
    (`wasm.fib.python.world` is `wasm.fib.world` in the file), and that tag."""
    kind: Any = Config
    kept: list[str | int] = []
    tag = None
    for part in loc:
        members = _tagged_members(kind)
        if members and part in members:
            kind, tag = members[str(part)], str(part)
            continue
        kept.append(part)
        kind = _child(_unwrap(kind), part)
    return tuple(kept), tag


def _tagged_members(kind: Any) -> dict[str, Any]:
    """The members of a discriminated union by tag; empty for anything else."""
    if get_origin(kind) is not Annotated:
        return {}
    inner, *meta = get_args(kind)
    field = next((m for m in meta if getattr(m, "discriminator", None)), None)
    if field is None or get_origin(inner) not in (Union, types.UnionType):
        return {}
    key = str(field.discriminator)
    return {
        str(get_args(member.model_fields[key].annotation)[0]): member for member in get_args(inner)
    }


def _discriminator(loc: Loc) -> str:
    kind: Any = Config
    for part in loc:
        kind = _child(_unwrap(kind), part)
    if get_origin(kind) is Annotated:
        field = next((m for m in get_args(kind)[1:] if getattr(m, "discriminator", None)), None)
        return str(field.discriminator) if field else "kind"
    return "kind"


def _child(kind: Any, part: str | int) -> Any:
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        field = kind.model_fields.get(str(part))
        return field.annotation if field else None
    if get_origin(kind) is dict:
        return get_args(kind)[1]
    if get_origin(kind) is list:
        return get_args(kind)[0]
    return None


def _unknown_key(loc: Loc) -> str:
    key = str(loc[-1])
    model = _model_at(loc[:-1])
    fields = list(model.model_fields) if model else []
    if key.lower() in _SECRET_KEYS:
        return (
            f"unknown key '{key}': secrets never go into syntra.yaml; name environment "
            "variables with credentials.username_env / password_env"
        )
    return f"unknown key '{key}'{did_you_mean(key, fields)}"


def _message(error: ErrorDetails) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "syntra":
        return str((error.get("ctx") or {}).get("reason", error["msg"]))
    if kind == "literal_error":
        expected = (error.get("ctx") or {}).get("expected", "")
        choices = re.findall(r"'([^']*)'", str(expected)) or re.findall(r"\d+", str(expected))
        listed = ", ".join(choices)
        return f"{_describe(value)} is not one of {listed}{did_you_mean(str(value), choices)}"
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, got {_describe(value)}"
    if kind == "too_short":
        return "must not be empty"
    return str(error["msg"]).replace("Input should be", "must be", 1)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class that validates the mapping at `loc` (pydantic's, tags included),
    for did-you-mean on its keys."""
    kind: Any = Config
    for part in loc:
        members = _tagged_members(kind)
        kind = members[str(part)] if str(part) in members else _child(_unwrap(kind), part)
    kind = _unwrap(kind)
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _unwrap(kind: Any) -> Any:
    while True:
        origin = get_origin(kind)
        if origin is Annotated:
            kind = get_args(kind)[0]
        elif origin in (Union, types.UnionType):
            members = [arg for arg in get_args(kind) if arg is not type(None)]
            if len(members) != 1:
                return kind
            kind = members[0]
        else:
            return kind


def model_of(data: dict[str, Any], document: Document, context: dict[str, Any]) -> Config:
    try:
        return Config.model_validate(data, context=context)
    except ValidationError as exc:
        raise first_error(exc, document) from None
