"""Web bundles in a real browser: small WAT modules through `syntra.wasm.web`, loaded in
Debian's headless chromium over loopback HTTP, their results compared with the
sandbox's; the Swift guest end to end is in test_web_guest.py."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime
from playwright.sync_api import Browser

from syntra.errors import SyntraError
from syntra.plugins import binary
from syntra.plugins.sandbox import Sandbox
from syntra.wasm import web
from tests.conftest import REPO
from tests.support.browser import chromium, guest_plan, serving, visit

LIMITS = {"max_mem": 1 << 20, "max_ms": 1000}

PURE = """
(module
  (memory (export "memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  (func (export "add") (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
  (func (export "twice-wide") (param i64) (result i64) local.get 0 i64.const 2 i64.mul)
  (func (export "half") (param f64) (result f64) local.get 0 f64.const 0.5 f64.mul)
  (func (export "malloc") (param i32) (result i32) (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get 0)))
    (local.get $p))
  (func (export "byte-sum") (param $p i32) (param $n i32) (result i32) (local $s i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (local.get $n)))
      (local.set $s (i32.add (local.get $s) (i32.load8_u (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 1)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $s)))
"""
PURE_TESTS: list[dict[str, Any]] = [
    {"call": "add", "args": [2, 3], "expect": 5},
    {"call": "add", "args": [-7, 2], "expect": -5},
    {"call": "twice-wide", "args": [1 << 40], "expect": 1 << 41},
    {"call": "half", "args": [3], "expect": 1.5},
    # Past 2^53: compared exactly, BigInt to BigInt (a JSON number would round).
    {"call": "twice-wide", "args": [(1 << 62) - 1], "expect": (1 << 63) - 2},
]
# Values the page does not have: the wrappers are called from outside with these.
OWN: list[tuple[str, list[Any]]] = [
    ("add", [40, 2]),
    ("add", [2147483647, 1]),
    ("twice-wide", [-(1 << 61)]),
    ("half", [-0.25]),
    ("add", [2147483648, 0]),
]

WASI = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "hello from wasm\\n")
  (func (export "hello") (result i32)
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 16))
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.load (i32.const 8)))
  (func (export "clock-ok") (result i32)
    (drop (call $clock (i32.const 0) (i64.const 1) (i32.const 16)))
    (i64.gt_u (i64.load (i32.const 16)) (i64.const 1600000000000000000)))
  (func (export "random-status") (result i32) (call $random (i32.const 128) (i32.const 32)))
  (func (export "argc") (result i32)
    (i32.store (i32.const 16) (i32.const 99))
    (drop (call $args (i32.const 16) (i32.const 20)))
    (i32.load (i32.const 16)))
  (func (export "quit") (call $exit (i32.const 3)))
  (func (export "close") (result i32) (call $close (i32.const 3))))
"""
WASI_TESTS: list[dict[str, Any]] = [
    {"call": "hello", "expect": 16},
    {"call": "clock-ok", "expect": 1},
    {"call": "random-status", "expect": 0},
    {"call": "argc", "expect": 0},
]


def bundled(folder: Path, name: str, wat: str, tests: list[dict[str, Any]]) -> Path:
    wasm = folder / "build" / f"{name}.wasm"
    wasm.parent.mkdir(parents=True)
    wasm.write_bytes(wasmtime.wat2wasm(wat))
    bundle = web.build(guest_plan(name, tests), wasm, folder / "dist" / "web" / name)
    assert bundle.files == sorted(
        [f"{name}.wasm", f"{name}.js", f"{name}.d.ts", "_wasi.js", "index.html"]
    )
    return wasm


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def pure(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("pure")
    return root, bundled(root, "numbers", PURE, PURE_TESTS)


def _plain(value: Any) -> Any:
    return int(value["bigint"]) if isinstance(value, dict) and "bigint" in value else value


@pytest.mark.e2e
def test_the_page_and_the_wrappers_give_the_sandbox_s_results(
    browser: Browser, pure: tuple[Path, Path], tmp_path: Path, screenshot: Path
) -> None:
    root, wasm = pure
    seen = visit(browser, root / "dist" / "web" / "numbers", "numbers.js", screenshot, OWN)
    sandbox = Sandbox("numbers", wasm, {"max_mem": 1 << 20, "max_ms": 1000}, tmp_path / "cache")
    for test, result in zip(PURE_TESTS, seen.results, strict=True):
        expected = sandbox.call(test["call"], test["args"]).value
        got = int(result["value"]) if isinstance(result["value"], str) else result["value"]
        assert result["ok"] is True and got == expected == test["expect"], result
    own = [_plain(call.get("value", call.get("error"))) for call in seen.calls]
    assert own[0] == sandbox.call("add", [40, 2]).value == 42
    assert own[1] == sandbox.call("add", [2147483647, 1]).value == -(1 << 31)  # wraps
    assert own[2] == sandbox.call("twice-wide", [-(1 << 61)]).value == -(1 << 62)
    assert own[3] == sandbox.call("half", [-0.25]).value == -0.125
    # Out of i32's range: the wrapper refuses it, as the sandbox does.
    assert own[4] == "TypeError: add argument 1: expected an integer (i32), got 2147483648"
    with pytest.raises(SyntraError, match="out of range for i32"):
        sandbox.call("add", [2147483648, 0])
    assert not [line for line in seen.console if line.startswith("error")] and not seen.errors
    assert screenshot.stat().st_size > 1000
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.e2e
def test_strings_cross_through_the_guest_s_allocator(
    browser: Browser, pure: tuple[Path, Path]
) -> None:
    root, _ = pure
    folder = root / "dist" / "web" / "numbers"
    typings = (folder / "numbers.d.ts").read_text()
    assert "export function writeString(text: string): [pointer: number, length: number];" in (
        typings
    )
    assert "export function twiceWide(a0: number | bigint): bigint;" in typings
    # Parameter names where the module records them (its `name` section), else a0, a1.
    assert "export function byteSum(p: number, n: number): number;" in typings
    probe = folder / "probe.html"  # a page of the test's own, beside the bundle
    probe.write_text(
        '<meta charset="utf-8">\n<script type="module">\nimport * as g from "./numbers.js";\n'
        'const [p, n] = g.writeString("Adä");\n'
        "window.done = {sum: g.byteSum(p, n), back: g.readString(p, n), length: n};\n"
        "</script>\n",
        encoding="utf-8",
    )
    try:
        with serving(folder) as url:
            page = browser.new_page()
            page.goto(f"{url}/probe.html")
            page.wait_for_function("window.done !== undefined", timeout=30_000)
            done = page.evaluate("window.done")
            page.close()
    finally:
        probe.unlink()
    assert done == {"sum": ord("A") + ord("d") + 0xC3 + 0xA4, "back": "Adä", "length": 4}


@pytest.mark.e2e
def test_the_wasi_shim_logs_tells_time_and_refuses_the_rest(
    browser: Browser, tmp_path: Path, screenshot: Path
) -> None:
    bundled(tmp_path, "wasi", WASI, WASI_TESTS)
    calls: list[tuple[str, list[Any]]] = [("quit", []), ("close", [])]
    seen = visit(browser, tmp_path / "dist" / "web" / "wasi", "wasi.js", screenshot, calls)
    assert [(r["call"], r.get("value"), r["ok"]) for r in seen.results] == [
        (t["call"], t["expect"], True) for t in WASI_TESTS
    ]
    assert "log: hello from wasm" in seen.console
    # The sandbox's policy: proc_exit ends the call with its code; no file but stdio.
    assert seen.calls == [
        {"error": "GuestFailure: quit(): the guest exited with code 3"},
        {"value": 8},  # EBADF
    ]
    sandbox = Sandbox("wasi", tmp_path / "build" / "wasi.wasm", LIMITS, tmp_path / "cache")
    with pytest.raises(SyntraError, match=r"^quit\(\): the guest exited with code 3$"):
        sandbox.call("quit", [])
    assert sandbox.call("close", []).value == 8
    assert not [line for line in seen.console if line.startswith("error")] and not seen.errors


def test_the_bundle_is_the_same_bytes_every_time(tmp_path: Path) -> None:
    first = bundled(tmp_path / "a", "numbers", PURE, PURE_TESTS).parent.parent
    second = bundled(tmp_path / "b", "numbers", PURE, PURE_TESTS).parent.parent
    files = web.bundle_files(first / "dist" / "web" / "numbers")
    assert files == web.bundle_files(second / "dist" / "web" / "numbers")
    page = files["index.html"].decode()
    assert "<title>numbers in the browser</title>" in page
    assert '"call": "twice-wide"' in page or '"call":"twice-wide"' in page
    assert b"WebAssembly.instantiateStreaming" in files["numbers.js"]


def test_foreign_imports_are_one_line(tmp_path: Path) -> None:
    wasm = tmp_path / "host.wasm"
    wasm.write_bytes(wasmtime.wat2wasm('(module (import "env" "log" (func (param i32))))'))
    with pytest.raises(SyntraError) as refused:
        web.build(guest_plan("host", []), wasm, tmp_path / "out")
    assert str(refused.value) == (
        "it imports env.log, which a browser page cannot give it "
        "(the bundle provides wasi_snapshot_preview1 only)"
    )
    assert not (tmp_path / "out").exists()


COMPONENT = b"\x00asm\x0d\x00\x01\x00"


def test_components_need_jco_and_use_it_when_it_is_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wasm = tmp_path / "greet.wasm"
    wasm.write_bytes(COMPONENT)
    folder = tmp_path / "dist" / "web" / "greet"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    missing = web.build(guest_plan("greet", []), wasm, folder)
    assert missing.files == [] and not folder.exists()
    assert missing.note == (
        "a component: its web bundle needs jco (npm install -g @bytecodealliance/jco)"
    )
    monkeypatch.setenv("PATH", f"{REPO / 'tests' / 'standins'}{os.pathsep}/usr/bin:/bin")
    made = web.build(guest_plan("greet", []), wasm, folder)
    assert made.files == ["greet.js", "interfaces/wasi.d.ts"] and made.note == "transpiled by jco"
    assert re.search(r"transpiled = true", (folder / "greet.js").read_text())
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # jco gone: no stale bundle left to attach
    assert web.build(guest_plan("greet", []), wasm, folder).files == [] and not folder.exists()


def test_export_names_become_identifiers_that_clash_with_nothing() -> None:
    names = ["next-color", "i32", "class", "9lives", "next_color", "delete", "1st"]
    assert web.js_names(names) == {
        "next-color": "nextColor",
        "i32": "_i32",
        "class": "_class",
        "9lives": "_9lives",
        "next_color": "next_color",
        "delete": "_delete",
        "1st": "_1st",
    }
    with pytest.raises(SyntraError) as refused:
        web.js_names(["add-one", "addOne"])
    assert str(refused.value) == (
        "the exports 'add-one' and 'addOne' would both be 'addOne' in JavaScript: rename one"
    )


def test_colliding_export_names_and_a_module_without_exports_are_one_line(
    tmp_path: Path,
) -> None:
    wasm = tmp_path / "clash.wasm"
    wasm.write_bytes(
        wasmtime.wat2wasm(
            '(module (func (export "add-one") (result i32) i32.const 1)'
            ' (func (export "addOne") (result i32) i32.const 2))'
        )
    )
    with pytest.raises(SyntraError, match=r"^the exports 'add-one' and 'addOne' would both"):
        web.build(guest_plan("clash", []), wasm, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    wasm.write_bytes(wasmtime.wat2wasm('(module (memory (export "memory") 1))'))
    with pytest.raises(SyntraError) as empty:
        web.build(guest_plan("clash", []), wasm, tmp_path / "out")
    assert str(empty.value) == (
        "it exports no function, so a page has nothing to call (export one, or name it in "
        "`exports:`)"
    )
    assert not (tmp_path / "out").exists()


def test_export_names_cannot_write_code_into_the_bundle(tmp_path: Path) -> None:
    """A module's export names are its author's text: in the generated JavaScript and
    typings they are identifiers of our own, JSON strings, or comments they cannot end."""
    hostile = ["x */ globalThis.pwned = 1; /*", "y\\nglobalThis.pwned = 2", "fetch", "BigInt"]
    funcs = [f'(func (export "{n}") (param i32) (result i32) local.get 0)' for n in hostile]
    wat = f"(module {' '.join(funcs)})"
    bundled(tmp_path, "evil", wat, [])
    folder = tmp_path / "dist" / "web" / "evil"
    strings = re.compile(r'"(?:[^"\\]|\\.)*"')
    for file in ("evil.js", "evil.d.ts"):
        text = (folder / file).read_text()
        for line in text.splitlines():
            if line.startswith(("/**", "//")):  # a comment stays one comment
                assert "*/" not in line.removeprefix("/**").removesuffix("*/"), (file, line)
            else:  # code: the names only inside JSON strings
                assert "pwned" not in strings.sub('""', line), (file, line)
        assert "function fetch(" not in text and "function BigInt(" not in text
        assert "function _fetch(" in text and "function _BigInt(" in text


def test_parameter_names_come_from_the_module_when_it_records_them(tmp_path: Path) -> None:
    wat = """(module
      (func (export "area") (param $width f64) (param $height-cm f64) (result f64)
        (f64.mul (local.get 0) (local.get 1)))
      (func (export "pick") (param $class i32) (param $class_ i32) (result i32) local.get 0)
      (func (export "same") (param $a-b i32) (param $aB i32) (result i32) local.get 0)
      (func (export "bare") (param i32) (result i32) local.get 0))"""
    bundled(tmp_path, "named", wat, [])
    typings = (tmp_path / "dist" / "web" / "named" / "named.d.ts").read_text()
    assert "export function area(width: number, heightCm: number): number;" in typings
    assert "export function pick(_class: number, class_: number): number;" in typings
    assert "export function same(a0: number, a1: number): number;" in typings  # a clash
    assert "export function bare(a0: number): number;" in typings
    data = wasmtime.wat2wasm(wat)
    assert binary.local_names(bytes(data[:-3])) == {}  # a damaged name section: no names
