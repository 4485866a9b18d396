"""`doit wasm` for real: swiftc (Embedded Swift), componentize-py, wasm-opt, wasmtime,
and a registry the artifacts are pushed to and pulled back from."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from importlib.metadata import version
from pathlib import Path

import pytest

from syntra.oci import Client
from syntra.paths import plugin_file, plugins_dir, record_path, wasm_cache
from syntra.plugins.binary import kind_of
from syntra.plugins.codecache import default_cache, entry_name
from syntra.supply.contents import Component
from syntra.supply.sbom import describe, normalise
from syntra.wasm import deterministic
from syntra.wasm.compile import recorded_toolchain
from syntra.wasm.languages.python import components as python_components
from syntra.wasm.languages.swift import components as swift_components
from syntra.wasm.optimize import feature_flags, target_features
from tests.conftest import REPO, commit, git, ran, run, skopeo
from tests.support.oci import layer_files, validate
from tests.support.projects import SHOWCASE, wasm_project
from tests.support.sboms import assert_valid

pytestmark = pytest.mark.e2e

STANDINS = REPO / "tests" / "standins"

MISBEHAVING_WIT = """\
package syntra:tests;

world misbehave {
    enum color { red, green, blue }
    flags perms { read, write, exec }

    export fib: func(n: u32) -> u64;
    export spin: func() -> u32;
    export hog: func(megabytes: u32) -> u32;
    export check: func(n: s64) -> result<u64, string>;
    export next-color: func(c: color, wrap: bool) -> option<color>;
    export grant: func(p: perms) -> list<string>;
    export total: func(items: list<f32>) -> f32;
}
"""
MISBEHAVING_APP = """\
import componentize_py_types
import wit_world


class WitWorld(wit_world.WitWorld):
    def fib(self, n: int) -> int:
        a, b = 0, 1
        for _ in range(n):
            a, b = b, a + b
        return a

    def spin(self) -> int:
        while True:
            pass

    def hog(self, megabytes: int) -> int:
        return len(bytearray(megabytes * 1024 * 1024))

    def check(self, n: int) -> int:
        if n < 0:
            raise componentize_py_types.Err("negative")
        return n

    def next_color(self, c, wrap):
        order = list(wit_world.Color)
        index = order.index(c) + 1
        return order[index % len(order)] if index < len(order) or wrap else None

    def grant(self, p):
        return [flag.name.lower() for flag in wit_world.Perms if flag in p]

    def total(self, items):
        return sum(items)
"""
# Typed calls, each with the value it must return: every kind of WIT value crosses.
TYPED_CALLS = (
    "{call: check, args: [5], expect: {ok: 5}}, "
    "{call: check, args: [-5], expect: {err: negative}}, "
    "{call: next-color, args: [red, false], expect: green}, "
    "{call: next-color, args: [blue, false], expect: null}, "
    "{call: next-color, args: [blue, true], expect: red}, "
    "{call: grant, args: [[exec, read]], expect: [read, exec]}, "
    "{call: total, args: [[0.1, 0.2, 1]], expect: 1.3, approx: 1e-6}, "
)
SPIN_SWIFT = """\
@_expose(wasm, "spin")
@_cdecl("spin")
public func spin() -> Int32 {
    var i: Int32 = 0
    while true { i &+= 1 }
}
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, registry: str) -> tuple[Path, str]:
    """The showcase guests built, tested and published once for this module."""
    root = wasm_project(tmp_path_factory.mktemp("wasm") / "repo", registry)
    done = run(root, "doit", "wasm")
    assert done.returncode == 0, done.stdout + done.stderr
    return root, done.stdout


def test_both_guests_build_pass_their_calls_and_publish(built: tuple[Path, str]) -> None:
    _, output = built
    assert ran(output) == [
        f"wasm:{guest}.{step}"
        for guest in ("fib-swift", "fib-python")
        for step in ("compile", "optimize", "test", "publish")
    ]
    assert "fib-swift: fib(24) = 46368 in " in output
    assert "fib-python: fib(24) = 46368 in " in output
    assert (
        "fib-python: component, " in output
        and "(wasm-opt cannot read components: kept as built)" in output
    )


