"""Reading syntra.yaml into plain data while remembering where every value stands.

One pass over the C parser's event stream records the position of every key and
value, and refuses what would cost unbounded time or memory later: nesting deeper
than MAX_DEPTH, merge keys (`<<`) that merge a mapping which merges again (ruamel
flattens those in exponential time), explicit tags, non-string keys, numbers too
long to convert. Then ruamel's C loader builds the data, and an iterative count
refuses alias bombs before anything walks the expanded tree.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.nodes import ScalarNode
from ruamel.yaml.reader import ReaderError

from syntra.errors import ConfigError, Position

MAX_BYTES = 1 << 20
MAX_VALUES = 250_000
MAX_DEPTH = 64
MAX_NUMBER_CHARS = 64
STR_TAG = "tag:yaml.org,2002:str"

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Spot:
    """Where a value stands (0-based), where its key stands, and its scalar style."""

    value: tuple[int, int]
    key: tuple[int, int] | None = None
    style: str | None = None


@dataclass
class Document:
    """syntra.yaml's text, its data, and the position of every key and value in it."""

    file: str
    text: str
    data: dict[str, Any]
    spots: dict[Loc, Spot]
    expanded: dict[Loc, dict[str, str]] = field(default_factory=dict)
    """For values with ${VAR}s: each variable's name → the text it expanded to."""

    def position(self, loc: Loc, *, key: bool = False) -> tuple[Position, int]:
        """Position of `loc` (of its key when `key`), and how many parts of it exist."""
        found = len(loc)
        while found and loc[:found] not in self.spots:
            found -= 1
        spot = self.spots[loc[:found]]
        line, col = spot.key if key and spot.key and found == len(loc) else spot.value
        return Position(self.file, line + 1, col + 1), found

    def error(self, loc: Loc, message: str, *, key: bool = False) -> ConfigError:
        position, _ = self.position(loc, key=key)
        return ConfigError(position, format_loc(loc), self.hide_expanded(loc, message))

    def hide_expanded(self, loc: Loc, message: str) -> str:
        """Show `${NAME}` instead of what an environment variable expanded to."""
        for scope in (loc[:n] for n in range(len(loc), 0, -1)):
            for name, value in self.expanded.get(scope, {}).items():
                if value:
                    message = message.replace(value, f"${{{name}}}")
        return message


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


def parse(data: bytes, file: str) -> Document:
    """Parse bytes into a Document, or raise ConfigError pointing at the problem."""
    if len(data) > MAX_BYTES:
        raise ConfigError(Position(file, 1, 1), "", f"larger than {MAX_BYTES >> 20} MiB")
    text = _decode(data, file)
    if not re.sub(r"(?m)^\s*(#.*)?$", "", text).strip():
        raise ConfigError(Position(file, 1, 1), "", "the file is empty; start with 'version: 1'")
    yaml = YAML(typ="safe")
    try:
        spots = _Scan(file, yaml).run(text)
        loaded = yaml.load(text)
    except DuplicateKeyError as exc:
        raise _duplicate(exc, file, text) from None
    except MarkedYAMLError as exc:
        raise _marked(exc, file, text) from None
    except ReaderError as exc:
        line, col = _line_col(text, exc.position)
        message = f"character {exc.character!r} is not allowed in YAML"
        raise ConfigError(Position(file, line, col), "", message) from None
    except YAMLError as exc:
        raise ConfigError(Position(file, 1, 1), "", f"YAML error: {exc}") from None
    if not isinstance(loaded, dict):
        raise ConfigError(Position(file, 1, 1), "", "expected a mapping at the top level")
    document = Document(file, text, loaded, spots)
    _check_size(document)
    return document


@dataclass
class _Frame:
    loc: Loc
    is_map: bool
    anchor: str | None
    index: int = 0
    key: str | None = None
    key_spot: tuple[int, int] | None = None
    merging: bool = False
    merges: bool = False


