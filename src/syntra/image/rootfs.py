"""`syntra import`: a root filesystem tarball into the engine's image store, as an image.

What a Dockerfile's `ENTRYPOINT`, `CMD`, `ENV`, `EXPOSE`, `WORKDIR`, `USER` and
`STOPSIGNAL` would set is given as flags and passed on as `--change` instructions, each
checked first: a service image made offline (PostgreSQL from Debian's packages, made
with debootstrap) runs as the official one would. The result is pinned by its digest in
the engine, the reference `syntra up` and a `FROM` in the same engine can use.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from syntra import process, refs
from syntra.errors import SyntraError, ToolError

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PORT = re.compile(r"\d{1,5}(/(tcp|udp|sctp))?")


@dataclass(frozen=True)
class ImageConfig:
    """The image's run settings, as a Dockerfile would write them."""

    entrypoint: list[str] | None = None
    cmd: list[str] | None = None
    env: list[str] = field(default_factory=list)
    """`NAME=value` each."""
    expose: list[str] = field(default_factory=list)
    workdir: str | None = None
    user: str | None = None
    stop_signal: str | None = None

    def changes(self) -> list[str]:
        """The `--change` instructions, each value checked; one line for the first bad one."""
        found = []
        if self.entrypoint is not None:
            found.append(f"ENTRYPOINT {json.dumps(self.entrypoint)}")
        if self.cmd is not None:
            found.append(f"CMD {json.dumps(self.cmd)}")
        for pair in self.env:
            name, equals, value = pair.partition("=")
            if not equals or not _ENV_NAME.fullmatch(name):
                raise SyntraError(f"--env {pair!r}: not NAME=value")
            found.append(f"ENV {name}={json.dumps(value)}")
        for port in self.expose:
            if not _PORT.fullmatch(port) or not 0 < int(port.split("/")[0]) < 65536:
                raise SyntraError(f"--expose {port!r}: not a port (e.g. 5432 or 53/udp)")
            found.append(f"EXPOSE {port}")
        if self.workdir is not None:
            if not self.workdir.startswith("/"):
                raise SyntraError(f"--workdir {self.workdir!r}: not an absolute path")
            found.append(f"WORKDIR {self.workdir}")
        if self.user is not None:
            found.append(f"USER {self.user}")
        if self.stop_signal is not None:
            found.append(f"STOPSIGNAL {_signal(self.stop_signal)}")
        return found


def words(text: str) -> list[str]:
    """A command as `--entrypoint`/`--cmd` take it: a JSON array (exec form), else split
    like a shell would (`postgres -c fsync=off`), never run through one."""
    if text.lstrip().startswith("["):
        try:
            found = json.loads(text)
        except ValueError:
            found = None
        if not isinstance(found, list) or not all(isinstance(word, str) for word in found):
            raise SyntraError(f"{text!r}: not a JSON array of strings")
        return found
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise SyntraError(f"{text!r}: {exc}") from None


def _signal(name: str) -> str:
    wanted = name.upper()
    wanted = wanted if wanted.startswith("SIG") or wanted.isdigit() else f"SIG{wanted}"
    known = {member.name for member in signal.Signals}
    if wanted not in known and not (wanted.isdigit() and 0 < int(wanted) < 65):
        raise SyntraError(f"--stop-signal {name!r}: not a signal (e.g. SIGINT, SIGTERM)")
    return wanted


def engine_program() -> str:
    """podman when it is installed, else docker: the engines `syntra up` runs on."""
    for program in ("podman", "docker"):
        if shutil.which(program):
            return program
    raise ToolError("import: neither podman nor docker is installed")


def import_rootfs(tarball: Path, name: str, config: ImageConfig, program: str) -> str:
    """Import `tarball` as image `name` with `config`; its reference pinned by digest
    (podman) or its image ID (docker). Inputs are checked before the engine runs."""
    try:
        parsed = refs.parse_image_ref(name)
    except ValueError as exc:
        raise SyntraError(f"{name}: {exc}") from None
    if "@" in name:
        raise SyntraError(f"{name}: name the image by tag, not digest (it gets a new one)")
    changes = config.changes()
    try:
        readable = tarfile.is_tarfile(tarball)
    except OSError as exc:
        raise SyntraError(f"{tarball}: {exc.strerror or exc}") from None
    if not readable:
        raise SyntraError(f"{tarball}: not a tar archive")
    quiet = ["--quiet"] if program == "podman" else []  # docker prints only the ID; no flag
    argv = [program, "import", *quiet, *(f"--change={change}" for change in changes)]
    image_id = process.output([*argv, str(tarball), name], f"{program} import")
    if program != "podman":
        return image_id
    digest = process.output([program, "image", "inspect", "--format", "{{.Digest}}", name])
    return f"{parsed.domain or 'localhost'}/{parsed.path}@{digest}"  # as podman names it