def test_python_component_sbom_lists_what_it_embeds(
    built: tuple[Path, str], tmp_path: Path
) -> None:
    """CPython's version is read from the component itself; componentize-py's from what
    the build recorded; packages vendored in the guest's folder from their metadata."""
    root, _ = built
    wasm = (plugin_file(root, "fib-python")).read_bytes()
    source = tmp_path / "guest"
    shutil.copytree(root / "WebAssembly" / "Guest" / "Python", source)
    (source / "pricing").mkdir()
    (source / "pricing" / "__init__.py").write_text("RATE = 0.19\n")
    (source / "pricing-1.2.0.dist-info").mkdir()
    (source / "pricing-1.2.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: Pricing_Rules\nVersion: 1.2.0\n"
    )
    tools = recorded_toolchain(plugins_dir(root) / "raw" / "fib-python.tools.json")
    assert tools == {"componentize-py": version("componentize-py")}
    parts = python_components(wasm, source, tools)
    embedded = subprocess.run(["strings", "-n", "6"], input=wasm, capture_output=True,
                              check=True).stdout.decode()  # fmt: skip
    assert [p.purl for p in parts] == [
        f"pkg:generic/cpython@{parts[0].version}",
        f"pkg:pypi/componentize-py@{version('componentize-py')}",
        "pkg:pypi/pricing-rules@1.2.0",
    ]
    assert re.search(rf"^{re.escape(parts[0].version)} \(main,", embedded, re.MULTILINE)
    artifact = Component("fib-python", "1.0.0", "pkg:generic/fib-python@1.0.0", "application",
                         hashlib.sha256(wasm).hexdigest(), tuple(parts))  # fmt: skip
    spdx, bom = (json.loads(describe(fmt, artifact)) for fmt in ("spdx-json", "cyclonedx-json"))
    spdx = normalise("spdx-json", json.dumps(spdx).encode(), "sha256:0", 0)
    bom = normalise("cyclonedx-json", json.dumps(bom).encode(), "sha256:0", 0)
    assert_valid(spdx, bom, tmp_path)
    assert {c["purl"] for c in bom["components"]} == {p.purl for p in parts}


def test_swift_dependencies_come_from_package_resolved(tmp_path: Path) -> None:
    (tmp_path / "Package.resolved").write_text(json.dumps({"version": 2, "pins": [
        {"identity": "swift-argument-parser", "kind": "remoteSourceControl",
         "location": "https://github.com/apple/swift-argument-parser.git",
         "state": {"revision": "c8ed701b", "version": "1.3.0"}},
        {"identity": "wasmkit", "kind": "remoteSourceControl",
         "location": "git@github.com:swiftwasm/WasmKit.git", "state": {"revision": "7a1f2e"}},
    ]}))  # fmt: skip
    parts = swift_components(tmp_path, {"swift": "6.3.1"})
    assert [p.purl for p in parts] == [
        "pkg:generic/swift@6.3.1",
        "pkg:swift/github.com/apple/swift-argument-parser@1.3.0",
        "pkg:swift/github.com/swiftwasm/WasmKit@7a1f2e",
    ]


def test_kinds_and_optimisation(built: tuple[Path, str]) -> None:
    root, output = built
    swift_raw = (plugins_dir(root) / "raw" / "fib-swift.wasm").read_bytes()
    swift = (plugin_file(root, "fib-swift")).read_bytes()
    python = (plugin_file(root, "fib-python")).read_bytes()
    assert (kind_of(swift), kind_of(python)) == ("module", "component")
    assert len(swift) < len(swift_raw)
    assert f"fib-swift: module, {len(swift_raw)} -> {len(swift)} bytes (wasm-opt -Os)" in output
    assert "+bulk-memory" not in str(target_features(swift))  # stripped after use
    assert "--enable-bulk-memory" in feature_flags(target_features(swift_raw))