class _Scan:
    """The event pass: positions, and the refusals that must happen before loading."""

    def __init__(self, file: str, yaml: YAML) -> None:
        self.file = file
        self.resolver = yaml.resolver
        self.spots: dict[Loc, Spot] = {}
        self.stack: list[_Frame] = []
        self.merging_anchors: set[str] = set()

    def fail(self, mark: Any, message: str, loc: Loc = ()) -> ConfigError:
        return ConfigError(
            Position(self.file, mark.line + 1, mark.column + 1), format_loc(loc), message
        )

    def run(self, text: str) -> dict[Loc, Spot]:
        for event in YAML(typ="safe").parse(text):
            if isinstance(event, NodeEvent):
                self.node(event)
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                frame = self.stack.pop()
                if frame.anchor and frame.merges:
                    self.merging_anchors.add(frame.anchor)
        return self.spots

    def node(self, event: NodeEvent) -> None:
        mark = event.start_mark
        tag = getattr(event, "tag", None)
        if tag is not None:
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise self.fail(mark, f"YAML tags such as '{shown}' are not supported")
        if isinstance(event, ScalarEvent) and not event.style:
            self.check_number(event)
        parent = self.stack[-1] if self.stack else None
        if parent is None:
            loc: Loc | None = ()
        elif parent.is_map and parent.key is None:
            self.take_key(parent, event)
            return
        elif parent.is_map:
            loc = self.take_value(parent, event)
        elif parent.merging:
            self.check_merge(event)
            loc = None
        else:
            loc = (*parent.loc, parent.index)
            parent.index += 1
        if loc is not None:
            key = parent.key_spot if parent and parent.is_map else None
            style = (event.style or None) if isinstance(event, ScalarEvent) else None
            self.spots[loc] = Spot((mark.line, mark.column), key, style)
        if isinstance(event, CollectionStartEvent):
            if len(self.stack) >= MAX_DEPTH:
                raise self.fail(mark, f"nested more than {MAX_DEPTH} levels deep")
            frame_loc = loc if loc is not None else ()
            frame = _Frame(frame_loc, isinstance(event, MappingStartEvent), event.anchor)
            frame.merging = loc is None and isinstance(event, SequenceStartEvent)
            self.stack.append(frame)

    def take_key(self, parent: _Frame, event: NodeEvent) -> None:
        mark = event.start_mark
        if not isinstance(event, ScalarEvent):
            raise self.fail(mark, "keys must be text, not a collection or alias", parent.loc)
        plain = not event.style  # the C parser gives '' for plain scalars
        merge = plain and event.value == "<<"
        text = self.resolver.resolve(ScalarNode, event.value, event.implicit) == STR_TAG
        if plain and not merge and not text:
            message = f"keys must be text; write '{event.value}' in quotes"
            raise self.fail(mark, message, parent.loc)
        parent.key = event.value
        parent.key_spot = (mark.line, mark.column)
        parent.merging = merge

    def take_value(self, parent: _Frame, event: NodeEvent) -> Loc | None:
        assert parent.key is not None
        loc: Loc | None = (*parent.loc, parent.key)
        if parent.merging:
            parent.merges = True
            if not isinstance(event, SequenceStartEvent):
                self.check_merge(event)
                parent.merging = False
            loc = None
        parent.key = None
        return loc

    def check_merge(self, event: NodeEvent) -> None:
        if not isinstance(event, AliasEvent):
            raise self.fail(event.start_mark, "'<<' merges aliases (*name) only")
        if event.anchor in self.merging_anchors:
            raise self.fail(
                event.start_mark,
                f"'<<' of *{event.anchor}, which itself uses '<<': merge the original instead",
            )

    def check_number(self, event: ScalarEvent) -> None:
        if len(event.value) <= MAX_NUMBER_CHARS:
            return
        tag = self.resolver.resolve(ScalarNode, event.value, event.implicit)
        if tag != STR_TAG:
            raise self.fail(event.start_mark, "a number this long is not supported")


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


