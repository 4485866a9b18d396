"""Reading syntra.yaml into plain data while remembering where every value stands.

ruamel.yaml's round-trip loader keeps line/column for every key and item; this
module turns its errors into `file:line:col` lines and guards against inputs that
would cost unbounded time or memory (alias bombs, deep nesting, huge files).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import cached_property
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarstring import ScalarString

from syntra.errors import ConfigError, Position

MAX_BYTES = 4 << 20
MAX_VALUES = 250_000
MAX_DEPTH = 64

Loc = tuple[str | int, ...]


class Document:
    """syntra.yaml's text, its data, and (on demand) where every value stands.

    Loading uses ruamel's C parser; the much slower round-trip parse that knows line
    and column of every key runs only when an error needs a position.
    """

    def __init__(self, file: str, text: str, data: dict[str, Any]) -> None:
        self.file = file
        self.text = text
        self.data = data

    @cached_property
    def root(self) -> CommentedMap:
        yaml = YAML(typ="rt", pure=True)
        yaml.preserve_quotes = True
        root = yaml.load(self.text)
        return root if isinstance(root, CommentedMap) else CommentedMap()

    def position(self, loc: Loc, *, key: bool = False) -> tuple[Position, int]:
        """Position of `loc` (of its key when `key`), and how many parts of it exist."""
        node: Any = self.root
        line, col = _start(self.root)
        for depth, part in enumerate(loc):
            last = depth == len(loc) - 1
            spot = _child_position(node, part, key=key and last)
            if spot is None:
                return Position(self.file, line + 1, col + 1), depth
            line, col = spot
            node = node[part]
        return Position(self.file, line + 1, col + 1), len(loc)

    def error(self, loc: Loc, message: str, *, key: bool = False) -> ConfigError:
        position, _ = self.position(loc, key=key)
        return ConfigError(position, format_loc(loc), message)


def format_loc(loc: Loc) -> str:
    """`images.server.platforms[1]`, the way users write paths into the file."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", part):
            out += f".{part}" if out else part
        else:
            out += f"[{part!r}]"
    return out


def _start(node: Any) -> tuple[int, int]:
    lc = getattr(node, "lc", None)
    return (lc.line, lc.col) if lc is not None and lc.line is not None else (0, 0)


def _child_position(node: Any, part: str | int, *, key: bool) -> tuple[int, int] | None:
    try:
        if isinstance(node, CommentedMap) and part in node:
            spot = node.lc.key(part) if key else node.lc.value(part)
            return (spot[0], spot[1])
        if isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            spot = node.lc.item(part)
            return (spot[0], spot[1])
    except (KeyError, IndexError, TypeError):
        # Keys that came in through a `<<:` merge have no position of their own.
        return _start(node)
    return None


def parse(data: bytes, file: str) -> Document:
    """Parse bytes into a Document, or raise ConfigError pointing at the problem."""
    if len(data) > MAX_BYTES:
        raise ConfigError(Position(file, 1, 1), "", f"larger than {MAX_BYTES >> 20} MiB")
    text = _decode(data, file)
    if not re.sub(r"(?m)^\s*(#.*)?$", "", text).strip():
        raise ConfigError(Position(file, 1, 1), "", "the file is empty; start with 'version: 1'")
    try:
        _check_depth(text, file)
        data_ = YAML(typ="safe").load(text)
    except YAMLError:
        # The round-trip parser reports the same problem with the best positions.
        raise _yaml_error(text, file) from None
    if not isinstance(data_, dict):
        raise ConfigError(Position(file, 1, 1), "", "expected a mapping at the top level")
    document = Document(file, text, data_)
    _check_size(document)
    return document


