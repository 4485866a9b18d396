"""Byte-reproducible Python components.

componentize-py snapshots the guest's memory after running its imports, and that
snapshot takes in build-time randomness, clocks and file metadata; no option of its
own fixes them yet (componentize-py issue #247). Syntra runs it on a deterministic
host instead: libfaketime freezes the clocks at SOURCE_DATE_EPOCH, and a small
preloaded library (deterministic.c, compiled once into the wasm cache) fixes random
bytes and file metadata. Where that is not possible the build still runs, and the
caveat says why its output is not reproducible.
"""

from __future__ import annotations

import datetime
import glob
import hashlib
import os
import platform
import shutil
import sys
from pathlib import Path

from syntra import process

SHIM = Path(__file__).with_name("deterministic.c")
LIBFAKETIME = "/usr/lib/*/faketime/libfaketimeMT.so.1"


def _shim(cache: Path) -> Path | str:
    """The compiled library, or why there is none."""
    source = SHIM.read_bytes()
    library = cache / f"deterministic-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if library.exists():
        return library
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return "no C compiler for the deterministic host (install gcc)"
    cache.mkdir(parents=True, exist_ok=True)
    built = library.with_name(f".{library.name}.{os.getpid()}.building")
    done = process.run(
        [compiler, "-O2", "-shared", "-fPIC", "-o", str(built), str(SHIM), "-ldl", "-lpthread"],
        check=False,
    )
    if not done.ok:
        last = (done.err.strip().splitlines() or [f"exit {done.code}"])[-1]
        return f"the deterministic host does not compile: {last}"
    built.replace(library)
    return library


def host_environment(cache: Path, epoch: int) -> tuple[dict[str, str], str | None]:
    """(environment for componentize-py, None), or ({}, why the output won't be
    byte-reproducible here)."""
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return {}, "not byte-reproducible: the deterministic host needs Linux on x86_64"
    faketime = sorted(glob.glob(LIBFAKETIME))
    if not faketime:
        return {}, "not byte-reproducible: libfaketime is missing (install faketime)"
    shim = _shim(cache)
    if isinstance(shim, str):
        return {}, f"not byte-reproducible: {shim}"
    if any(c in f"{shim}{faketime[0]}" for c in ": \t"):
        return {}, f"not byte-reproducible: LD_PRELOAD cannot name {shim} (a colon or space)"
    frozen = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    env = {
        "LD_PRELOAD": f"{shim}:{faketime[0]}",
        "FAKETIME": frozen.strftime("%Y-%m-%d %H:%M:%S"),
        "TZ": "UTC",
        "SYNTRA_FIXED_TIME": str(epoch),
    }
    # The probe: under the host, the first file a process stats is inode 1, with every
    # timestamp at `epoch`; anything else means the preload or seccomp was refused.
    probe = process.run(["stat", "-c", "%i %Y", "/"], env={**os.environ, **env}, check=False)
    if probe.out.split() != ["1", str(epoch)]:
        return {}, "not byte-reproducible: the deterministic host does not work here"
    return env, None
