"""The sandbox's compile cache and trap messages, with real wasmtime on small modules."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import wasmtime

from syntra.config.model import SwiftGuest
from syntra.plan import Destination, GuestPlan
from syntra.wasm.sandbox import GuestFailure, run_tests

WAT = """
(module
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "boom") unreachable)
  (func $deep (export "deep") call $deep))
"""


def _guest(tests: list[dict[str, object]]) -> GuestPlan:
    settings = SwiftGuest(language="swift", source="src", mode="embedded")
    return GuestPlan(
        name="tiny", language="swift", settings=settings, source="src", optimize="Os",
        output="tiny.wasm",
        limits={"max_mem": 1 << 20, "max_ms": 1000, "fuel": None}, tests=tests,
        destination=Destination(None, False, "tiny", [], []),
    )  # fmt: skip


@pytest.fixture
def module(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.wasm"
    path.write_bytes(wasmtime.wat2wasm(WAT))
    return path


def test_traps_keep_wasmtime_s_cause(module: Path, tmp_path: Path) -> None:
    causes = {
        "boom": "boom(): trapped: wasm trap: wasm `unreachable` instruction executed",
        "deep": "deep(): trapped: wasm trap: call stack exhausted",
    }
    for call, message in causes.items():
        with pytest.raises(GuestFailure) as failed:
            list(run_tests(_guest([{"call": call, "args": []}]), module, tmp_path / "cache"))
        assert str(failed.value) == message


@pytest.mark.parametrize("damage", ["flip", "truncate", "seal"])
def test_a_damaged_cache_entry_is_compiled_again(
    damage: str, module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    guest = _guest([{"call": "add", "args": [2, 3], "expect": 5}])
    assert [r.value for r in run_tests(guest, module, cache)] == [5]
    entry = next(cache.glob("*.cwasm"))
    data = bytearray(entry.read_bytes())
    if damage == "flip":  # machine code overwritten in the middle
        data[len(data) // 2 : len(data) // 2 + 64] = b"\xcc" * 64
        entry.write_bytes(bytes(data))
    elif damage == "truncate":
        entry.write_bytes(bytes(data[: len(data) // 3]))
    else:
        entry.with_name(entry.name + ".sha256").write_text("0" * 64)
    capsys.readouterr()
    assert [r.value for r in run_tests(guest, module, cache)] == [5]
    assert capsys.readouterr().err == f"compile cache: {entry.name} was damaged; compiling again\n"
    sealed = entry.with_name(entry.name + ".sha256").read_text()
    assert hashlib.sha256(entry.read_bytes()).hexdigest() == sealed
    assert [r.value for r in run_tests(guest, module, cache)] == [5]
    assert capsys.readouterr().err == ""  # repaired: loaded from the cache again
