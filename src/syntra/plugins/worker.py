"""The call worker: a child process that runs one guest's calls, so the host can stop
a call wherever it is — in wasm code or blocked in a host call (a WASI sleep or poll),
which epoch interruption cannot reach. The host waits `max_ms` (and a little grace for
the worker to report the limit itself), then kills the worker and starts a new one
for the next call.

The worker gets the compiled code through its stdin (never a path it could be handed
something else at), an environment with nothing but PATH and the host's import path
(no credentials; the working directory is not on it), and answers each call with one
frame: the result, or the error's class and its one line. Frames are a 4-byte
big-endian length and a JSON body (the code: raw).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from typing import IO, Any

from syntra.errors import DEBUG_ENV, SyntraError
from syntra.plugins.bounds import StoreBounds
from syntra.plugins.calls import BadCall, CallResult, Guest, GuestFailure, Setup
from syntra.plugins.values import BadValue
from syntra.redaction import redact

READY_SECONDS = 120.0
"""Starting Python, importing wasmtime and loading the code; not the guest's time."""
EXIT_SECONDS = 5.0
"""How long a worker that closed its answers may take to end, before it is killed."""
_ERRORS: dict[str, type[SyntraError]] = {
    cls.__name__: cls for cls in (SyntraError, GuestFailure, BadCall, BadValue)
}


def spawn(module: str) -> subprocess.Popen[bytes]:
    """A worker process running `module`, spoken to over its stdin and stdout: an
    environment with nothing but PATH and the host's own imports (no credentials, never
    the working directory's files), its stderr discarded unless debugging, and its own
    session (a terminal's Ctrl-C reaches the host, which ends it)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join(os.path.abspath(p) for p in sys.path if p),
        "PYTHONSAFEPATH": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-m", module],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=None if os.environ.get(DEBUG_ENV) else subprocess.DEVNULL,
        env=env,
        start_new_session=True,
    )


def ended_by(returncode: int) -> str:
    """How a worker process ended, for a one-line error: `crashed (SIGSEGV)` when a
    signal ended it, else `ended (exit N)`."""
    if returncode >= 0:
        return f"ended (exit {returncode})"
    try:
        return f"crashed ({signal.Signals(-returncode).name})"
    except ValueError:
        return f"crashed (signal {-returncode})"


class Ended(Exception):
    """The worker did not answer in time (`timed_out`), or is gone."""

    def __init__(self, timed_out: bool) -> None:
        super().__init__()
        self.timed_out = timed_out


class Worker:
    """The host's side: one worker process, asked one call at a time."""

    def __init__(self, setup: Setup, serialized: bytes) -> None:
        self.process = spawn("syntra.plugins.worker")
        try:
            self._send(json.dumps(asdict(setup)).encode())
            self._send(serialized)
            answer = self._receive(time.monotonic() + READY_SECONDS)
        except Ended:
            self.stop()
            raise SyntraError("the call worker did not start") from None
        if "error" in answer:
            self.stop()
            raise _ERRORS.get(answer["error"], SyntraError)(answer["message"])

    def ask(self, name: str, args: list[Any], seconds: float) -> CallResult:
        """The call's result; its error raised; Ended after `seconds` or when the worker
        dies (the worker is then stopped)."""
        try:
            self._send(json.dumps({"call": name, "args": args}).encode())
            answer = self._receive(time.monotonic() + seconds)
        except Ended as ended:
            if not ended.timed_out:  # it closed its pipe: let it finish dying, for its status
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.process.wait(EXIT_SECONDS)
            self.stop()
            raise
        if "error" in answer:  # redacted here: the worker knows none of the host's secrets
            raise _ERRORS.get(answer["error"], SyntraError)(redact(answer["message"]))
        return CallResult(**answer["result"])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe:
                pipe.close()

    def _send(self, body: bytes) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(struct.pack(">I", len(body)) + body)
            self.process.stdin.flush()
        except OSError:  # the worker is gone
            raise Ended(timed_out=False) from None

    def _receive(self, deadline: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        header = _read(fd, 4, deadline)
        body = _read(fd, struct.unpack(">I", header)[0], deadline)
        answer: dict[str, Any] = json.loads(body)
        return answer


def _read(fd: int, size: int, deadline: float) -> bytes:
    data = b""
    while len(data) < size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise Ended(timed_out=True)
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise Ended(timed_out=False)
        data += chunk
    return data


def serve(source: IO[bytes], sink: IO[bytes]) -> None:
    """The worker's side: set up from the first two frames, then answer calls until the
    host closes the pipe."""

    def frame() -> bytes | None:
        header = source.read(4)
        if len(header) < 4:
            return None
        return source.read(struct.unpack(">I", header)[0])

    def answer(body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        sink.write(struct.pack(">I", len(data)) + data)
        sink.flush()

    setup_frame, code = frame(), frame()
    if setup_frame is None or code is None:
        return
    given = json.loads(setup_frame)
    setup = Setup(**{**given, "bounds": StoreBounds(**given["bounds"])})
    try:
        guest = Guest(setup, code)
    except Exception as exc:  # whatever it is: one line for the host
        answer({"error": "SyntraError", "message": f"wasmtime cannot load it: {exc}"})
        return
    answer({"ready": True})
    # Should the host be gone while a call is blocked, the worker ends itself.
    watchdog_seconds = setup.max_ms / 1000 * 2 + 5
    while (request := frame()) is not None:
        call = json.loads(request)
        watchdog = threading.Timer(watchdog_seconds, os._exit, args=(70,))
        watchdog.start()
        try:
            answer({"result": asdict(guest.call(call["call"], call["args"]))})
        except SyntraError as exc:
            answer({"error": type(exc).__name__, "message": str(exc)})
        except Exception as exc:
            answer({"error": "SyntraError", "message": f"{call['call']}: {exc}"})
        finally:
            watchdog.cancel()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host decides when the worker ends
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # nothing printed by accident can corrupt a frame
    serve(sys.stdin.buffer, answers)
