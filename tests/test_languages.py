"""Rust and C guests for real (Debian's rustc/cargo and clang with wasi-libc), their
tests under wasmtime and wasm3, published, signed and checked with cosign; and the
showcase's Swift, Rust and C `fib` compared call by call."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from syntra.errors import SyntraError
from syntra.paths import plugin_file, plugins_dir, record_path
from syntra.plugins import load_file
from syntra.plugins.binary import kind_of
from syntra.plugins.wasm3host import Wasm3Sandbox
from tests.conftest import Result, commit, git, ran, run
from tests.support.projects import SHOWCASE
from tests.support.signing import PASSPHRASE, SIGNING, cosign

pytestmark = pytest.mark.e2e

CARGO_TOML = """\
[package]
name = "calc-guest"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
itoa = "1"

[profile.release]
panic = "abort"
"""
# A pin into Debian's packaged crates (librust-itoa-dev): the SBOM must list it.
CARGO_LOCK = """\
version = 3

[[package]]
name = "calc-guest"
version = "0.1.0"
dependencies = ["itoa"]

[[package]]
name = "itoa"
version = "1.0.1"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "1aab8fc367588b89dcee83ab0fd66b72b50b72fa1904d7095045ace2b0c81c35"
"""
LIB_RS = """\
#[no_mangle]
pub extern "C" fn digits(n: i64) -> i32 {
    itoa::Buffer::new().format(n).len() as i32
}

#[no_mangle]
pub extern "C" fn mean(a: f64, b: f64) -> f64 {
    (a + b) / 2.0
}
"""
# std with a panic path (fd_write, environ_get, environ_sizes_get, proc_exit) and a crate
# with no Cargo.lock committed: Syntra resolves one, and the SBOM lists the crate.
BOOM_TOML = """\
[package]
name = "boom"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
itoa = "1"
"""
BOOM_RS = """\
#[no_mangle]
pub extern "C" fn boom(n: i64) -> i32 {
    if n > 0 {
        panic!("boom {}", n);
    }
    println!("fine {}", n);
    itoa::Buffer::new().format(n).len() as i32
}
"""
CALC_C = """\
#include <stdint.h>
#include <stdlib.h>

__attribute__((export_name("scale")))
float scale(float x) { return x * FACTOR; }

/* exported by `exports:` in syntra.yaml, not by an attribute */
int64_t twice(int64_t x) { return 2 * x; }

__attribute__((export_name("hog")))
int32_t hog(int32_t megabytes) {
    size_t size = (size_t)megabytes << 20;
    volatile char *block = malloc(size);
    if (block == NULL) return 0;
    block[size - 1] = 1;
    return block[size - 1];
}
"""
# Both runtimes follow the spec, which leaves a NaN's payload open: wasmtime keeps it
# through f32.min, wasm3 returns the canonical NaN.
NAN_C = """\
#include <stdint.h>
#include <string.h>

__attribute__((export_name("nanmin")))
int32_t nanmin(int32_t bits, float other) {
    float x, y;
    memcpy(&x, &bits, 4);
    y = __builtin_wasm_min_f32(x, other);
    memcpy(&bits, &y, 4);
    return bits;
}
"""
SPIN_C = """\
__attribute__((export_name("spin")))
int spin(void) { volatile int i = 0; for (;;) i++; }
"""
GUESTS = """\
wasm:
  fib-swift:
    language: swift
    source: WebAssembly/Guest/Swift
    mode: embedded
  fib-rust:
    language: rust
    source: WebAssembly/Guest/Rust
    runtimes: [wasmtime, wasm3]
    tests: [{call: fib, args: [24], expect: 46368}]
  fib-c:
    language: c
    source: WebAssembly/Guest/C
    runtimes: [wasmtime, wasm3]
    tests: [{call: fib, args: [24], expect: 46368}]
  calc-rust:
    language: rust
    source: calc/rust
    packages: [librust-itoa-dev]
    runtimes: [wasmtime, wasm3]
    tests:
      - {call: digits, args: [-1234567890123], expect: 14}
      - {call: mean, args: [1, 2.5], expect: 1.75}
  boom-rust:
    language: rust
    source: boom
    packages: [librust-itoa-dev]
    runtimes: [wasmtime, wasm3]
    tests: [{call: boom, args: [-12], expect: 3}]
  calc-c:
    language: c
    source: calc/c
    cflags: [-O2, -DFACTOR=3, -Wall, -Werror]
    exports: [twice]
    runtimes: [wasmtime, wasm3]
    limits: {max_mem: 2Mi}
    tests:
      - {call: scale, args: [1.5], expect: 4.5}
      - {call: twice, args: [4611686018427387903], expect: 9223372036854775806}
      - {call: hog, args: [1], expect: 1}
      - {call: hog, args: [8], expect: 0}  # over max_mem: malloc fails in both runtimes