@pytest.mark.parametrize("guest", ["fib-swift", "fib-python"])
def test_artifact_in_registry_is_valid_and_byte_identical(
    built: tuple[Path, str], registry: str, guest: str
) -> None:
    root, _ = built
    record = json.loads((record_path(root, guest)).read_text())
    client = Client(registry, insecure=True)
    manifest = client.get_manifest(record["repository"], record["tags"][0])
    assert manifest.digest == record["digest"]
    body = manifest.json()
    validate(body, "image-manifest-schema.json")
    config_descriptor, (layer,) = body["config"], body["layers"]
    assert config_descriptor["mediaType"] == "application/vnd.wasm.config.v0+json"
    assert layer["mediaType"] == "application/wasm"
    assert layer["annotations"] == {"org.opencontainers.image.title": f"{guest}.wasm"}
    pulled = client.get_blob(record["repository"], layer["digest"])
    assert pulled == (plugins_dir(root) / f"{guest}.wasm").read_bytes()
    config = json.loads(client.get_blob(record["repository"], config_descriptor["digest"]))
    validate(config_descriptor, "content-descriptor.json")
    assert config["architecture"] == "wasm"
    assert config["layerDigests"] == [layer["digest"]]
    assert config["created"] == body["annotations"]["org.opencontainers.image.created"]
    assert body["annotations"]["org.opencontainers.image.revision"] == git(
        root, "rev-parse", "HEAD"
    )
    if guest == "fib-python":
        assert config["os"] == "wasip2"
        assert "fib" in config["component"]["exports"]
        assert any(name.startswith("wasi:") for name in config["component"]["imports"])
    else:
        assert config["os"] == "wasip1" and "component" not in config


def test_warm_run_does_nothing_and_uses_the_compile_cache(built: tuple[Path, str]) -> None:
    root, _ = built
    compiled = default_cache() / "compiled"  # the user's, outside the repository
    names = {
        entry_name(plugin_file(root, guest).read_bytes(), fuel)
        for guest in ("fib-swift", "fib-python")
        for fuel in (False, True)
    }
    entries = [compiled / name for name in names if (compiled / name).is_file()]
    before = {p: p.stat().st_mtime_ns for p in entries}
    assert len(before) >= 2 and not list(wasm_cache(root).glob("*.cwasm"))
    assert ran(run(root, "doit", "wasm").stdout) == []
    config = root / "syntra.yaml"
    config.write_text(config.read_text().replace("max_ms: 5000", "max_ms: 4000"))
    again = run(root, "doit", "wasm")
    assert ran(again.stdout) == ["wasm:fib-python.test"]
    assert "fib-python: fib(24) = 46368" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in entries} == before


def test_changed_source_rebuilds_only_that_guest(built: tuple[Path, str], tmp_path: Path) -> None:
    root, _ = built
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    assert ran(run(copy, "doit", "wasm").stdout) == []
    swift = copy / "WebAssembly" / "Guest" / "Swift" / "Fib.swift"
    swift.write_text(swift.read_text() + "// comment\n")
    assert ran(run(copy, "doit", "wasm").stdout) == ["wasm:fib-swift.compile"]


def test_guests_and_their_artifacts_are_reproducible(tmp_path: Path, registry: str) -> None:
    """Two clean builds in two directories: the same wasm bytes and artifact digests,
    for Embedded Swift and for componentize-py (on Syntra's deterministic host)."""
    digests = []
    for attempt in ("a", "b/deeper"):
        root = wasm_project(tmp_path / attempt, registry)
        os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
        try:
            done = run(root, "doit", "wasm")
        finally:
            del os.environ["SOURCE_DATE_EPOCH"]
        assert done.returncode == 0, done.stdout
        assert "not byte-reproducible" not in done.stdout
        for guest in ("fib-swift", "fib-python"):
            wasm = (plugins_dir(root) / f"{guest}.wasm").read_bytes()
            record = json.loads((record_path(root, guest)).read_text())
            digests.append((guest, hashlib.sha256(wasm).hexdigest(), record["digest"]))
    assert digests[:2] == digests[2:]