def _check_depth(text: str, file: str) -> None:
    """Refuse deep nesting from the flat event stream, before anything recurses into it."""
    depth = 0
    for event in YAML(typ="safe").parse(text):
        if isinstance(event, MappingStartEvent | SequenceStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                mark = event.start_mark
                raise ConfigError(
                    Position(file, mark.line + 1, mark.column + 1),
                    "",
                    f"nested more than {MAX_DEPTH} levels deep",
                )
        elif isinstance(event, MappingEndEvent | SequenceEndEvent):
            depth -= 1


def _yaml_error(text: str, file: str) -> ConfigError:
    try:
        YAML(typ="rt", pure=True).load(text)
    except DuplicateKeyError as exc:
        return _duplicate(exc, file, text)
    except MarkedYAMLError as exc:
        return _marked(exc, file)
    except ReaderError as exc:
        line, col = _line_col(text, exc.position)
        message = f"character {exc.character!r} is not allowed in YAML"
        return ConfigError(Position(file, line, col), "", message)
    except YAMLError as exc:
        return ConfigError(Position(file, 1, 1), "", f"YAML error: {exc}")
    return ConfigError(Position(file, 1, 1), "", "not valid YAML")


def _decode(data: bytes, file: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line, col = _line_col(data[: exc.start].decode("utf-8", "replace"), None)
        raise ConfigError(
            Position(file, line, col), "", f"not valid UTF-8 (byte 0x{data[exc.start]:02x})"
        ) from None


def _line_col(text: str, offset: int | None) -> tuple[int, int]:
    head = text if offset is None else text[:offset]
    return head.count("\n") + 1, len(head) - (head.rfind("\n") + 1) + 1


def _marked(exc: MarkedYAMLError, file: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or exc.context or "invalid YAML"
    started = exc.context_mark
    if exc.context and exc.problem:
        at = f" at line {started.line + 1}" if started and started.line + 1 != line else ""
        problem = f"{exc.problem} ({exc.context}{at})"
    return ConfigError(Position(file, line, col), "", f"YAML syntax error: {problem}")


def _duplicate(exc: DuplicateKeyError, file: str, text: str) -> ConfigError:
    """Name the line of the first occurrence: ruamel only marks the mapping's start."""
    mark, mapping = exc.problem_mark, exc.context_mark
    match = re.search(r'found duplicate key "(.*?)"', exc.problem or "")
    key = match.group(1) if match else "?"
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    lines = text.splitlines()
    first = next(
        (
            number + 1
            for number in range(mapping.line if mapping else 0, line - 1)
            if lines[number][col - 1 :].startswith((f"{key}:", f'"{key}":', f"'{key}':"))
        ),
        None,
    )
    where = f" (first at line {first})" if first else ""
    return ConfigError(Position(file, line, col), "", f"duplicate key '{key}'{where}")


def _check_size(document: Document) -> None:
    """Refuse alias bombs and self-containing aliases before anything walks the tree.

    Anchored nodes are shared objects, so counting with a memo by identity is linear
    in the file even when the expansion is exponential.
    """
    memo: dict[int, int] = {}

    def count(node: Any, loc: Loc) -> int:
        if not isinstance(node, Mapping | list):
            return 1
        if id(node) in memo:
            if memo[id(node)] < 0:
                raise document.error(loc, "an alias refers to a value that contains it")
            return memo[id(node)]
        memo[id(node)] = -1
        items = node.items() if isinstance(node, Mapping) else enumerate(node)
        total = 1
        for part, child in items:
            total += count(child, (*loc, part))
            if total > MAX_VALUES:
                raise document.error(
                    loc, f"aliases expand to more than {MAX_VALUES} values; refusing to load"
                )
        memo[id(node)] = total
        return total

    count(document.data, ())


_VAR_RE = re.compile(r"\$(\$|\{([^}]*)\}|\{)")
_VAR_BODY_RE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?$", re.DOTALL)


def to_plain(document: Document, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Plain dicts and lists with `${VAR}`, `${VAR:-default}`, `${VAR-default}` expanded.

    `$$` stands for a literal `$`. Only values are expanded, never keys.
    """
    env = os.environ if environ is None else environ

    def expand(text: str, loc: Loc) -> str:
        def substitute(match: re.Match[str]) -> str:
            if match.group(1) == "$":
                return "$"
            body = _VAR_BODY_RE.match(match.group(2) or "")
            if match.group(2) is None or body is None:
                raise _at_var(
                    document,
                    loc,
                    text,
                    match,
                    f"'{match.group(0)}' is not a valid ${{VAR}} reference",
                )
            name, operator, default = body.groups()
            value = env.get(name)
            if operator == ":-" and not value:
                return str(default)
            if operator == "-" and value is None:
                return str(default)
            if value is None:
                raise _at_var(
                    document,
                    loc,
                    text,
                    match,
                    f"environment variable '{name}' is not set (write ${{{name}:-default}} "
                    "for a fallback)",
                )
            return value

        return _VAR_RE.sub(substitute, text)

    def walk(node: Any, loc: Loc) -> Any:
        if isinstance(node, Mapping):
            return {key: walk(value, (*loc, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, (*loc, index)) for index, item in enumerate(node)]
        if isinstance(node, str):
            return expand(str(node), loc) if "$" in node else str(node)
        return node

    plain: dict[str, Any] = walk(document.data, ())
    return plain


def _at_var(
    document: Document, loc: Loc, text: str, match: re.Match[str], message: str
) -> ConfigError:
    """Point at the `${` itself when the scalar sits on one line."""
    position, found = document.position(loc)
    value = _value_at(document.root, loc)
    if found == len(loc) and "\n" not in text:
        quote = 1 if isinstance(value, ScalarString) else 0
        position = Position(position.file, position.line, position.column + quote + match.start())
    return ConfigError(position, format_loc(loc), message)


def _value_at(root: Any, loc: Loc) -> Any:
    node = root
    for part in loc:
        node = node[part]
    return node
