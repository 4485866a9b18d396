"""The sandbox's compile cache and trap messages, with real wasmtime on small modules."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import wasmtime
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from syntra import plugins
from syntra.config.model import SwiftGuest
from syntra.errors import Refused, RegistryError, SyntraError, ToolError
from syntra.oci import MANIFEST, Blob, Client, Document, digest_of
from syntra.plan import Destination, GuestPlan
from syntra.plugins.sandbox import GuestFailure, Sandbox, open_runtime, run_tests
from syntra.plugins.wasm3host import Wasm3Sandbox
from syntra.redaction import keep_secret
from tests.conftest import Result

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


def _entry(cache: Path) -> Path:
    (entry,) = (cache / "compiled").glob("*.cwasm")
    return entry


@pytest.mark.parametrize("damage", ["flip", "truncate", "seal"])
def test_a_damaged_cache_entry_is_compiled_again(
    damage: str, module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    guest = _guest([{"call": "add", "args": [2, 3], "expect": 5}])
    assert [r.value for r in run_tests(guest, module, cache)] == [5]
    entry = _entry(cache)
    data = bytearray(entry.read_bytes())
    if damage == "flip":  # machine code overwritten in the middle
        data[len(data) // 2 : len(data) // 2 + 64] = b"\xcc" * 64
    elif damage == "truncate":
        data = data[: len(data) // 3]
    else:  # the seal itself
        data[:32] = hashlib.sha256(bytes(data[32:])).digest()
    entry.write_bytes(bytes(data))
    capsys.readouterr()
    assert [r.value for r in run_tests(guest, module, cache)] == [5]
    assert capsys.readouterr().err == f"compile cache: {entry.name} was damaged; compiling again\n"
    assert [r.value for r in run_tests(guest, module, cache)] == [5]
    assert capsys.readouterr().err == ""  # repaired: loaded from the cache again


OTHER = """
(module
  (memory (export "memory") 1)
  (func (export "add") (param i32 i32) (result i32) i32.const 666))
"""


def test_code_swapped_into_the_cache_is_not_run(
    module: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another guest's compiled code, with everything beside it, copied over this
    guest's entry: the HMAC names the wasm digest, so it is compiled again, not run."""
    cache, other_cache = tmp_path / "cache", tmp_path / "other-cache"
    other = tmp_path / "other.wasm"
    other.write_bytes(wasmtime.wat2wasm(OTHER))
    assert plugins.load_file(other, cache=other_cache).call("add", 2, 3) == 666
    plugin = plugins.load_file(module, sha256=hashlib.sha256(module.read_bytes()).hexdigest(),
                               cache=cache)  # fmt: skip
    assert plugin.call("add", 2, 3) == 5 and plugin.metrics.verified
    entry = _entry(cache)
    for source in (other_cache / "compiled").iterdir():  # its entry, its key: all of it
        name = entry.name if source.suffix == ".cwasm" else source.name
        (cache / "compiled" / name).write_bytes(source.read_bytes())
    capsys.readouterr()
    again = plugins.load_file(module, cache=cache)
    assert again.call("add", 2, 3) == 5 and not again.metrics.compile_cached
    assert "was damaged; compiling again" in capsys.readouterr().err


def test_a_cache_others_can_write_is_refused(module: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    assert plugins.load_file(module, cache=cache).call("add", 1, 1) == 2
    (cache / "compiled").chmod(0o777)
    with pytest.raises(ToolError, match=r"must be a folder of yours that no one else can write "
                                        r"\(it is mode 0777"):  # fmt: skip
        plugins.load_file(module, cache=cache)
    (cache / "compiled").chmod(0o700)
    (cache / "compiled" / "key").chmod(0o644)
    with pytest.raises(ToolError, match="no one else can read or write"):
        plugins.load_file(module, cache=cache)
    if os.getuid() == 0:  # someone else's folder
        (cache / "compiled" / "key").chmod(0o600)
        os.chown(cache / "compiled", 4242, 4242)
        with pytest.raises(ToolError, match="owner uid 4242"):
            plugins.load_file(module, cache=cache)


def test_a_fresh_cache_is_private_and_outside_the_repository(
    module: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SYNTRA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    plugins.load_file(module).call("add", 1, 2)
    folder = tmp_path / "xdg" / "syntra" / "compiled"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "key").stat().st_mode) == 0o600
    assert [p.suffix for p in folder.glob("*.cwasm")] == [".cwasm"]


SLEEPER = """
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "nap") (param $ms i64) (result i32)
    ;; one clock subscription: monotonic clock, relative timeout in nanoseconds
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.mul (local.get $ms) (i64.const 1000000)))
    (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128))))
"""