def _marked(exc: MarkedYAMLError, file: str, text: str) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    problem = exc.problem or exc.context or "invalid YAML"
    if problem == "found undefined alias" and mark:
        # The C parser leaves out the name; it stands at the mark.
        alias = re.match(r"\*([^\s,\]\}]+)", text.splitlines()[mark.line][mark.column :])
        problem += f" '{alias.group(1)}'" if alias else ""
    elif problem.startswith("found character that") and mark:
        line_text = text.splitlines()[mark.line] if mark.line < text.count("\n") + 1 else ""
        found = line_text[mark.column : mark.column + 1]
        problem = problem.replace("character", f"character {found!r}", 1) if found else problem
    started = exc.context_mark
    if exc.context and exc.problem:
        at = f" at line {started.line + 1}" if started and started.line + 1 != line else ""
        problem = f"{problem} ({exc.context}{at})"
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
    """Refuse alias bombs, aliases nested past MAX_DEPTH and values that contain themselves.

    Anchored nodes are shared objects: memoised by identity, the count is linear in
    the file even when the expansion is exponential. Iterative, so no alias chain
    can exhaust the stack.
    """
    done: dict[int, tuple[int, int]] = {}
    open_: set[int] = set()
    stack: list[tuple[Any, Loc, bool]] = [(document.data, (), False)]
    while stack:
        node, loc, finish = stack.pop()
        children = list(node.items() if isinstance(node, Mapping) else enumerate(node))
        if finish:
            size = 1 + sum(done[id(c)][0] if _nested(c) else 1 for _, c in children)
            depth = 1 + max((done[id(c)][1] for _, c in children if _nested(c)), default=0)
            if size > MAX_VALUES:
                raise document.error(loc, f"aliases expand to more than {MAX_VALUES} values")
            if depth > MAX_DEPTH:
                raise document.error(loc, f"aliases nest more than {MAX_DEPTH} levels deep")
            done[id(node)] = (size, depth)
            open_.discard(id(node))
            continue
        if id(node) in done:
            continue
        open_.add(id(node))
        stack.append((node, loc, True))
        for part, child in children:
            if _nested(child):
                if id(child) in open_:
                    raise document.error(
                        (*loc, part), "an alias refers to a value that contains it"
                    )
                stack.append((child, (*loc, part), False))


def _nested(value: Any) -> bool:
    return isinstance(value, Mapping | list)


_VAR_RE = re.compile(r"\$(\$|\{([^}]*)\}|\{)")
_VAR_BODY_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?", re.DOTALL)


def to_plain(document: Document, environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Plain data with `${VAR}`, `${VAR:-default}`, `${VAR-default}` expanded.

    `$$` stands for a literal `$`. Only values are expanded, never keys. Dates
    become their ISO text: syntra.yaml has no date values.
    """
    env = os.environ if environ is None else environ

    def expand(text: str, loc: Loc) -> str:
        def substitute(match: re.Match[str]) -> str:
            if match.group(1) == "$":
                return "$"
            body = _VAR_BODY_RE.fullmatch(match.group(2) or "")
            if match.group(2) is None or body is None:
                message = f"'{match.group(0)}' is not a valid ${{VAR}} reference"
                raise _at_var(document, loc, text, match, message)
            name, operator, default = body.groups()
            refuse = _interpolation_refused(loc, name)
            if refuse:
                raise _at_var(document, loc, text, match, refuse)
            value = env.get(name)
            if (operator == ":-" and not value) or (operator == "-" and value is None):
                return str(default)
            if value is None:
                message = (
                    f"environment variable '{name}' is not set "
                    f"(write ${{{name}:-default}} for a fallback)"
                )
                raise _at_var(document, loc, text, match, message)
            document.expanded.setdefault(loc, {})[name] = value
            return value

        return _VAR_RE.sub(substitute, text)

    def walk(node: Any, loc: Loc) -> Any:
        if isinstance(node, Mapping):
            return {key: walk(value, (*loc, key)) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item, (*loc, index)) for index, item in enumerate(node)]
        if isinstance(node, str):
            return expand(node, loc) if "$" in node else node
        if isinstance(node, datetime.date):
            return node.isoformat()
        return node

    plain: dict[str, Any] = walk(document.data, ())
    return plain


_SECRET_NAME_RE = re.compile(r"TOKEN|PASSWORD|PASSWD|SECRET|PRIVATE|CREDENTIAL|API_?KEY|AUTH")


def _interpolation_refused(loc: Loc, name: str) -> str | None:
    """Secrets never enter syntra.yaml, and rendered files never depend on the environment."""
    if _SECRET_NAME_RE.search(name.upper()):
        return (
            f"'{name}' looks like a secret, and secrets are not expanded into syntra.yaml: "
            "mount it with secrets: [{id: ..., env: " + name + "}] or use credentials.password_env"
        )
    if loc[:1] == ("images",) and len(loc) > 2 and loc[2] == "vars":
        return "vars are rendered into committed files, which must not depend on the environment"
    return None


def _at_var(
    document: Document, loc: Loc, text: str, match: re.Match[str], message: str
) -> ConfigError:
    """Point at the `${` itself when the value stands verbatim on one source line."""
    position, found = document.position(loc)
    spot = document.spots.get(loc)
    if found == len(loc) and spot and spot.style in (None, "'", '"'):
        quote = 0 if spot.style is None else 1
        line = document.text.splitlines()[position.line - 1]
        start = position.column - 1 + quote
        if "\n" not in text and line[start:].startswith(text):
            position = Position(
                position.file, position.line, position.column + quote + match.start()
            )
    return ConfigError(position, format_loc(loc), message)
