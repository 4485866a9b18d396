"""Signed plugins run from the registry: `syntra run` and `syntra.plugins`, for real —
the showcase guests built, pushed and signed once, then pulled, verified, compiled
through the compile cache and called under limits with typed arguments."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from syntra import plugins
from syntra.errors import Refused, SyntraError
from syntra.oci import MANIFEST, Blob, Client, Document
from syntra.paths import plugin_file, record_path
from syntra.registry.local import serve
from tests.conftest import commit, run
from tests.support.projects import wasm_project
from tests.support.signing import COSIGN, PASSPHRASE, SIGNING, cosign

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def own_registry() -> Iterator[str]:
    """A registry of this module's own, whose storage the tampering test edits."""
    with serve() as address:
        yield address


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory, own_registry: str) -> Path:
    root = wasm_project(tmp_path_factory.mktemp("plugins") / "repo", own_registry)
    (root / "syntra.yaml").write_text((root / "syntra.yaml").read_text() + SIGNING)
    commit(root, "signing")
    assert run(root, "syntra", "keygen", env=PASSPHRASE).returncode == 0
    done = run(root, "doit", env=PASSPHRASE)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def _ref(root: Path, guest: str) -> str:
    record = json.loads((record_path(root, guest)).read_text())
    return f"{record['registry']}/{record['repository']}@{record['digest']}"


def test_run_calls_both_guests_with_typed_arguments(signed: Path) -> None:
    assert run(signed, "syntra", "run", "fib-swift", "fib", "24").stdout == "46368\n"
    assert run(signed, "syntra", "run", "fib-python", "fib", "24").stdout == "46368\n"
    greeted = run(signed, "syntra", "run", "fib-python", "greet", "Ada")
    assert greeted.stdout == '"Hello, Ada!"\n', greeted.stderr
    priced = run(signed, "syntra", "run", "fib-python", "price", "100", "0.19", "--json")
    assert priced.returncode == 0, priced.stderr
    answer = json.loads(priced.stdout)
    assert answer["value"] == {"net": 100.0, "vat": 19.0, "gross": 119.0}
    metrics = answer["metrics"]
    assert metrics["verified"] is True and metrics["reference"] == _ref(signed, "fib-python")
    assert metrics["blob_cached"] is True and metrics["compile_cached"] is True
    for key in ("pull_ms", "verify_ms", "compile_ms", "call_ms"):
        assert metrics[key] >= 0


def test_arguments_that_do_not_fit_are_one_line(signed: Path) -> None:
    wrapped = run(signed, "syntra", "run", "fib-swift", "fib", "3000000000")
    assert wrapped.returncode == 2
    assert wrapped.stderr == (
        "fib argument 1: 3000000000 is out of range for i32 (-2147483648..2147483647)\n"
    )
    negative = run(signed, "syntra", "run", "fib-python", "fib", "-1")
    assert negative.stderr == "fib argument 1: -1 is out of range for u32 (0..4294967295)\n"
    wrong = run(signed, "syntra", "run", "fib-python", "price", '"a"', "0.19")
    assert wrong.stderr == 'price argument 1: expected a number (f64), got "a"\n'
    missing = run(signed, "syntra", "run", "fib-python", "fib")
    assert missing.stderr == "fib(u32) takes 1 argument, 0 given\n"


def test_limits_stop_a_call_with_the_measured_value(signed: Path) -> None:
    fuel = run(signed, "syntra", "run", "fib-swift", "fib", "1000000", "--fuel", "500")
    assert fuel.returncode == 3 and "stopped by fuel=500" in fuel.stderr, fuel.stderr
    memory = run(signed, "syntra", "run", "fib-python", "fib", "5", "--max-mem", "1Mi")
    assert memory.returncode == 3 and f"stopped by max_mem={1 << 20} bytes" in memory.stderr
    slow = run(signed, "syntra", "run", "fib-python", "fib", "200000", "--max-ms", "50")
    assert slow.returncode == 3
    assert re.search(r"stopped by max_ms=50 after \d+ ms", slow.stderr), slow.stderr
    fine = run(signed, "syntra", "run", "fib-swift", "fib", "10", "--fuel", "100000", "--json")
    used = json.loads(fine.stdout)["metrics"]["fuel_used"]
    assert json.loads(fine.stdout)["value"] == 55 and 0 < used < 100000