def _plugin(tmp_path: Path, wat: str, **limits: object) -> plugins.Plugin:
    path = tmp_path / "guest.wasm"
    path.write_bytes(wasmtime.wat2wasm(wat))
    return plugins.load_file(path, cache=tmp_path / "cache", limits=limits)


def test_max_ms_stops_a_guest_blocked_in_a_host_call(tmp_path: Path) -> None:
    sleeper = _plugin(tmp_path, SLEEPER, max_ms=500)
    assert sleeper.call("nap", 10) == 0  # WASI works: a short nap returns
    started = time.monotonic()
    with pytest.raises(GuestFailure) as stopped:
        sleeper.call("nap", 8000)
    took = time.monotonic() - started
    assert re.fullmatch(r"nap\(8000\): stopped by max_ms=500 after \d+ ms", str(stopped.value))
    assert took < 3 * 0.5 + 1, took
    assert sleeper.call("nap", 1) == 0  # a new worker for the next call


MEMORIES = (
    "(module "
    + " ".join(f"(memory $m{n} 0)" for n in range(8))
    + ' (func (export "grow") (result i32) (local $pages i32)'
    + "".join(
        f" (block $full{n} (loop $more{n}"
        f" (br_if $full{n} (i32.eq (memory.grow $m{n} (i32.const 1)) (i32.const -1)))"
        f" (local.set $pages (i32.add (local.get $pages) (i32.const 1))) (br $more{n})))"
        for n in range(8)
    )
    + " (local.get $pages)))"
)


def test_max_mem_bounds_all_memories_together(tmp_path: Path) -> None:
    """Eight memories, each grown page by page until refused: 16 MiB in all, not 8 x 16."""
    grown = _plugin(tmp_path, MEMORIES, max_mem="16Mi").call("grow")
    assert grown * 65536 <= 16 << 20 and grown == 256
    big = _plugin(tmp_path, "(module (memory 200) (memory 200) (func (export \"f\")))",
                  max_mem="16Mi")  # fmt: skip
    with pytest.raises(GuestFailure, match=r"^f\(\): stopped by max_mem=16777216 bytes"):
        big.call("f")


TABLE = """
(module
  (table $t 1 funcref)
  (func (export "grow") (param $by i32) (result i32)
    (drop (table.grow $t (ref.null func) (local.get $by)))
    (table.size $t)))
"""


def test_max_mem_bounds_tables_and_instances(tmp_path: Path) -> None:
    table = _plugin(tmp_path, TABLE, max_mem="16Mi")
    assert table.call("grow", 200_000_000) == 1  # 1.6 GB of elements: refused
    assert table.call("grow", 1000) == 1001  # within max_mem / 8 bytes an element
    huge = _plugin(tmp_path, '(module (table 100000000 funcref) (func (export "f")))',
                   max_mem="16Mi")  # fmt: skip
    with pytest.raises(GuestFailure, match=r"stopped by max_mem=16777216 bytes \(table minimum"):
        huge.call("f")
    # A nested component instantiated again and again: only as often as it is defined.
    many = """(component
      (component $c (core module $m (memory 1)) (core instance (instantiate $m)))
      (instance (instantiate $c)) (instance (instantiate $c)) (instance (instantiate $c)))"""
    with pytest.raises(GuestFailure, match=r"stopped by max_mem=16777216 bytes \(resource limit "):
        _plugin(tmp_path, many, max_mem="16Mi").call("f")


