"""WASI preview 1 as every host of Syntra gives it to a core module: one policy,
implemented here for the wasmtime sandbox (`calls.py`) and the wasm3 worker
(`wasm3child.py`), and in `templates/web/_wasi.js.j2` for the browser, with the same
answers (tests/test_wasi.py runs the same guests on all three).

Deny by default. Given: stdin (always at its end), stdout and stderr (captured, the last
`STDIO_LIMIT` bytes of each, shown as a character device so C's stdio line-buffers as on
a terminal), no arguments and no environment, the realtime and monotonic clocks, random
bytes, `sched_yield`, `poll_oneoff` on clocks (a sleep; stdio is always ready), and
`proc_exit`, which ends the call with its code (`GuestExit`). Every other preview 1
function exists, so any module links, and answers an error: no pre-opened folders
(`fd_prestat_get`: EBADF), no file or socket (ENOSYS). A name that is not preview 1 is
not linked: the module is refused.

Standard library only: the wasm3 worker imports it by itself.
"""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Callable
from typing import Protocol

MODULE = "wasi_snapshot_preview1"
STDIO_LIMIT = 64 << 10
"""How much of each of stdout and stderr a call keeps: the end, where a failure is told."""
SAID_LIMIT = 300
"""How much of the guest's stderr goes into a one-line error."""

SUCCESS, BADF, FAULT, INVAL, NOSYS, SPIPE = 0, 8, 21, 28, 52, 70
CHARACTER_DEVICE = 2
RIGHT_READ, RIGHT_WRITE = 1 << 1, 1 << 6
REALTIME_RESOLUTION_NS, MONOTONIC_RESOLUTION_NS = 1_000_000, 1_000
SUBSCRIPTION = 48
"""The size of a `poll_oneoff` subscription; an event is 32 bytes."""

PREVIEW1 = frozenset(
    [
        "args_get",
        "args_sizes_get",
        "environ_get",
        "environ_sizes_get",
        "clock_res_get",
        "clock_time_get",
        "fd_advise",
        "fd_allocate",
        "fd_close",
        "fd_datasync",
        "fd_fdstat_get",
        "fd_fdstat_set_flags",
        "fd_fdstat_set_rights",
        "fd_filestat_get",
        "fd_filestat_set_size",
        "fd_filestat_set_times",
        "fd_pread",
        "fd_prestat_get",
        "fd_prestat_dir_name",
        "fd_pwrite",
        "fd_read",
        "fd_readdir",
        "fd_renumber",
        "fd_seek",
        "fd_sync",
        "fd_tell",
        "fd_write",
        "path_create_directory",
        "path_filestat_get",
        "path_filestat_set_times",
        "path_link",
        "path_open",
        "path_readlink",
        "path_remove_directory",
        "path_rename",
        "path_symlink",
        "path_unlink_file",
        "poll_oneoff",
        "proc_exit",
        "proc_raise",
        "sched_yield",
        "random_get",
        "sock_accept",
        "sock_recv",
        "sock_send",
        "sock_shutdown",
    ]
)
"""Every function of WASI preview 1 (wasi_snapshot_preview1.witx)."""


class GuestExit(Exception):
    """The guest called `proc_exit(code)`: its call ends here."""

    def __init__(self, code: int) -> None:
        super().__init__(f"the guest exited with code {code}")
        self.code = code


class Fault(Exception):
    """The guest gave an address outside its memory (the call answers EFAULT)."""


class Memory(Protocol):
    """The guest's linear memory, as a host reaches it during a call."""

    def read(self, address: int, size: int) -> bytes: ...

    def write(self, address: int, data: bytes) -> None: ...


def not_preview1(names: list[str]) -> list[str]:
    """The names among `names` (imports from MODULE) that WASI preview 1 does not have."""
    return sorted(name for name in names if name not in PREVIEW1)