def _copy_unsigned(client: Client, source: str, repository: str) -> str:
    """The artifact's manifest and blobs under another repository, with no signature."""
    path, digest = source.split("/", 1)[1].split("@")
    manifest = client.get_manifest(path, digest)
    for blob in manifest.children():
        client.push_blob(repository, Blob.of(client.get_blob(path, blob["digest"])))
    client.put_manifest(repository, "latest", Document(manifest.data, MANIFEST))
    return f"{client.host}/{repository}:latest"


def test_unsigned_and_foreign_artifacts_are_refused_before_anything_is_pulled(
    signed: Path, own_registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = Client(own_registry, insecure=True)
    unsigned = _copy_unsigned(client, _ref(signed, "fib-swift"), "plugins/unsigned")
    cache = tmp_path / "cache"
    monkeypatch.setenv("SYNTRA_CACHE", str(cache))
    outside = tmp_path / "elsewhere"  # no syntra.yaml: the key comes from --key
    outside.mkdir()
    key = str(signed / "keys" / "cosign.pub")
    refused = run(outside, "syntra", "run", unsigned, "fib", "5", "--key", key, "--insecure",
                  env={"SYNTRA_CACHE": str(cache)})  # fmt: skip
    assert refused.returncode == 1
    assert "refused: no valid signature by the key" in refused.stderr
    assert not cache.exists() or not any(cache.rglob("*")), "nothing may be pulled or compiled"
    assert (
        cosign("generate-key-pair", "--output-key-prefix", str(tmp_path / "other")).returncode == 0
    )
    other = str(tmp_path / "other.pub")
    foreign = run(outside, "syntra", "run", _ref(signed, "fib-swift"), "fib", "5", "--key",
                  other, "--insecure", env={"SYNTRA_CACHE": str(cache)})  # fmt: skip
    assert foreign.returncode == 1 and "refused" in foreign.stderr
    assert not cache.exists() or not any(cache.rglob("*"))
    loud = run(outside, "syntra", "run", unsigned, "fib", "5", "--insecure",
               "--insecure-skip-verify", env={"SYNTRA_CACHE": str(cache)})  # fmt: skip
    assert loud.stdout == "5\n" and "WITHOUT its signature being checked" in loud.stderr
    assert COSIGN.exists()


def _storage(address: str) -> Path:
    """The registry's data folder (the local registry writes its config beside it)."""
    for config in Path("/tmp").glob("syntra-registry-*/config.yml"):
        if address in config.read_text():
            return config.parent / "data"
    raise AssertionError(f"no storage found for {address}")


def test_a_replaced_blob_is_refused_before_compilation(
    signed: Path, own_registry: str, tmp_path: Path
) -> None:
    client = Client(own_registry, insecure=True)
    path, digest = _ref(signed, "fib-swift").split("/", 1)[1].split("@")
    layer = client.get_manifest(path, digest).json()["layers"][0]["digest"]
    hexdigest = layer.split(":")[1]
    data = next(_storage(own_registry).rglob(f"blobs/sha256/{hexdigest[:2]}/{hexdigest}/data"))
    original = data.read_bytes()
    cache, outside = tmp_path / "cache", tmp_path / "elsewhere"
    outside.mkdir()
    key = str(signed / "keys" / "cosign.pub")
    try:
        data.write_bytes(original.replace(b"fib", b"fob"))  # same size, other bytes
        env = {"SYNTRA_CACHE": str(cache), "SYNTRA_REGISTRY_TRIES": "2"}
        reference = _ref(signed, "fib-swift")
        done = run(outside, "syntra", "run", reference, "fib", "5", "--key", key, "--insecure",
                   env=env)  # fmt: skip
    finally:
        data.write_bytes(original)
    assert done.returncode != 0 and "the body's digest is sha256:" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not [p for p in cache.rglob("*") if p.is_file()], "nothing kept, nothing compiled"


def test_a_damaged_cached_blob_is_pulled_again(signed: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    reference = _ref(signed, "fib-swift")
    key = signed / "keys" / "cosign.pub"
    first = plugins.load(reference, key=key, cache=cache, insecure=True)
    assert first.call("fib", 10) == 55 and not first.metrics.blob_cached
    (blob,) = (cache / "blobs").iterdir()
    blob.write_bytes(blob.read_bytes()[:-1] + b"\x00")
    again = plugins.load(reference, key=key, cache=cache, insecure=True)
    assert again.call("fib", 10) == 55 and not again.metrics.blob_cached
    warm = plugins.load(reference, key=key, cache=cache, insecure=True)
    assert warm.metrics.blob_cached and warm.metrics.compile_cached


def test_the_python_api_is_typed_thread_safe_and_recovers_after_a_trap(
    signed: Path, tmp_path: Path
) -> None:
    key = signed / "keys" / "cosign.pub"
    pricing = plugins.load(
        _ref(signed, "fib-python"), key=key, cache=tmp_path, insecure=True,
        limits=plugins.Limits(max_mem=256 << 20, max_ms=5000),
    )  # fmt: skip
    assert pricing.kind == "component"
    assert pricing.exports == {
        "fib": "func(n: u32) -> u64",
        "greet": "func(name: string) -> string",
        "price": "func(net: f64, rate: f64) -> record { net: f64, vat: f64, gross: f64 }",
    }
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: pricing.call("fib", n), range(30)))
    assert results[:8] == [0, 1, 1, 2, 3, 5, 8, 13] and results[29] == 514229
    with pytest.raises(SyntraError, match="out of range for u32"):
        pricing.call("fib", 1 << 40)
    swift = plugins.load(_ref(signed, "fib-swift"), key=key, cache=tmp_path, insecure=True,
                         limits={"max_ms": 1000, "fuel": 2000})  # fmt: skip
    with pytest.raises(SyntraError, match="stopped by fuel=2000"):
        swift.call("fib", 1_000_000)
    assert swift.call("fib", 10) == 55  # a fresh store after the trap
    with pytest.raises(SyntraError, match="not a readable public key"):
        plugins.load(_ref(signed, "fib-swift"), key=tmp_path / "missing.pub", insecure=True)


def test_plugin_manifest_is_read_and_checked(signed: Path, tmp_path: Path) -> None:
    folder = tmp_path / "opt-plugins"
    folder.mkdir()
    wasm = plugin_file(signed, "fib-swift")
    shutil.copy(wasm, folder / "fib-swift.wasm")
    import hashlib

    entry = {"name": "fib-swift", "file": "fib-swift.wasm",
             "sha256": hashlib.sha256(wasm.read_bytes()).hexdigest(),
             "limits": {"max_mem": 16 << 20, "max_ms": 500, "fuel": None}}  # fmt: skip
    (folder / "plugins.json").write_text(json.dumps({"plugins": [entry]}))
    loaded = plugins.load_manifest(folder / "plugins.json", cache=tmp_path / "cache")
    assert loaded["fib-swift"].call("fib", 24) == 46368
    assert loaded["fib-swift"].limits == plugins.Limits(16 << 20, 500, None)
    (folder / "fib-swift.wasm").write_bytes(wasm.read_bytes() + b"\0")
    with pytest.raises(Refused, match="the manifest says"):
        plugins.load_manifest(folder / "plugins.json", cache=tmp_path / "cache")
