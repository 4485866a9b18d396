"""What each test of an artifact did the last time its tests ran (`wasm:<guest>.test`,
an image's tests before its push): its own outcome and message, for `syntra report`. A
failing test does not make the others fail, nor hide them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from syntra.fsutil import write_atomic
from syntra.paths import test_outcomes
from syntra.redaction import redact


class TestOutcome(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    __test__ = False  # not a pytest class

    test: str
    """The test as syntra.yaml declares it: `fib(10) = 55`, an image test's label."""
    platform: str
    """Where it ran: an image's platform, `wasm` for a guest."""
    outcome: Literal["passed", "failed"]
    message: str
    """What it returned (and how long it took), or why it failed."""


class ArtifactTests(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    artifact: str
    tests: list[TestOutcome]


def guest_label(test: dict[str, Any]) -> str:
    """A guest's declared test as one line: `fib(10) = 55`."""
    call = f"{test['call']}({', '.join(json.dumps(a) for a in test.get('args', []))})"
    return call + (f" = {json.dumps(test['expect'])}" if "expect" in test else "")


def keep(root: Path, tests: ArtifactTests) -> None:
    said = [t.model_copy(update={"message": redact(t.message)}) for t in tests.tests]
    kept = tests.model_copy(update={"tests": said})
    data = (kept.model_dump_json(indent=2) + "\n").encode()
    write_atomic(test_outcomes(root, tests.artifact), data)


def read(root: Path, artifact: str) -> ArtifactTests | None:
    """The outcomes of the artifact's tests in their last run, or None (never run, or not
    a sound file)."""
    try:
        found = ArtifactTests.model_validate_json(test_outcomes(root, artifact).read_bytes())
    except (OSError, ValidationError):
        return None
    return found if found.artifact == artifact else None
