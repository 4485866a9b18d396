"""The syntra.yaml JSON Schema, and the Markdown reference the README carries."""

from __future__ import annotations

import json
from typing import Any

from syntra.config.model import Config

SCHEMA_ID = "https://syntra.dev/schema/syntra.schema.json"


def json_schema() -> dict[str, Any]:
    schema = Config.model_json_schema()
    schema["$id"] = SCHEMA_ID
    return schema


def markdown_reference() -> str:
    """One table per section, in the order a syntra.yaml is usually written."""
    schema = json_schema()
    defs = schema.get("$defs", {})
    sections: list[str] = []
    shown: set[int] = set()

    def table(title: str, node: dict[str, Any]) -> None:
        rows = ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
        nested: list[tuple[str, dict[str, Any]]] = []
        required = set(node.get("required", []))
        for key, prop in node.get("properties", {}).items():
            kind, children, suffix = _kind(prop, defs)
            default = "required" if key in required else "" if children else _default(prop)
            rows.append(f"| `{key}` | {kind} | {default} | {prop.get('description', '')} |")
            path = f"{title}.{key}{suffix}" if title else f"{key}{suffix}"
            nested += [(path + variant, child) for variant, child in children]
        sections.append(f"#### `{title or 'top level'}`\n\n" + "\n".join(rows) + "\n")
        for name, child in nested:
            if id(child) not in shown:  # a model several variants share: once, first
                shown.add(id(child))
                table(name, child)

    table("", schema)
    return "\n".join(sections)


Children = list[tuple[str, dict[str, Any]]]
"""The models behind a type, each with what tells it apart (` (language: swift)`)."""


def _kind(prop: dict[str, Any], defs: dict[str, Any]) -> tuple[str, Children, str]:
    """A readable type, the models behind it and the path suffix to reach them."""
    options = [p for p in prop.get("anyOf", [prop]) if p.get("type") != "null"]
    if len(options) > 1:
        return " or ".join(_kind(p, defs)[0] for p in options), [], ""
    node = options[0]
    if "$ref" in node:
        return "mapping", [("", defs[node["$ref"].rsplit("/", 1)[-1]])], ""
    if "oneOf" in node and "discriminator" in node:  # one model per value of a key
        key = node["discriminator"]["propertyName"]
        mapping = node["discriminator"]["mapping"]
        children = [
            (f" ({key}: {tag})", defs[ref.rsplit("/", 1)[-1]]) for tag, ref in mapping.items()
        ]
        return f"mapping, by `{key}`", sorted(children), ""
    if "enum" in node or "const" in node:
        values = node.get("enum", [node.get("const")])
        return " \\| ".join(f"`{v}`" for v in values), [], ""
    if node.get("type") == "array":
        inner, children, _ = _kind(node.get("items", {}), defs)
        return f"list of {inner}", children, "[]"
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        inner, children, _ = _kind(node["additionalProperties"], defs)
        return f"mapping of name → {inner}", children, ".<name>"
    return str(node.get("type", "any")), [], ""


def _default(prop: dict[str, Any]) -> str:
    if prop.get("default") is None:
        return ""
    value = json.dumps(prop["default"], ensure_ascii=False)
    return f"`{value}`".replace("|", "\\|")
