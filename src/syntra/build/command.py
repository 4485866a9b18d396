"""What docker buildx and podman share: the build flags and running a logged command."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from python_on_whales.exceptions import DockerException
from python_on_whales.utils import stream_stdout_and_stderr

from syntra.build import BuildRequest
from syntra.errors import SyntraError
from syntra.layout import STATE_DIR
from syntra.plan import ImagePlan

TAIL_LINES = 15


def image_flags(
    image: ImagePlan, root: Path, args: dict[str, str], label_flag: str = "--label"
) -> list[str]:
    """Build args, labels, target and secrets: spelt the same by every builder CLI
    but for the label flag (Apple's `container` only has `-l`)."""
    flags: list[str] = []
    for key, value in args.items():
        flags += ["--build-arg", f"{key}={value}"]
    for key, value in image.labels.items():
        flags += [label_flag, f"{key}={value}"]
    if image.target:
        flags += ["--target", image.target]
    for secret in image.secrets:
        source = f"env={secret['env']}" if "env" in secret else f"src={root / secret['src']}"
        flags += ["--secret", f"id={secret['id']},{source}"]
    return flags


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

    On failure the error names `what`, the exit code and the last lines of output;
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
            tail = log.read_text(errors="replace").splitlines()[-TAIL_LINES:]
            raise SyntraError(
                f"{what} failed (exit {exc.return_code}); see {log}\n" + "\n".join(tail)
            ) from None
