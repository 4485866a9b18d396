"""Running other programs: the one place Syntra starts a process.

Every tool (git, podman, buildah, swift, componentize-py, wasm-opt, syft, credential
helpers, Apple's CLI) runs through here, so failures read the same everywhere:
`<what> failed (exit N; see LOG): <first error line>`, with the error lines found
rather than tailed, and the values of secrets replaced by `***` in captured output,
logs and messages alike.

Tools bury their error under what follows it: componentize-py under a Rust backtrace
(`RUST_BACKTRACE=1`, common in CI images), swiftc under notes and source excerpts,
podman under cleanup lines. The last lines of output are often frames; the error
lines are what the user needs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from syntra import progress, telemetry
from syntra.errors import ToolError, one_line
from syntra.redaction import REDACTED as REDACTED
from syntra.redaction import keep_secret as keep_secret
from syntra.redaction import redact as redact

MAX_LINES = 5
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_ERROR = re.compile(
    r"(^|\s|:)(error|fatal|panic(ked)?)(\[\w+\])?:"  # swiftc, rustc, podman, git: `error: …`
    r"|^\s*(\w+\.)*\w*(Error|Exception)\b(: |$)"  # Python: `ModuleNotFoundError: …`
    r"|^Error\b",  # Go tools: `Error: …`
    re.IGNORECASE,
)
_FRAME = re.compile(r"^\s*(\d+: |at |File \")|Traceback \(most recent call last\)")


def error_lines(output: str) -> list[str]:
    """The distinct error lines of `output`, first first; else its last non-frame lines."""
    lines = [_ANSI.sub("", line).strip() for line in redact(output).splitlines()]
    lines = [line for line in lines if line and not _FRAME.search(line)]
    found: list[str] = []
    for line in lines:
        if _ERROR.search(line) and line not in found:
            found.append(line)
    return (found or lines[-3:])[:MAX_LINES]


def tool_failed(what: str, code: int | None, output: str, log: Path | None = None) -> ToolError:
    """`<what> failed (exit N): <first error line>`, the other error lines below it."""
    lines = [one_line(line) for line in error_lines(output)] or ["no output"]
    status = f"exit {code}" if code is not None else "no exit status"
    see = f"; see {log}" if log else ""
    rest = "".join(f"\n  {line}" for line in lines[1:])
    return ToolError(f"{what} failed ({status}{see}): {lines[0]}{rest}")


@dataclass(frozen=True)
class Done:
    """A finished process; `code` is None when it was stopped at its timeout."""

    code: int | None
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.code == 0


def run(
    argv: list[str],
    what: str | None = None,
    *,
    check: bool = True,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    timeout: float | None = None,
    log: Path | None = None,
) -> Done:
    """Run `argv` to completion in its own process group, output captured.

    With `check`, a non-zero exit, a timeout or a missing program raises a ToolError
    naming `what` (default: the program and its first argument). `env` replaces the
    environment; with `log`, the command line and its output are appended there. The
    log and the error are redacted; the output returned is the tool's own (a credential
    helper's answer is data, not a message).
    """
    what = what or " ".join([Path(argv[0]).name, *argv[1:2]])
    try:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=dict(given) if (given := telemetry.child_env(env)) is not None else None,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as exc:
        if not check:
            return Done(127, "", str(exc))
        raise ToolError(f"{what}: cannot run {argv[0]} ({exc.strerror or exc})") from None
    try:
        out, err = process.communicate(stdin, timeout=timeout)
        done = Done(process.returncode, out, err)
    except subprocess.TimeoutExpired:
        stop_group(process)
        done = Done(None, "", f"stopped after {timeout:g} s")
    if log is not None:
        _append(log, argv, redact(done.out + done.err))
    if check and not done.ok:
        raise tool_failed(what, done.code, f"{done.out}\n{done.err}", log)
    return done


def output(argv: list[str], what: str | None = None, **options: object) -> str:
    """What `argv` printed on stdout, stripped; a failure raises (see `run`)."""
    return run(argv, what, **options).out.strip()  # type: ignore[arg-type]


def streamed(
    argv: list[str],
    log: Path,
    what: str,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run a long build through python-on-whales, appending its output to `log` as it
    comes (redacted) and handing each line to `on_line`; a failure names `what`, the
    exit code and the tool's error lines, not the command line (that is in the log)."""
    from python_on_whales.exceptions import DockerException  # only builds need it
    from python_on_whales.utils import stream_stdout_and_stderr

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink, progress.activity(what) as show:
        sink.write(f"$ {redact(' '.join(argv))}\n".encode())
        try:
            for _, line in stream_stdout_and_stderr(
                argv, env=dict(telemetry.child_env(env) or os.environ)
            ):
                text = redact(line.decode(errors="replace"))
                sink.write(text.encode())
                show(text)
                if on_line:
                    on_line(text.rstrip())
        except DockerException as exc:
            sink.flush()
            said = log.read_text(errors="replace").split(f"$ {argv[0]}")[-1]
            raise tool_failed(what, exc.return_code, said, log) from None


class Background:
    """A process left running (a server under test, a registry); `stop()` ends its
    process group, hard after 5 s."""

    def __init__(self, argv: list[str], sink: Path | None = None) -> None:
        self._sink = sink.open("wb") if sink else None
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=self._sink or subprocess.DEVNULL,
            stderr=subprocess.STDOUT if self._sink else subprocess.DEVNULL,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        stop_group(self.process)
        if self._sink:
            self._sink.close()


def stop_group(process: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=5)
            return
        except subprocess.TimeoutExpired:
            continue


def _append(log: Path, argv: Iterable[str], said: str) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a", encoding="utf-8") as sink:
        sink.write(f"$ {redact(' '.join(argv))}\n{said}")