def test_load_tells_references_and_files_apart(
    module: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file at the path a reference names is never loaded in its place, unverified."""
    with pytest.raises(
        SyntraError, match=r"plugins.load takes a registry reference, not PosixPath"
    ):
        plugins.load(module, key="cosign.pub")  # type: ignore[arg-type]
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    public = tmp_path / "cosign.pub"
    public.write_bytes(key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    reference = "127.0.0.1:9/guest.wasm"  # also a relative path, and a file is there
    (tmp_path / "127.0.0.1:9").mkdir()
    (tmp_path / reference).write_bytes(module.read_bytes())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNTRA_REGISTRY_TRIES", "1")
    cache = tmp_path / "cache"
    with pytest.raises(RegistryError):  # asked the registry (there is none), ran nothing
        plugins.load(reference, key=public, insecure=True, cache=cache)
    assert not (cache / "compiled").exists()
    with pytest.raises(Refused, match="expected " + "0" * 64):
        plugins.load_file(module, sha256="0" * 64, cache=cache)
    assert not plugins.load_file(module, cache=cache).metrics.verified


def _push(registry: str, wat: str, repository: str) -> str:
    """`wat` as an unsigned wasm artifact in `registry`, by digest."""
    layer = bytes(wasmtime.wat2wasm(wat))
    config = b"{}"
    client = Client(registry, insecure=True)
    for blob in (config, layer):
        client.push_blob(repository, Blob.of(blob))
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.wasm.config.v0+json",
                   "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": "application/wasm", "digest": digest_of(layer),
                    "size": len(layer)}],
    }  # fmt: skip
    data = json.dumps(manifest).encode()
    client.put_manifest(repository, "1", Document(data, MANIFEST))
    return f"{registry}/{repository}@{digest_of(data)}"


def test_syntra_run_holds_the_limits_with_one_line(
    registry: str, tmp_path: Path, syntra: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTRA_CACHE", str(tmp_path / "cache"))
    unverified = ("--insecure", "--insecure-skip-verify")
    sleeper = _push(registry, SLEEPER, "hostile/sleeper")
    started = time.monotonic()
    stopped = syntra(tmp_path, "run", sleeper, "nap", "8000", "--max-ms", "500", *unverified)
    took = time.monotonic() - started
    assert stopped.code == 3 and stopped.out == ""
    warning, line = stopped.err.splitlines()
    assert "WITHOUT its signature being checked" in warning
    assert re.fullmatch(r"nap\(8000\): stopped by max_ms=500 after \d+ ms", line)
    assert took < 3 * 0.5 + 1 + 2, took  # the limit, and pulling and compiling first
    grower = _push(registry, MEMORIES, "hostile/memories")
    grown = syntra(tmp_path, "run", grower, "grow", "--max-mem", "16Mi", *unverified)
    assert grown.code == 0 and grown.out == "256\n", grown.err


RECURSE = '(module (func $f (export "recurse") (call $f)))'
SPIN = """
(module
  (func (export "spin") (loop $again (br $again)))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))
"""
NO_MEMORY = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "write") (result i32)
    (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
"""


def test_unbounded_recursion_traps_on_both_runtimes(tmp_path: Path) -> None:
    """wasm3 recurses on the native stack for each wasm call: its worker gives it enough
    that wasm3's own stack limit traps first, as wasmtime's guard does."""
    wasm = tmp_path / "recurse.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(RECURSE))
    limits = {"max_mem": 1 << 20, "max_ms": 2000, "fuel": None}
    for runtime, trap in (
        ("wasmtime", "trapped: wasm trap: call stack exhausted"),
        ("wasm3", "trapped under wasm3: [trap] stack overflow"),
    ):
        host = open_runtime(runtime, "recurse", wasm, limits, tmp_path / "cache")
        with pytest.raises(GuestFailure) as trapped:
            host.call("recurse", [])
        host.close()
        assert str(trapped.value) == f"recurse(): {trap}"


def test_a_wasm3_worker_that_dies_is_reported_as_a_crash_not_a_limit(tmp_path: Path) -> None:
    """A worker killed by a signal mid-call (here SIGSEGV, sent to it) is a crash named
    by its signal, at once, not a max_ms stop; the next call gets a new worker."""
    wasm = tmp_path / "spin.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(SPIN))
    limits = {"max_mem": 1 << 20, "max_ms": 20_000, "fuel": None}
    host = Wasm3Sandbox("spin", wasm, limits, tmp_path / "cache")
    assert host.call("add", [1, 2]).value == 3
    worker = host._worker
    assert worker is not None
    threading.Timer(0.5, os.kill, args=(worker.pid, signal.SIGSEGV)).start()
    started = time.monotonic()
    with pytest.raises(GuestFailure) as crashed:
        host.call("spin", [])
    assert time.monotonic() - started < 10
    assert str(crashed.value) == "spin(): the wasm3 worker crashed (SIGSEGV)"
    assert host.call("add", [2, 3]).value == 5
    host.close()


def test_a_call_worker_that_dies_is_reported_as_a_crash_not_a_limit(tmp_path: Path) -> None:
    """wasmtime handles SIGSEGV itself (its traps): the worker is ended by SIGABRT here."""
    wasm = tmp_path / "spin.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(SPIN))
    limits = {"max_mem": 1 << 20, "max_ms": 20_000, "fuel": None}
    host = Sandbox("spin", wasm, limits, tmp_path / "cache")
    assert host.call("add", [1, 2]).value == 3
    worker = host._worker
    assert worker is not None
    threading.Timer(0.5, os.kill, args=(worker.process.pid, signal.SIGABRT)).start()
    with pytest.raises(GuestFailure) as crashed:
        host.call("spin", [])
    assert str(crashed.value) == "spin(): the call worker crashed (SIGABRT)"
    assert host.call("add", [2, 3]).value == 5
    host.close()