def test_limits_stop_misbehaving_guests(tmp_path: Path, registry: str) -> None:
    root = tmp_path / "repo"
    (root / "spin").mkdir(parents=True)
    (root / "spin" / "Spin.swift").write_text(SPIN_SWIFT)
    (root / "hog" / "wit").mkdir(parents=True)
    (root / "hog" / "wit" / "misbehave.wit").write_text(MISBEHAVING_WIT)
    (root / "hog" / "app.py").write_text(MISBEHAVING_APP)
    python = "language: python, source: hog, world: misbehave"
    guests = {
        "spin-swift": "{language: swift, source: spin, limits: {max_ms: 300}, "
        "tests: [{call: spin}]}",
        "spin-python": f"{{{python}, limits: {{max_ms: 500}}, "
        f"tests: [{{call: fib, args: [10], expect: 55}}, {TYPED_CALLS}{{call: spin}}]}}",
        "hog-python": f"{{{python}, limits: {{max_mem: 64Mi, max_ms: 5000}}, "
        "tests: [{call: hog, args: [8]}, {call: hog, args: [200]}]}",
        "fuel-swift": "{language: swift, source: spin, limits: {fuel: 100000}, "
        "tests: [{call: spin}]}",
    }
    (root / "syntra.yaml").write_text(
        "version: 1\nproject: {name: limits}\nwasm:\n"
        + "".join(f"  {k}: {v}\n" for k, v in guests.items())
    )
    git(root, "init", "-q", "-b", "main")
    commit(root, "guests")
    outcomes = {}
    for name in guests:
        done = run(root, "doit", f"wasm:{name}.test")
        outcomes[name] = done.returncode, done.stdout
    assert outcomes["spin-swift"][0] != 0
    assert "wasm test spin-swift: spin(): stopped by max_ms=300 after " in outcomes["spin-swift"][1]
    assert "spin-python: fib(10) = 55" in outcomes["spin-python"][1]
    for line in (
        'check(5) = {"ok": 5}', 'check(-5) = {"err": "negative"}',
        'next-color("red", false) = "green"', 'next-color("blue", false) = null',
        'next-color("blue", true) = "red"', 'grant(["exec", "read"]) = ["read", "exec"]',
        "total([0.1, 0.2, 1]) = 1.29999",
    ):  # fmt: skip
        assert f"spin-python: {line}" in outcomes["spin-python"][1], outcomes["spin-python"][1]
    assert (
        "wasm test spin-python: spin(): stopped by max_ms=500 after " in outcomes["spin-python"][1]
    )
    assert "hog-python: hog(8) = 8388608" in outcomes["hog-python"][1]
    assert (
        f"wasm test hog-python: hog(200): stopped by max_mem={64 << 20} bytes"
        in outcomes["hog-python"][1]
    )
    assert (
        "wasm test fuel-swift: spin(): stopped by fuel=100000 (all fuel consumed)"
        in outcomes["fuel-swift"][1]
    )


def test_wasi_mode_without_an_sdk_says_what_to_do(tmp_path: Path, registry: str) -> None:
    root = wasm_project(tmp_path / "repo", registry)
    text = (root / "syntra.yaml").read_text().replace("mode: embedded", "mode: wasi")
    (root / "syntra.yaml").write_text(text)
    done = run(root, "doit", "wasm:fib-swift.compile")
    assert done.returncode != 0
    assert (
        "wasm compile fib-swift: mode wasi needs a Swift SDK for WebAssembly and "
        "`swift sdk list` shows none: install one with `swift sdk install`, or use mode: embedded"
    ) in done.stdout


