"""What each test of a guest did in the last run of its `wasm:<guest>.test` task: its own
outcome and message, for `syntra report` (a failing test does not make the others fail)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from syntra.fsutil import write_atomic
from syntra.paths import guest_tests
from syntra.redaction import redact


class TestOutcome(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    __test__ = False  # not a pytest class

    test: str
    """The call and what it should return, as syntra.yaml declares it: `fib(10) = 55`."""
    outcome: Literal["passed", "failed"]
    message: str
    """What it returned and how long it took, or why it failed."""


class GuestTests(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    guest: str
    tests: list[TestOutcome]


def label(test: dict[str, Any]) -> str:
    """A declared test as one line: `fib(10) = 55`."""
    call = f"{test['call']}({', '.join(json.dumps(a) for a in test.get('args', []))})"
    return call + (f" = {json.dumps(test['expect'])}" if "expect" in test else "")


def keep(root: Path, tests: GuestTests) -> None:
    said = [t.model_copy(update={"message": redact(t.message)}) for t in tests.tests]
    kept = tests.model_copy(update={"tests": said})
    write_atomic(guest_tests(root, tests.guest), (kept.model_dump_json(indent=2) + "\n").encode())


def read(root: Path, guest: str) -> GuestTests | None:
    """The outcomes of the guest's tests in their last run, or None (never run, or not a
    sound file)."""
    try:
        found = GuestTests.model_validate_json(guest_tests(root, guest).read_bytes())
    except (OSError, ValidationError):
        return None
    return found if found.guest == guest else None