"""


def _project(root: Path, registry: str, guests: str, signing: str = "") -> Path:
    (root / "WebAssembly").mkdir(parents=True)
    shutil.copytree(SHOWCASE, root / "WebAssembly" / "Guest")
    (root / "calc" / "rust" / "src").mkdir(parents=True)
    (root / "calc" / "rust" / "Cargo.toml").write_text(CARGO_TOML)
    (root / "calc" / "rust" / "Cargo.lock").write_text(CARGO_LOCK)
    (root / "calc" / "rust" / "src" / "lib.rs").write_text(LIB_RS)
    (root / "boom" / "src").mkdir(parents=True)
    (root / "boom" / "Cargo.toml").write_text(BOOM_TOML)
    (root / "boom" / "src" / "lib.rs").write_text(BOOM_RS)
    (root / "calc" / "c").mkdir(parents=True)
    (root / "calc" / "c" / "calc.c").write_text(CALC_C)
    (root / ".gitignore").write_text(".syntra/\nkeys/\n")
    (root / "syntra.yaml").write_text(
        "version: 1\n"
        "project: {name: langs, version: 1.0.0}\n"
        f"registries: {{local: {{url: '{registry}', insecure: true}}}}\n"
        "defaults: {tags: ['{{ version }}']}\n" + guests + signing
    )
    git(root, "init", "-q", "-b", "main")
    commit(root, "initial")
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, registry: str) -> tuple[Path, str]:
    """The showcase's fib guests and two guests with more types, built, tested under both
    runtimes, published and signed once for this module."""
    root = _project(tmp_path_factory.mktemp("langs") / "repo", registry, GUESTS, SIGNING)
    keygen = run(root, "syntra", "keygen", env=PASSPHRASE)
    assert keygen.returncode == 0, keygen.stderr
    done = run(root, "doit", "wasm", "supply", env=PASSPHRASE)
    assert done.returncode == 0, done.stdout + done.stderr
    return root, done.stdout


def test_rust_and_c_guests_build_and_pass_under_both_runtimes(built: tuple[Path, str]) -> None:
    root, output = built
    for guest in ("fib-rust", "fib-c", "calc-rust", "calc-c"):
        steps = [task for task in ran(output) if task.startswith(f"wasm:{guest}.")]
        assert steps == [f"wasm:{guest}.{s}" for s in ("compile", "optimize", "test", "publish")]
        assert kind_of(plugin_file(root, guest).read_bytes()) == "module"
    assert "fib-rust: fib(24) = 46368 in " in output
    assert "calc-rust: digits(-1234567890123) = 14 in " in output
    assert "calc-c: twice(4611686018427387903) = 9223372036854775806 in " in output
    assert "calc-c: hog(8) = 0 in " in output
    assert "boom-rust: boom(-12) = 3 in " in output
    assert output.count("(wasmtime; wasm3 agrees)") == 9


def test_the_showcase_fib_agrees_across_languages_and_runtimes(built: tuple[Path, str]) -> None:
    """Swift, Rust and C give the same fib for every n, wrapping alike past 2^31, under
    wasmtime and (Rust, C) under wasm3."""
    root, _ = built
    cache = root / ".syntra" / "cache"
    plugins = [
        load_file(plugin_file(root, guest), cache=cache, runtime=runtime)
        for guest in ("fib-swift", "fib-rust", "fib-c")
        for runtime in ("wasmtime", "wasm3")
    ]
    expected = [0, 1]
    while len(expected) < 50:
        total = (expected[-1] + expected[-2]) & 0xFFFFFFFF
        expected.append(total - (1 << 32) if total >= 1 << 31 else total)
    for plugin in plugins:
        assert [plugin.call("fib", n) for n in range(50)] == expected, plugin.name
    with pytest.raises(SyntraError, match=r"^unknown runtime 'wasm4'; did you mean 'wasm3'\?$"):
        load_file(plugin_file(root, "fib-c"), cache=cache, runtime="wasm4")


def test_published_artifacts_verify_with_cosign(built: tuple[Path, str], registry: str) -> None:
    root, _ = built
    key = str(root / "keys" / "cosign.pub")
    flags = ["--key", key, "--insecure-ignore-tlog=true", "--allow-http-registry"]
    for guest in ("calc-rust", "calc-c"):
        record = json.loads(record_path(root, guest).read_text())
        reference = f"{registry}/langs/{guest}@{record['digest']}"
        signed = cosign("verify", *flags, reference)
        assert signed.returncode == 0, signed.stderr
        pulled = run(root, "syntra", "run", guest, "scale" if guest == "calc-c" else "mean",
                     "2", *(["4"] if guest == "calc-rust" else []))  # fmt: skip
        assert pulled.returncode == 0, pulled.stderr
        assert json.loads(pulled.stdout) == (6.0 if guest == "calc-c" else 3.0)


def _sbom_purls(root: Path, registry: str, guest: str) -> set[str]:
    """The purls of the SPDX SBOM attached to `guest`, as cosign verifies and decodes it."""
    record = json.loads(record_path(root, guest).read_text())
    reference = f"{registry}/langs/{guest}@{record['digest']}"
    flags = ["--key", str(root / "keys" / "cosign.pub"), "--insecure-ignore-tlog=true",
             "--allow-http-registry", "--type", "spdxjson"]  # fmt: skip
    attested = cosign("verify-attestation", *flags, reference)
    assert attested.returncode == 0, attested.stderr
    statement = json.loads(base64.b64decode(json.loads(attested.stdout.splitlines()[0])["payload"]))
    return {
        ref["referenceLocator"]
        for package in statement["predicate"]["packages"]
        for ref in package.get("externalRefs", [])
        if ref["referenceType"] == "purl"
    }


def test_sboms_list_the_toolchains_and_the_cargo_pins(
    built: tuple[Path, str], registry: str
) -> None:
    root, _ = built
    rust = _sbom_purls(root, registry, "calc-rust")
    assert {"pkg:generic/rustc@1.63.0", "pkg:cargo/itoa@1.0.1"} <= rust
    assert not any("calc-guest" in purl for purl in rust)  # the guest itself is the artifact
    c = _sbom_purls(root, registry, "calc-c")
    assert "pkg:generic/clang@14.0.6" in c
    assert any(purl.startswith("pkg:deb/debian/wasi-libc@") for purl in c)


def test_a_rust_sbom_lists_its_crates_without_a_committed_lock(
    built: tuple[Path, str], registry: str
) -> None:
    root, _ = built
    assert not (root / "boom" / "Cargo.lock").exists()  # resolved in the scratch copy only
    rust = _sbom_purls(root, registry, "boom-rust")
    assert {"pkg:generic/rustc@1.63.0", "pkg:cargo/itoa@1.0.1"} <= rust
    # The guest's name, as `syntra run` takes it: its published artifact, not Docker Hub.
    by_name = run(root, "syntra", "sbom", "boom-rust")
    assert by_name.returncode == 0, by_name.stderr
    assert "pkg:cargo/itoa@1.0.1" in by_name.stdout
    typo = run(root, "syntra", "sbom", "boom-rus")
    assert typo.returncode != 0 and typo.stdout == ""
    assert typo.stderr == "no guest 'boom-rus' in syntra.yaml; did you mean 'boom-rust'?\n"


def test_a_rust_panic_is_the_same_under_both_runtimes_with_its_message(
    built: tuple[Path, str],
) -> None:
    root, _ = built
    for runtime, trap in (
        ("wasmtime", "trapped: wasm trap: wasm `unreachable` instruction executed"),
        ("wasm3", "trapped under wasm3: [trap] unreachable executed"),
    ):
        fine = run(root, "syntra", "run", "boom-rust", "boom", "0", "--runtime", runtime,
                   "--json")  # fmt: skip
        assert fine.returncode == 0, fine.stderr
        answer = json.loads(fine.stdout)
        assert (answer["value"], answer["stdout"]) == (1, "fine 0\n")
        boom = run(root, "syntra", "run", "boom-rust", "boom", "1", "--runtime", runtime)
        assert boom.returncode == 3 and boom.stdout == ""
        assert boom.stderr.endswith(
            f"boom(1): {trap} (guest: thread '<unnamed>' panicked at 'boom 1', src/lib.rs:4:9)\n"
        ), boom.stderr


def test_the_wasm3_runtime_from_the_command_line(built: tuple[Path, str]) -> None:
    root, _ = built
    done = run(root, "syntra", "run", "fib-c", "fib", "30", "--runtime", "wasm3")
    assert (done.returncode, done.stdout) == (0, "832040\n"), done.stderr
    fuel = run(root, "syntra", "run", "fib-c", "fib", "30", "--runtime", "wasm3", "--fuel", "99")
    assert fuel.returncode == 2
    assert fuel.stderr == "fib-c: wasm3 cannot meter fuel: drop limits.fuel or wasm3\n"


def test_wasm3_refuses_a_component(tmp_path: Path) -> None:
    component = tmp_path / "guest.wasm"
    component.write_bytes(b"\x00asm\x0d\x00\x01\x00")
    limits = {"max_mem": 1 << 20, "max_ms": 100, "fuel": None}
    with pytest.raises(
        SyntraError, match=r"^guest: wasm3 runs core modules only; this is a component$"
    ):
        Wasm3Sandbox("guest", component, limits, tmp_path)


def test_two_clones_in_two_folders_build_the_same_bytes(tmp_path: Path, registry: str) -> None:
    """The raw compiler output (before wasm-opt strips anything) and the optimised guest."""
    found = []
    for folder in ("one", "two/deeper"):
        root = _project(tmp_path / folder, registry, GUESTS)
        tasks = [f"wasm:{g}.{s}" for g in ("calc-rust", "calc-c") for s in ("compile", "optimize")]
        done = run(root, "doit", *tasks, env={"SOURCE_DATE_EPOCH": "1700000000"})
        assert done.returncode == 0, done.stdout + done.stderr
        found.append(
            [hashlib.sha256(path.read_bytes()).hexdigest()
             for guest in ("calc-rust", "calc-c")
             for path in (plugins_dir(root) / "raw" / f"{guest}.wasm", plugin_file(root, guest))]
        )  # fmt: skip
    assert found[0] == found[1]
    assert str(tmp_path).encode() not in (plugins_dir(root) / "raw" / "calc-rust.wasm").read_bytes()


def test_a_difference_between_runtimes_fails_with_both_values(
    tmp_path: Path, registry: str
) -> None:
    guests = (
        "wasm:\n  nan:\n    language: c\n    source: nan\n    runtimes: [wasmtime, wasm3]\n"
        "    tests: [{call: nanmin, args: [2141192193, 1.0]}]\n"
        "  spin:\n    language: c\n    source: spin\n    runtimes: [wasm3]\n"
        "    limits: {max_ms: 300}\n    tests: [{call: spin}]\n"
    )
    root = _project(tmp_path / "repo", registry, guests)
    for name, text in (("nan", NAN_C), ("spin", SPIN_C)):
        (root / name).mkdir()
        (root / name / f"{name}.c").write_text(text)
    commit(root, "guests")
    done = run(root, "doit", "wasm:nan.test")
    assert done.returncode != 0
    assert (
        "nanmin(2141192193, 1.0): the runtimes disagree: wasmtime returned 2145386497, "
        "wasm3 returned 2143289344" in done.stdout + done.stderr
    )
    spun = run(root, "doit", "wasm:spin.test")
    assert spun.returncode != 0
    assert "spin(): stopped by max_ms=300 after " in spun.stdout + spun.stderr


def test_errors_are_one_line(tmp_path: Path, registry: str) -> None:
    guests = (
        "wasm:\n"
        "  nocargo:\n    language: rust\n    source: calc/rust\n    toolchain: /nonexistent\n"
        "  badc:\n    language: c\n    source: bad/c\n"
        "  badrust:\n    language: rust\n    source: bad/rust\n"
    )
    root = _project(tmp_path / "repo", registry, guests)
    (root / "bad" / "c").mkdir(parents=True)
    (root / "bad" / "c" / "broken.c").write_text("int broken(void) { return undefined_name; }\n")
    shutil.copytree(root / "calc" / "rust", root / "bad" / "rust")
    (root / "bad" / "rust" / "src" / "lib.rs").write_text('pub fn f() -> i32 { "no" }\n')
    commit(root, "broken guests")
    checks = {
        "nocargo": "/nonexistent/rustc is not installed: Rust guests need Debian's rustc and "
        "cargo (apt-get install rustc cargo libstd-rust-dev-wasm32 lld)",
        "badc": "clang failed (exit 1): "
        "broken.c:1:27: error: use of undeclared identifier 'undefined_name'",
        "badrust": "cargo build failed (exit 101): error[E0308]: mismatched types",
    }
    for guest, expected in checks.items():
        done = run(root, "doit", f"wasm:{guest}.compile")
        assert done.returncode != 0
        said = [line for line in done.stdout.splitlines() if line.startswith("wasm compile")]
        assert said == [f"wasm compile {guest}: {expected}"], done.stdout + done.stderr
        assert "Traceback" not in done.stdout + done.stderr


def test_init_finds_a_cargo_crate_and_a_c_folder(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    root = tmp_path / "repo"
    (root / "plugins" / "pricing" / "src").mkdir(parents=True)
    (root / "plugins" / "pricing" / "Cargo.toml").write_text(CARGO_TOML)
    (root / "plugins" / "pricing" / "target" / "x").mkdir(parents=True)  # cargo's, skipped
    (root / "plugins" / "pricing" / "target" / "x" / "gen.c").write_text("int x;\n")
    (root / "native" / "c").mkdir(parents=True)
    (root / "native" / "c" / "calc.c").write_text(CALC_C)
    (root / "tools").mkdir()
    (root / "tools" / "Cargo.toml").write_text("[package]\nname = 'cli'\nversion = '0.1.0'\n")
    shutil.copytree(SHOWCASE, root / "guest", ignore=shutil.ignore_patterns("__pycache__"))
    done = syntra(root, "init")
    assert done.code == 0, done.err
    assert "(0 images from Dockerfiles, 6 guests)" in done.out
    text = (root / "syntra.yaml").read_text()
    assert '  "pricing":\n    language: rust\n    source: "plugins/pricing"\n' in text
    assert '  "native-c":\n    language: c\n    source: "native/c"\n' in text
    assert '  "guest-rust":\n    language: rust\n    source: "guest/Rust"\n' in text
    assert '  "guest-c":\n    language: c\n    source: "guest/C"\n' in text
    assert '    language: python\n    source: "guest/Python"\n    world: fib\n' in text
    assert '    language: swift\n    source: "guest/Swift"\n    mode: embedded' in text
    assert "tools" not in text.split("wasm:")[1]  # a binary crate is not a guest
    assert syntra(root, "validate").code == 0


def test_ci_installs_each_languages_packages(built: tuple[Path, str]) -> None:
    root, _ = built
    done = run(root, "syntra", "ci")
    assert done.returncode == 0, done.stderr
    workflows = [YAML(typ="safe").load(p.read_text()) for p in root.glob(".github/workflows/*.yml")]
    steps = [s for w in workflows for job in w["jobs"].values() for s in job["steps"]]
    (toolchains, *_) = [s for s in steps if s.get("name") == "Guest toolchains"]
    assert toolchains["env"]["PACKAGES"] == (
        "binaryen faketime clang lld wasi-libc libclang-rt-dev-wasm32 "
        "rustc cargo libstd-rust-dev-wasm32 librust-itoa-dev"
    )  # names syntra.yaml validated, handed to apt-get as words of a bash array
    assert 'sudo apt-get install -y "${packages[@]}"' in toolchains["run"]


def test_a_limit_wasm3_cannot_enforce_is_refused_by_validate(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    (tmp_path / "guest").mkdir()
    (tmp_path / "syntra.yaml").write_text(
        "version: 1\nproject: {name: t}\n"
        "wasm:\n  g:\n    language: c\n    source: guest\n"
        "    runtimes: [wasmtime, wasm3]\n    limits: {fuel: 1000}\n"
    )
    done = syntra(tmp_path, "validate")
    assert (done.code, done.out) == (2, "")
    assert done.err == (
        "syntra.yaml:7:15: wasm.g.runtimes: wasm3 cannot meter fuel: drop limits.fuel or wasm3\n"
    )