def test_wasi_mode_with_an_sdk_runs_swift_build(tmp_path: Path, registry: str) -> None:
    """Contract test: no Swift SDK for WebAssembly can be installed here."""
    root = wasm_project(tmp_path / "repo", registry)
    text = (
        (root / "syntra.yaml").read_text().replace("mode: embedded", "mode: wasi\n    product: Fib")
    )
    (root / "syntra.yaml").write_text(text)
    log = tmp_path / "swift.jsonl"
    env = {"PATH": f"{STANDINS}:{os.environ['PATH']}", "STANDIN_LOG": str(log)}
    done = run(root, "doit", "wasm:fib-swift.compile", env=env)
    assert done.returncode == 0, done.stdout
    calls = [json.loads(line)["argv"] for line in log.read_text().splitlines()]
    source = str(root / "WebAssembly" / "Guest" / "Swift")
    assert calls == [
        ["sdk", "list"],
        [
            "build",
            "--package-path",
            source,
            "--swift-sdk",
            "swift-6.3-RELEASE_wasm",
            "-c",
            "release",
            "--product",
            "Fib",
        ],
    ]


def test_images_bundle_plugins_and_rebuild_when_one_changes(
    tmp_path: Path, registry: str, base: str
) -> None:
    root = wasm_project(tmp_path / "repo", registry)
    text = (root / "syntra.yaml").read_text()
    text = text[: text.index("  fib-python:")]
    (root / "app").mkdir()
    (root / "app" / "index.html").write_text("hi\n")
    (root / "syntra.yaml").write_text(
        text
        + "images:\n  host:\n    context: app\n"
        + f"    base: {base}\n    plugins: [fib-swift]\n    platforms: [linux/arm64]\n"
    )
    first = run(root, "doit")
    assert first.returncode == 0, first.stdout
    assert ran(first.stdout)[-1] == "docker:host"
    record = json.loads((record_path(root, "host")).read_text())
    layout = tmp_path / "pulled"
    image = f"docker://{registry}/plugins/host@{record['platforms'][0]['digest']}"
    skopeo("copy", "-q", "--src-tls-verify=false", image, f"oci:{layout}:x")
    files = layer_files(layout)
    assert files["opt/plugins/fib-swift.wasm"] == plugin_file(root, "fib-swift").read_bytes()
    # The manifest beside it names the published artifact, the exports and the limits.
    (entry,) = json.loads(files["opt/plugins/plugins.json"])["plugins"]
    published = json.loads((record_path(root, "fib-swift")).read_text())
    assert entry["artifact"]["digest"] == published["digest"]
    assert entry["sha256"] == hashlib.sha256(files["opt/plugins/fib-swift.wasm"]).hexdigest()
    assert (entry["kind"], entry["exports"]) == ("module", {"fib": "func(i32) -> i32"})
    assert entry["limits"] == {"max_mem": 64 << 20, "max_ms": 1000, "fuel": None}
    swift = root / "WebAssembly" / "Guest" / "Swift" / "Fib.swift"
    swift.write_text(swift.read_text().replace("var i: Int32 = 0", "var i: Int32 = 0 // counts"))
    assert "docker:host" not in ran(run(root, "doit").stdout)  # same bytes: no rebuild
    double = (
        '@_expose(wasm, "double")\n@_cdecl("double")\n'
        "public func double(_ n: Int32) -> Int32 { n &* 2 }\n"
    )
    swift.write_text(swift.read_text() + double)
    assert ran(run(root, "doit").stdout)[-1] == "docker:host"