@pytest.mark.parametrize("runtime", ["wasmtime", "wasm3"])
def test_a_module_without_memory_runs_and_its_wasi_calls_get_efault(
    tmp_path: Path, runtime: str
) -> None:
    wasm = tmp_path / "bare.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(NO_MEMORY))
    limits = {"max_mem": 1 << 20, "max_ms": 2000, "fuel": None}
    host = open_runtime(runtime, "bare", wasm, limits, tmp_path / "cache")
    try:
        assert host.call("add", [2, 3]).value == 5
        assert host.call("write", []).value == 21  # EFAULT: there is no memory to read
    finally:
        host.close()


def test_a_wasi_name_preview_1_does_not_have_is_refused_in_one_line(tmp_path: Path) -> None:
    wasm = tmp_path / "odd.wasm"
    wasm.write_bytes(
        wasmtime.wat2wasm('(module (import "wasi_snapshot_preview1" "fd_teleport" (func)))')
    )
    limits = {"max_mem": 1 << 20, "max_ms": 2000, "fuel": None}
    for runtime in ("wasmtime", "wasm3"):
        with pytest.raises(SyntraError) as refused:
            open_runtime(runtime, "odd", wasm, limits, tmp_path / "cache")
        assert str(refused.value) == (
            "it imports wasi_snapshot_preview1.fd_teleport, which WASI preview 1 does not have"
        )


TELLS = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "Error: the password is hunter2-swordfish\\1b[2J\\n")
  (func (export "tell")
    (i32.store (i32.const 0) (i32.const 64))
    (i32.store (i32.const 4) (i32.const 45))
    (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 8)))
    unreachable))
"""


@pytest.mark.parametrize("runtime", ["wasmtime", "wasm3"])
def test_the_guest_s_stderr_in_an_error_is_redacted_and_escaped(
    tmp_path: Path, runtime: str
) -> None:
    keep_secret("hunter2-swordfish")
    wasm = tmp_path / "tells.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(TELLS))
    limits = {"max_mem": 1 << 20, "max_ms": 2000, "fuel": None}
    host = open_runtime(runtime, "tells", wasm, limits, tmp_path / "cache")
    with pytest.raises(GuestFailure) as failed:
        host.call("tell", [])
    host.close()
    assert str(failed.value).endswith(r"(guest: Error: the password is ***\x1b[2J)")


RANDOM = """
(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "fill") (param i32 i32) (result i32)
    (call $random (local.get 0) (local.get 1))))
"""


@pytest.mark.parametrize("runtime", ["wasmtime", "wasm3"])
def test_wasi_calls_outside_the_memory_get_efault(tmp_path: Path, runtime: str) -> None:
    wasm = tmp_path / "random.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(RANDOM))
    limits = {"max_mem": 1 << 20, "max_ms": 2000, "fuel": None}
    host = open_runtime(runtime, "random", wasm, limits, tmp_path / "cache")
    try:
        assert host.call("fill", [0, 65536]).value == 0
        assert host.call("fill", [0, -1]).value == 21  # 4 GiB - 1 asked of a 64 KiB memory
        assert host.call("fill", [65535, 2]).value == 21
    finally:
        host.close()


SPRAY = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 16)
  (data (i32.const 1048572) "end!")
  (func (export "spray") (param $count i32) (result i64) (local $n i32)
    ;; $count iovs, each the whole 1 MiB memory, in one fd_write to stdout
    (loop $fill
      (i32.store (i32.mul (local.get $n) (i32.const 8)) (i32.const 0))
      (i32.store (i32.add (i32.mul (local.get $n) (i32.const 8)) (i32.const 4))
                 (i32.const 1048576))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $fill (i32.lt_u (local.get $n) (local.get $count))))
    (if (result i64) (call $write (i32.const 1) (i32.const 0) (local.get $count) (i32.const 65536))
      (then (i64.const -1))
      (else (i64.load32_u (i32.const 65536))))))
"""


@pytest.mark.parametrize("runtime", ["wasmtime", "wasm3"])
def test_fd_write_keeps_only_the_end_however_many_iovs_and_caps_the_count(
    tmp_path: Path, runtime: str
) -> None:
    """The host reads at most STDIO_LIMIT bytes of each iov (not iovs times the memory), and a
    total past 4 GiB is told as the most a u32 holds, not EFAULT."""
    wasm = tmp_path / "spray.wasm"
    wasm.write_bytes(wasmtime.wat2wasm(SPRAY))
    limits = {"max_mem": 2 << 20, "max_ms": 20000, "fuel": None}
    host = open_runtime(runtime, "spray", wasm, limits, tmp_path / "cache")
    try:
        for count, written in ((300, 300 << 20), (4100, (1 << 32) - 1)):
            result = host.call("spray", [count])
            assert result.value == written
            assert len(result.stdout) == 64 << 10
            assert result.stdout.endswith("\0\0end!")
    finally:
        host.close()
