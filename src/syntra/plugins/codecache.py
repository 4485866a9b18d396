"""The compile cache: machine code wasmtime compiled from a guest, kept for next time.

Deserialising machine code runs whatever it holds, so an entry must be code this user's
Syntra compiled from exactly the verified wasm. The cache lives with the user
(`$SYNTRA_CACHE`, else `$XDG_CACHE_HOME/syntra`, else `~/.cache/syntra`; never in a
repository), in a folder of the user's own that no one else can write (mode 0700 when
Syntra creates it; anything else is refused). Each entry carries an HMAC-SHA256, under
a random key kept in that folder (mode 0600), of the wasm's digest, the engine's
settings and the compiled bytes: a file copied or swapped in, with or without a
neighbour, fails the check and is compiled again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import platform
import secrets
import stat
import sys
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import wasmtime
import wasmtime.component as wc

from syntra.errors import ToolError
from syntra.fsutil import write_atomic

MAC_BYTES = 32


def default_cache() -> Path:
    """$SYNTRA_CACHE, else $XDG_CACHE_HOME/syntra, else ~/.cache/syntra."""
    if os.environ.get("SYNTRA_CACHE"):
        return Path(os.environ["SYNTRA_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "syntra"


@dataclass(frozen=True)
class Compiled:
    code: Any
    """A wasmtime Module or Component."""
    serialized: bytes
    """Its machine code, as wasmtime serialises it (what the call worker loads)."""
    cached: bool


def compiled(engine: wasmtime.Engine, data: bytes, kind: str, cache: Path, fuel: bool) -> Compiled:
    """The module or component of `data`, from the cache when an entry for exactly these
    bytes and settings carries a valid HMAC; else compiled and stored. A damaged or
    foreign entry is compiled again and replaced, and says so in one line."""
    loader: Any = wc.Component if kind == "component" else wasmtime.Module
    key = _cache_key(data, fuel)
    folder = _private(cache / "compiled")
    secret = _secret(folder) if folder else None
    entry = folder / entry_name(data, fuel) if folder else None
    if entry is not None and secret is not None and entry.is_file():
        stored = entry.read_bytes()
        mac, body = stored[:MAC_BYTES], stored[MAC_BYTES:]
        if hmac.compare_digest(mac, _mac(secret, key, body)):
            try:
                return Compiled(loader.deserialize(engine, body), body, True)
            except wasmtime.WasmtimeError:
                pass
        print(f"compile cache: {entry.name} was damaged; compiling again", file=sys.stderr)
    code = loader(engine, data)
    serialized = bytes(code.serialize())
    if entry is not None and secret is not None:
        try:
            write_atomic(entry, _mac(secret, key, serialized) + serialized, mode=0o600)
        except OSError as exc:  # a full disk: run without the cache
            print(
                f"compile cache: cannot write {entry} ({exc.strerror}); not cached", file=sys.stderr
            )
    return Compiled(code, serialized, False)


def entry_name(wasm: bytes, fuel: bool) -> str:
    """The file name of `wasm`'s entry, in the cache's `compiled` folder."""
    return f"{_cache_key(wasm, fuel)}.cwasm"


def _cache_key(wasm: bytes, fuel: bool) -> str:
    target = f"{platform.system()}-{platform.machine()}"
    stamp = f"wasmtime {version('wasmtime')} fuel={fuel} target={target}".encode()
    return hashlib.sha256(hashlib.sha256(wasm).digest() + stamp).hexdigest()


def _mac(secret: bytes, key: str, body: bytes) -> bytes:
    """The entry's HMAC: `key` names the wasm digest and the engine's settings."""
    return hmac.new(
        secret, b"syntra compiled code\0" + key.encode() + b"\0" + body, "sha256"
    ).digest()


def private(cache: Path) -> Path:
    """`cache`, created mode 0700 if missing (before anything is put in it, whatever the
    umask); refused (ToolError) unless it is a folder of this user no one else can write."""
    try:
        cache.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ToolError(f"{cache}: cannot create the cache ({exc.strerror})") from None
    _own(cache, cache.stat(), stat.S_ISDIR, 0o022, "a folder")
    return cache


def _private(folder: Path) -> Path | None:
    """`folder` inside the private cache, both mode 0700 when created here; refused
    (ToolError) unless both are real folders of this user that no one else can write.
    None when the cache cannot be created (a read-only home): then nothing is cached."""
    try:
        folder.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.mkdir(mode=0o700, exist_ok=True)
    except OSError as exc:
        print(f"compile cache: cannot write {folder} ({exc.strerror}); not cached", file=sys.stderr)
        return None
    private(folder.parent)
    _own(folder, folder.lstat(), stat.S_ISDIR, 0o022, "a folder")
    return folder


def _own(path: Path, info: os.stat_result, kind: Any, forbidden: int, what: str) -> None:
    if not kind(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & forbidden:
        raise ToolError(
            f"compile cache: {path} must be {what} of yours that no one else can "
            f"{'write' if forbidden == 0o022 else 'read or write'} (it is mode "
            f"{stat.S_IMODE(info.st_mode):04o}, owner uid {info.st_uid}); "
            "fix that, or set SYNTRA_CACHE to another folder"
        )


def _secret(folder: Path) -> bytes | None:
    """This user's HMAC key, made on first use (mode 0600, never replaced)."""
    path = folder / "key"
    if not path.exists():
        temp = folder / f".key.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            write_atomic(temp, secrets.token_bytes(MAC_BYTES), mode=0o600)
            os.link(temp, path)  # never over a key another process made meanwhile
        except FileExistsError:
            pass
        except OSError as exc:
            print(
                f"compile cache: cannot write {path} ({exc.strerror}); not cached", file=sys.stderr
            )
            return None
        finally:
            temp.unlink(missing_ok=True)
    _own(path, path.lstat(), stat.S_ISREG, 0o077, "a file")
    secret = path.read_bytes()
    if len(secret) != MAC_BYTES:
        raise ToolError(f"compile cache: {path} is not a key Syntra made; remove it")
    return secret
