"""One WASI preview 1 surface, three hosts: the same guests that import WASI — Rust with
`std` and a panic path, C with `printf`, a guest that exits — built by Syntra's own
language modules (Debian's cargo, clang with wasi-libc), then called under wasmtime, under
wasm3 and in Debian's headless Chromium through the generated bundle; every call's
result, trap or exit, the guest's account of it and its stdout must agree."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from syntra.config.model import CGuest, RustGuest
from syntra.errors import SyntraError
from syntra.plugins.sandbox import CallResult, GuestFailure, open_runtime, run_tests
from syntra.wasm import web
from syntra.wasm.languages import language
from tests.support.browser import chromium, guest_plan, serving

pytestmark = pytest.mark.e2e

CARGO_TOML = """\
[package]
name = "boom"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]
"""
LIB_RS = """\
#[no_mangle]
pub extern "C" fn boom(n: i32) -> i32 {
    if n > 0 {
        panic!("boom {}", n);
    }
    println!("fine {}", n);
    n
}

#[no_mangle]
pub extern "C" fn env_count() -> i32 {
    std::env::vars().count() as i32
}

#[no_mangle]
pub extern "C" fn twice(x: i64) -> i64 {
    x.wrapping_mul(2)
}
"""
STDIO_C = """\
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

__attribute__((export_name("hello")))
int hello(int n) { printf("hello %d\\n", n); return 2 * n; }

__attribute__((export_name("quit")))
int quit(int n) { fprintf(stderr, "bye %d\\n", n); exit(n); }

__attribute__((export_name("tty")))
int tty(void) { return isatty(1); }

__attribute__((export_name("no_files")))
int no_files(void) { return fopen("/etc/hostname", "r") == NULL; }

__attribute__((export_name("no_env")))
int no_env(void) { return getenv("PATH") == NULL; }

__attribute__((export_name("clock_ok")))
int clock_ok(void) { return time(NULL) > 1600000000; }

__attribute__((export_name("entropy")))
int entropy(void) { char buffer[16]; return getentropy(buffer, sizeof buffer); }

__attribute__((export_name("noise")))
int noise(void) { printf("%08x%08x\\n", arc4random(), arc4random()); return 0; }
"""
CALLS: list[tuple[str, str, list[Any]]] = [
    ("boom", "boom", [0]),
    ("boom", "boom", [7]),
    ("boom", "env_count", []),
    ("stdio", "hello", [21]),
    ("stdio", "quit", [3]),
    ("stdio", "quit", [0]),
    ("stdio", "tty", []),
    ("stdio", "no_files", []),
    ("stdio", "no_env", []),
    ("stdio", "clock_ok", []),
    ("stdio", "entropy", []),
]
# What every host must give (the hosts' own words for a trap aside).
EXPECTED: list[tuple[str, Any, str]] = [
    ("value", 0, "fine 0\n"),
    ("trapped", "thread '<unnamed>' panicked at 'boom 7', src/lib.rs:4:9", ""),
    ("value", 0, ""),
    ("value", 42, "hello 21\n"),
    ("the guest exited with code 3", "bye 3", ""),
    ("the guest exited with code 0", "bye 0", ""),
    ("value", 1, ""),
    ("value", 1, ""),
    ("value", 1, ""),
    ("value", 1, ""),
    ("value", 0, ""),
]
LIMITS = {"max_mem": 16 << 20, "max_ms": 5000, "fuel": None}
# The page's own calls (syntra.yaml's `tests:`): an i64 past 2^53 compared exactly.
PAGE_TESTS: dict[str, list[dict[str, Any]]] = {
    "boom": [
        {"call": "boom", "args": [0], "expect": 0},
        {"call": "twice", "args": [4611686018427387903], "expect": 9223372036854775806},
    ],
    "stdio": [{"call": "hello", "args": [21], "expect": 42}, {"call": "tty", "expect": 1}],
}
ERROR = re.compile(r"^(?P<call>\w+\([^)]*\)): (?P<how>trapped|the guest exited with code \d+)"
                   r"(?P<cause>.*?)(?: \(guest: (?P<guest>.*)\))?$")  # fmt: skip
CALL = """async ([module, name, args]) => {
  const guest = await import(module);
  try {
    return { value: guest.functions[name](...args), stdout: guest.output() };
  } catch (error) {
    return { error: error.message, kind: error.name, stdout: guest.output() };
  }
}"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two guests, compiled as `doit` compiles them."""
    root = tmp_path_factory.mktemp("wasi")
    (root / "boom" / "src").mkdir(parents=True)
    (root / "boom" / "Cargo.toml").write_text(CARGO_TOML)
    (root / "boom" / "src" / "lib.rs").write_text(LIB_RS)
    (root / "stdio").mkdir()
    (root / "stdio" / "stdio.c").write_text(STDIO_C)
    settings: dict[str, Any] = {
        "boom": RustGuest(language="rust", source="boom"),
        "stdio": CGuest(language="c", source="stdio"),
    }
    built = {}
    for name, own in settings.items():
        plan = dataclasses.replace(
            guest_plan(name, []), language=own.language, settings=own, source=name
        )
        output = root / f"{name}.wasm"
        language(own.language).compile(plan, root, output, 0, root / "cache")
        built[name] = output
    return built


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _outcome(value: Any, error: str | None, stdout: str) -> tuple[str, Any, str]:
    """(`value`, the value, stdout) or (how it ended, the guest's account, stdout)."""
    if error is None:
        return "value", value, stdout
    found = ERROR.match(error)
    assert found, error
    return found["how"], found["guest"], stdout


