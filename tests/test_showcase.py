"""The repository's own syntra.yaml: valid, and its committed specs are current."""

from __future__ import annotations

import json
from collections.abc import Callable

import jsonschema
from ruamel.yaml import YAML

from syntra.config.schema import json_schema, markdown_reference
from tests.conftest import REPO, Result


def test_showcase_validates(syntra: Callable[..., Result]) -> None:
    result = syntra(REPO, "validate")
    assert result.code == 0, result.err
    assert result.out == "syntra.yaml: ok (2 images, 4 wasm guests, 3 platform builds)\n"


def test_committed_specs_match(syntra: Callable[..., Result]) -> None:
    result = syntra(REPO, "render", "--check")
    assert result.code == 0, result.out


def test_json_schema_accepts_the_showcase(syntra: Callable[..., Result]) -> None:
    result = syntra(REPO, "schema")
    schema = json.loads(result.out)
    jsonschema.Draft202012Validator.check_schema(schema)
    document = YAML(typ="safe").load((REPO / "syntra.yaml").read_text())
    jsonschema.validate(document, schema)


def test_json_schema_rejects_unknown_keys() -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    errors = list(validator.iter_errors({"version": 1, "project": {"name": "x", "nmae": "y"}}))
    assert errors


def test_docs_reference_is_current() -> None:
    page = (REPO / "docs" / "reference.md").read_text()
    start = page.index("<!-- reference:start -->\n") + len("<!-- reference:start -->\n")
    end = page.index("<!-- reference:end -->")
    assert page[start:end] == markdown_reference(), (
        "docs/reference.md is stale: run `syntra schema --markdown` and paste it between "
        "the markers"
    )
