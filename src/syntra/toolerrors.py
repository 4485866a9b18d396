"""What a failed tool said, found rather than tailed.

Tools bury their error under what follows it: componentize-py under a Rust backtrace
(`RUST_BACKTRACE=1`, common in CI images), swiftc under notes and source excerpts,
podman under cleanup lines. The last lines of output are often frames; the error
lines are what the user needs.
"""

from __future__ import annotations

import re

from syntra.errors import SyntraError, one_line

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
    lines = [_ANSI.sub("", line).strip() for line in output.splitlines()]
    lines = [line for line in lines if line and not _FRAME.search(line)]
    found: list[str] = []
    for line in lines:
        if _ERROR.search(line) and line not in found:
            found.append(line)
    return (found or lines[-3:])[:MAX_LINES]


def tool_failed(what: str, code: int | None, output: str, log: str | None = None) -> SyntraError:
    """`<what> failed (exit N): <first error line>`, the other error lines below it."""
    lines = [one_line(line) for line in error_lines(output)] or ["no output"]
    status = f"exit {code}" if code is not None else "no exit status"
    see = f"; see {log}" if log else ""
    rest = "".join(f"\n  {line}" for line in lines[1:])
    return SyntraError(f"{what} failed ({status}{see}): {lines[0]}{rest}")
