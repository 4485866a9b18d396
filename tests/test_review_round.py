"""What an outside review of this round found: secrets a service's command was given stay
out of the committed compose file, a lock entry cannot point a pinned reference at
another digest, and the telemetry warning shows no credential of the endpoint."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from syntra.errors import SyntraError
from syntra.lockfile import parse
from syntra.otlpexport import _shown

CONFIG = """\
version: 1
project: {name: demo}
services:
  db:
    image: postgres:16
    command: [postgres, -c, "password=${REVIEW_DB_PASS}", "$$HOME", "$$5"]
    healthcheck: {test: "check ${REVIEW_DB_PASS} $$HOSTNAME", interval: 1s}
"""


def test_the_committed_compose_file_keeps_a_commands_variables_unexpanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syntra.pipeline.context import Context
    from syntra.up import compose

    monkeypatch.setenv("REVIEW_DB_PASS", "hunter2hunter2")
    (tmp_path / "syntra.yaml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)
    ctx = Context.load(tmp_path / "syntra.yaml")
    (committed,) = compose.render(ctx.loaded, ctx.plan)
    assert "hunter2hunter2" not in committed.text
    db = YAML(typ="safe").load(committed.text)["services"]["db"]
    # Compose expands ${VAR} as Syntra does; every other $ reaches the container as written.
    assert db["command"] == ["postgres", "-c", "password=${REVIEW_DB_PASS}", "$$HOME", "$$5"]
    assert db["healthcheck"]["test"] == ["CMD-SHELL", "check ${REVIEW_DB_PASS} $$HOSTNAME"]
    run = compose.stack(ctx.loaded, ctx.plan, {"postgres:16": "postgres:16"})
    assert run.services["db"]["command"][2] == "password=hunter2hunter2"  # what `up` runs


def test_a_lock_entry_cannot_repoint_a_reference_that_names_its_digest() -> None:
    pinned, other = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    entry = {"digest": other, "platforms": {}}
    text = json.dumps({"version": 1, "images": {f"alpine:3.20@{pinned}": entry}})
    with pytest.raises(SyntraError, match=f"the reference names {pinned} itself"):
        parse(text.encode())
    assert parse(text.replace(other, pinned).encode()).images


def test_the_collector_warning_shows_no_credentials() -> None:
    endpoint = "https://alice:s3cr3t-token@otel.example:4318/v1/traces?api-key=abcd"
    assert _shown(endpoint) == "https://otel.example:4318/v1/traces"
    assert _shown("http://collector:port/x") == "the configured endpoint"