def _in_sandbox(runtime: str, built: dict[str, Path], cache: Path) -> list[tuple[str, Any, str]]:
    hosts = {name: open_runtime(runtime, name, wasm, LIMITS, cache) for name, wasm in built.items()}
    outcomes = []
    try:
        for guest, call, args in CALLS:
            try:
                result = hosts[guest].call(call, args)
            except SyntraError as failed:
                outcomes.append(_outcome(None, str(failed), ""))
            else:
                outcomes.append(_outcome(result.value, None, result.stdout))
    finally:
        for host in hosts.values():
            host.close()
    return outcomes


def test_wasmtime_and_wasm3_give_the_same_results_traps_and_output(
    built: dict[str, Path], tmp_path: Path
) -> None:
    assert _in_sandbox("wasmtime", built, tmp_path / "cache") == EXPECTED
    assert _in_sandbox("wasm3", built, tmp_path / "cache") == EXPECTED
    for runtime in ("wasmtime", "wasm3"):  # what the page expects, the sandbox gives
        host = open_runtime(runtime, "boom", built["boom"], LIMITS, tmp_path / "cache")
        assert host.call("twice", [4611686018427387903]).value == 9223372036854775806
        host.close()


def test_runtimes_that_write_different_output_disagree(
    built: dict[str, Path], tmp_path: Path
) -> None:
    """The tests compare what each runtime wrote to stdout, not only the values."""
    plan = dataclasses.replace(
        guest_plan("stdio", [{"call": "hello", "args": [2]}, {"call": "noise"}]),
        runtimes=["wasmtime", "wasm3"],
        limits=LIMITS,
    )
    passed: list[CallResult] = []
    with pytest.raises(GuestFailure) as disagree:
        passed.extend(run_tests(plan, built["stdio"], tmp_path / "cache"))
    assert [(r.call, r.stdout) for r in passed] == [("hello", "hello 2\n")]
    assert re.fullmatch(
        r'noise\(\): the runtimes disagree: wasmtime wrote "[0-9a-f]{16}\\n", '
        r'wasm3 wrote "[0-9a-f]{16}\\n"',
        str(disagree.value),
    ), disagree.value


def test_the_errors_are_one_line_with_the_guest_s_words(
    built: dict[str, Path], tmp_path: Path
) -> None:
    for runtime, trap in (
        ("wasmtime", "trapped: wasm trap: wasm `unreachable` instruction executed"),
        ("wasm3", "trapped under wasm3: [trap] unreachable executed"),
    ):
        host = open_runtime(runtime, "boom", built["boom"], LIMITS, tmp_path / "cache")
        with pytest.raises(SyntraError) as failed:
            host.call("boom", [1])
        host.close()
        assert str(failed.value) == (
            f"boom(1): {trap} (guest: thread '<unnamed>' panicked at 'boom 1', src/lib.rs:4:9)"
        )


def test_chromium_gives_what_the_sandbox_gives(
    built: dict[str, Path], browser: Browser, tmp_path: Path
) -> None:
    outcomes = []
    console: list[str] = []
    for name, wasm in built.items():
        folder = tmp_path / "web" / name
        web.build(guest_plan(name, PAGE_TESTS[name]), wasm, folder)
        with serving(folder) as url:
            page = browser.new_page()
            page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
            page.goto(f"{url}/index.html")
            page.wait_for_function("document.body.dataset.status !== 'running'", timeout=30_000)
            results = page.evaluate("window.syntraResults")
            assert [r["ok"] for r in results] == [True] * len(PAGE_TESTS[name]), results
            assert page.evaluate("document.body.dataset.status") == "passed"
            for guest, call, args in CALLS:
                if guest == name:
                    done = page.evaluate(CALL, [f"./{name}.js", call, args])
                    if "error" in done:
                        assert done["kind"] == "GuestFailure", done
                    outcomes.append(_outcome(done.get("value"), done.get("error"), done["stdout"]))
            page.close()
    assert outcomes == EXPECTED
    assert "log: hello 21" in console and "log: fine 0" in console
    assert "error: thread '<unnamed>' panicked at 'boom 7', src/lib.rs:4:9" in console