def test_swiftpm_package_builds_as_embedded_swift(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "pkg" / "Sources" / "Fib").mkdir(parents=True)
    shutil.copy(SHOWCASE / "Swift" / "Fib.swift", root / "pkg" / "Sources" / "Fib" / "Fib.swift")
    (root / "pkg" / "Package.swift").write_text(
        "// swift-tools-version:6.0\nimport PackageDescription\n\n"
        'let package = Package(name: "Fib",\n'
        '    products: [.executable(name: "Fib", targets: ["Fib"])],\n'
        '    targets: [.executableTarget(name: "Fib")])\n'
    )
    (root / "syntra.yaml").write_text(
        "version: 1\nproject: {name: spm}\nwasm:\n  fib:\n    language: swift\n"
        "    source: pkg\n    mode: embedded\n    product: Fib\n"
        "    tests: [{call: fib, args: [24], expect: 46368}]\n"
    )
    git(root, "init", "-q", "-b", "main")
    commit(root, "package")
    done = run(root, "doit", "wasm")
    assert done.returncode == 0, done.stdout
    assert "fib: fib(24) = 46368" in done.stdout
    assert kind_of((plugin_file(root, "fib")).read_bytes()) == "module"


def test_without_libfaketime_the_build_says_why_it_is_not_reproducible(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deterministic, "LIBFAKETIME", str(tmp_path / "nowhere" / "*.so.1"))
    assert deterministic.host_environment(tmp_path, 1_700_000_000) == (
        {}, "not byte-reproducible: libfaketime is missing (install faketime)"
    )  # fmt: skip


def test_deterministic_host_is_compiled_once(tmp_path: Path) -> None:
    env, caveat = deterministic.host_environment(tmp_path, 1_700_000_000)
    assert caveat is None
    (shim,) = tmp_path.glob("deterministic-*.so")
    assert env["LD_PRELOAD"].startswith(f"{shim}:")
    assert env["FAKETIME"] == "2023-11-14 22:13:20"
    before = shim.stat().st_mtime_ns
    assert deterministic.host_environment(tmp_path, 1_700_000_000) == (env, None)
    assert shim.stat().st_mtime_ns == before


def test_a_commit_outside_the_guests_republishes_nothing(built: tuple[Path, str]) -> None:
    """Runs last: it commits. Same sources, same bytes, same artifact: the new commit's
    tags go onto the artifacts already pushed."""
    root, _ = built
    before = {g: json.loads((record_path(root, g)).read_text())
              for g in ("fib-swift", "fib-python")}  # fmt: skip
    (root / "NOTES.md").write_text("outside every guest\n")
    config = (root / "syntra.yaml").read_text()
    (root / "syntra.yaml").write_text(  # a tag per commit: each commit has tags to push
        config.replace(
            "tags: ['{{ version }}']", "tags: ['{{ version }}', 'sha-{{ git.short_sha }}']"
        )
    )
    commit(root, "docs: notes", when=1_800_000_000)
    done = run(root, "doit", "wasm")
    assert done.returncode == 0, done.stdout
    assert [t for t in ran(done.stdout) if t.endswith(".compile")] == []
    for guest, earlier in before.items():
        now = json.loads((record_path(root, guest)).read_text())
        # Only the manifest went up again, under the new tags: no blob.
        assert now["digest"] == earlier["digest"] and now["uploaded_bytes"] < 4096
        assert now["source_commit"] != earlier["source_commit"]
        client = Client(str(now["registry"]), insecure=True)
        assert client.head_manifest(now["repository"], now["tags"][1]) == earlier["digest"]


def test_a_component_s_web_bundle_needs_jco_and_nothing_else_fails(
    built: tuple[Path, str], tmp_path: Path
) -> None:
    root, _ = built
    copy = tmp_path / "repo"
    shutil.copytree(root, copy, symlinks=True)
    config = copy / "syntra.yaml"
    config.write_text(
        config.read_text().replace("    world: fib\n", "    world: fib\n    web: true\n")
    )
    commit(copy, "the python guest in the browser")
    done = run(copy, "doit", "wasm:fib-python.web")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "fib-python: a component: its web bundle needs jco "
        "(npm install -g @bytecodealliance/jco); no web bundle\n" in done.stdout
    )
    assert not (copy / "dist" / "web").exists()
