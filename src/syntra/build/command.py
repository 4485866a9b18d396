"""What docker buildx and podman share: the build flags and running a logged command."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from python_on_whales.exceptions import DockerException
from python_on_whales.utils import stream_stdout_and_stderr

from syntra.build import BuildRequest
from syntra.build.flags import image_flags
from syntra.layout import STATE_DIR
from syntra.toolerrors import tool_failed


def shared_flags(request: BuildRequest) -> list[str]:
    image = request.image
    flags = ["--platform", request.platform, "--file", str(request.root / image.dockerfile)]
    flags += image_flags(image, request.root, request.args)
    if image.plugins:
        # The rendered specs `COPY --from=plugins <guest>.wasm /opt/plugins/`.
        flags += ["--build-context", f"plugins={request.root / STATE_DIR / 'wasm'}"]
    return flags


def run_logged(
    argv: list[str],
    log: Path,
    what: str,
    env: dict[str, str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run `argv` through python-on-whales, appending its output to `log`.

    On failure the error names `what`, the exit code and the tool's error lines;
    the command line itself is not repeated (it is in the log).
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as sink:
        sink.write(f"$ {' '.join(argv)}\n".encode())
        try:
            for _, line in stream_stdout_and_stderr(argv, env=env or dict(os.environ)):
                sink.write(line)
                if on_line:
                    on_line(line.decode(errors="replace").rstrip())
        except DockerException as exc:
            sink.flush()
            output = log.read_text(errors="replace").split(f"$ {argv[0]}")[-1]
            raise tool_failed(what, exc.return_code, output, str(log)) from None
