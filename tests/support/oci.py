"""Validation against the OCI image-spec JSON schemas vendored in tests/schemas."""

from __future__ import annotations

import json
import tarfile
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry
from referencing.jsonschema import DRAFT4

from tests.conftest import SCHEMAS

BASE = "file:///oci-image-spec/"


def _without_ids(node: Any) -> Any:
    """The schemas nest draft-04 `id`s that would re-base their relative `$ref`s."""
    if isinstance(node, dict):
        return {
            k: _without_ids(v) for k, v in node.items() if not (k == "id" and isinstance(v, str))
        }
    if isinstance(node, list):
        return [_without_ids(item) for item in node]
    return node


@cache
def _registry() -> Registry:
    folder = SCHEMAS / "oci-image-spec"
    resources = [
        (BASE + path.name, DRAFT4.create_resource(_without_ids(json.loads(path.read_text()))))
        for path in folder.glob("*.json")
    ]
    return Registry().with_resources(resources)


def validate(document: dict[str, Any], schema: str) -> None:
    """Raise jsonschema.ValidationError unless `document` is valid under `schema`."""
    validator = jsonschema.Draft4Validator({"$ref": BASE + schema}, registry=_registry())
    validator.validate(document)


def layer_files(layout: Path) -> dict[str, bytes]:
    """Every regular file in the layers of the first image of an OCI layout."""
    index = json.loads((layout / "index.json").read_text())
    blobs = layout / "blobs" / "sha256"
    manifest = json.loads((blobs / index["manifests"][0]["digest"][7:]).read_text())
    files = {}
    for layer in manifest["layers"]:
        with tarfile.open(blobs / layer["digest"][7:]) as archive:
            for member in archive.getmembers():
                extracted = archive.extractfile(member) if member.isfile() else None
                if extracted is not None:
                    files[member.name] = extracted.read()
    return files