class Preview1:
    """The functions of one call: `function(name)` gives each, stdout and stderr collect
    what the guest wrote."""

    def __init__(self, memory: Callable[[], Memory]) -> None:
        self._memory = memory
        self.stdout = bytearray()
        self.stderr = bytearray()

    def function(self, name: str) -> Callable[..., int]:
        """The host function for `name` (one of PREVIEW1): the policy's, or a refusal."""
        provided = getattr(self, f"_{name}", None)
        if provided is not None:
            return guarded(provided)
        answer = BADF if name == "fd_prestat_get" else NOSYS
        return lambda *args: answer

    # Each of these returns an errno (SUCCESS is 0), as preview 1 defines.

    def _fd_write(self, fd: int, iovs: int, count: int, written: int) -> int:
        sink = {1: self.stdout, 2: self.stderr}.get(fd)
        if sink is None:
            return BADF
        memory = self._memory()
        total = 0
        for n in range(count):
            pointer, length = struct.unpack("<II", memory.read(iovs + n * 8, 8))
            kept = min(length, STDIO_LIMIT)  # reading the end checks the whole iov's bounds
            sink += memory.read(pointer + length - kept, kept)
            del sink[:-STDIO_LIMIT]  # so many iovs over the whole memory hold no more
            total += length
        memory.write(written, struct.pack("<I", min(total, 0xFFFFFFFF)))
        return SUCCESS

    def _fd_read(self, fd: int, iovs: int, count: int, read: int) -> int:
        if fd != 0:
            return BADF
        self._memory().write(read, struct.pack("<I", 0))  # at its end, always
        return SUCCESS

    def _fd_fdstat_get(self, fd: int, stat: int) -> int:
        if fd not in (0, 1, 2):
            return BADF
        rights = RIGHT_READ if fd == 0 else RIGHT_WRITE
        self._memory().write(stat, struct.pack("<BxHxxxxQQ", CHARACTER_DEVICE, 0, rights, 0))
        return SUCCESS

    def _fd_filestat_get(self, fd: int, stat: int) -> int:
        if fd not in (0, 1, 2):
            return BADF
        self._memory().write(stat, struct.pack("<QQBxxxxxxxQQQQQ", 0, 0, CHARACTER_DEVICE,
                                                0, 0, 0, 0, 0))  # fmt: skip
        return SUCCESS

    def _fd_seek(self, fd: int, offset: int, whence: int, position: int) -> int:
        return SPIPE if fd in (0, 1, 2) else BADF

    def _fd_tell(self, fd: int, position: int) -> int:
        return SPIPE if fd in (0, 1, 2) else BADF

    def _fd_close(self, fd: int) -> int:
        return SUCCESS if fd in (0, 1, 2) else BADF

    def _fd_sync(self, fd: int) -> int:
        return SUCCESS if fd in (0, 1, 2) else BADF

    def _fd_prestat_get(self, fd: int, prestat: int) -> int:
        return BADF  # no pre-opened folder: wasi-libc stops looking at the first EBADF

    def _args_sizes_get(self, count: int, size: int) -> int:
        self._memory().write(count, bytes(4))
        self._memory().write(size, bytes(4))
        return SUCCESS

    def _args_get(self, pointers: int, buffer: int) -> int:
        return SUCCESS

    _environ_sizes_get = _args_sizes_get
    _environ_get = _args_get

    def _clock_time_get(self, clock: int, precision: int, out: int) -> int:
        clocks = {0: time.time_ns, 1: time.monotonic_ns}
        if clock not in clocks:
            return INVAL
        self._memory().write(out, struct.pack("<Q", clocks[clock]()))
        return SUCCESS

    def _clock_res_get(self, clock: int, out: int) -> int:
        resolutions = {0: REALTIME_RESOLUTION_NS, 1: MONOTONIC_RESOLUTION_NS}
        if clock not in resolutions:
            return INVAL
        self._memory().write(out, struct.pack("<Q", resolutions[clock]))
        return SUCCESS

    def _random_get(self, buffer: int, length: int) -> int:
        memory = self._memory()
        if length:
            memory.read(buffer + length - 1, 1)  # Fault before making bytes it cannot hold
        memory.write(buffer, os.urandom(length))
        return SUCCESS

    def _poll_oneoff(self, subscriptions: int, events: int, count: int, stored: int) -> int:
        """Clock subscriptions sleep (the earliest one fires); stdio is always ready."""
        if count == 0:
            return INVAL
        memory = self._memory()
        fired: list[bytes] = []
        earliest: tuple[float, int] | None = None
        for n in range(count):
            entry = memory.read(subscriptions + n * SUBSCRIPTION, SUBSCRIPTION)
            userdata, tag = struct.unpack_from("<QB", entry)
            if tag == 0:
                clock, timeout, _, flags = struct.unpack_from("<I4xQQH", entry, 16)
                now = {0: time.time_ns, 1: time.monotonic_ns}.get(clock)
                if now is None:
                    fired.append(struct.pack("<QHBx20x", userdata, INVAL, tag))
                    continue
                wait = (timeout - now() if flags & 1 else timeout) / 1e9
                if earliest is None or wait < earliest[0]:
                    earliest = (wait, userdata)
            else:
                (fd,) = struct.unpack_from("<I", entry, 16)
                error = SUCCESS if (fd, tag) in ((0, 1), (1, 2), (2, 2)) else BADF
                fired.append(struct.pack("<QHBx20x", userdata, error, tag))
        if not fired and earliest is not None:
            time.sleep(max(0.0, earliest[0]))
            fired.append(struct.pack("<QHBx20x", earliest[1], SUCCESS, 0))
        memory.write(events, b"".join(fired))
        memory.write(stored, struct.pack("<I", len(fired)))
        return SUCCESS

    def _sched_yield(self) -> int:
        return SUCCESS

    def _proc_exit(self, code: int) -> int:
        raise GuestExit(code)


def guarded(function: Callable[..., int]) -> Callable[..., int]:
    """`function` with its arguments unsigned, as preview 1 defines every i32 it takes
    (pointers, lengths, descriptors, codes; the hosts hand them over signed; the i64s,
    a seek offset and a clock's precision, are not read), answering EFAULT for an address
    outside the guest's memory."""

    def call(*args: int) -> int:
        try:
            return function(*(a & 0xFFFFFFFF if -(1 << 31) <= a < 0 else a for a in args))
        except (Fault, struct.error):
            return FAULT

    return call


def said(stderr: bytes | bytearray) -> str:
    """What the guest said of its failure on stderr, for a one-line error: a Rust
    panic's `panicked at` line or an `Error` line when there is one, else the last line;
    control characters escaped, at most SAID_LIMIT characters (the caller redacts)."""
    lines = [line.strip() for line in bytes(stderr).decode(errors="replace").splitlines()]
    lines = [line for line in lines if line and not line.startswith("note: run with")]
    if not lines:
        return ""
    told = next((line for line in lines if "panicked at" in line or "Error" in line), lines[-1])
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in told)
    return shown if len(shown) <= SAID_LIMIT else shown[: SAID_LIMIT - 1] + "…"
