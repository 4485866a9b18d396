"""Stage: image tests. Every platform of an image is tested after it is built and before
anything is pushed, so an image that fails a test is neither pushed nor tagged.

Four kinds, after container-structure-test's schema 2.0.0 where they overlap: `command`
(run argv in the image; exit code, stdout, stderr), `file` (exists, mode, owner, content,
SHA-256), `metadata` (the image config; no runtime needed) and `http` (start the
entrypoint, wait for the port, request, stop). The runtimes are in `syntra.image.testbox`:
buildah on the built OCI layout (foreign platforms under QEMU; it works where `podman
run` cannot set rlimits) and Apple's `container run`.
"""

from __future__ import annotations

import hashlib
import re
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syntra.config.model import ImageTest
from syntra.errors import SyntraError, ToolError, one_line
from syntra.image.testbox import Box, BoxFactory
from syntra.paths import plugin_file
from syntra.plan import ImagePlan, Plan, test_variables
from syntra.records import TestResult
from syntra.templating import render_inline
from syntra.testruns import ArtifactTests, TestOutcome, keep

SHOWN = 120
"""Characters of observed output shown in a failure line."""


@dataclass(frozen=True)
class Outcome:
    platform: str
    test: str
    problem: str = ""
    """Empty when the test passed; else what was observed."""

    @property
    def ok(self) -> bool:
        return not self.problem


def label(test: ImageTest) -> str:
    if test.name:
        return test.name
    if test.command is not None:
        return "command " + " ".join(test.command)
    if test.file is not None:
        return f"file {test.file}"
    if test.http is not None:
        return f"http :{test.http.port}{test.http.path}"
    return "metadata"


def _shown(text: str) -> str:
    text = one_line(text.strip())
    return repr(text if len(text) <= SHOWN else text[:SHOWN] + "…")


def _command(test: ImageTest, box: Box) -> str:
    assert test.command is not None
    code, out, err = box.run(test.command, test.env, test.timeout)
    if code is None:
        return f"still running after {test.timeout} s"
    expected = test.expect.exit if test.expect.exit is not None else 0
    if code != expected:
        return f"exit {code}, expected {expected} (stderr {_shown(err)})"
    for stream, pattern, text in (
        ("stdout", test.expect.stdout, out),
        ("stderr", test.expect.stderr, err),
    ):
        if pattern is not None and not re.search(pattern, text, re.MULTILINE):
            return f"{stream} {_shown(text)} does not match /{pattern}/"
    return ""


def _file(test: ImageTest, box: Box, variables: dict[str, Any]) -> str:
    assert test.file is not None
    files = box.files
    found = files.resolve(test.file)
    exists = found.exists() or files.resolve(test.file, follow_last=False).is_symlink()
    if not test.exists:
        return "exists, expected absent" if exists else ""
    if not found.exists():
        return "does not exist" if not exists else "is a link to nothing"
    header = files.entry(test.file)
    info = found.lstat()
    kind = stat.S_IFMT(info.st_mode)
    mode = header.mode if header else stat.S_IMODE(info.st_mode)
    if test.mode is not None:
        shown = stat.filemode(kind | mode)
        same = int(test.mode, 8) == mode if test.mode[0].isdigit() else test.mode == shown
        if not same:
            return f"mode {shown} ({mode:04o}), expected {test.mode}"
    if test.owner is not None:
        uid, gid = (header.uid, header.gid) if header else (info.st_uid, info.st_gid)
        owner = f"{uid}:{gid}" if ":" in test.owner else str(uid)
        if owner != test.owner:
            return f"owner {owner}, expected {test.owner}"
    if test.contains is not None or test.sha256 is not None:
        if not found.is_file():
            return "is not a regular file"
        data = found.read_bytes()
        text = data.decode(errors="replace")
        if test.contains is not None and not re.search(test.contains, text, re.MULTILINE):
            return f"content {_shown(text)} does not match /{test.contains}/"
        if test.sha256 is not None:
            digest = render_inline(test.sha256, variables).removeprefix("sha256:")
            actual = hashlib.sha256(data).hexdigest()
            if actual != digest:
                return f"sha256 {actual}, expected {digest}"
    return ""


def _metadata(test: ImageTest, config: dict[str, Any], variables: dict[str, Any]) -> str:
    meta = test.metadata
    assert meta is not None
    for key, wanted, actual in (
        ("entrypoint", meta.entrypoint, config.get("Entrypoint") or []),
        ("cmd", meta.cmd, config.get("Cmd") or []),
        ("user", meta.user, config.get("User") or ""),
        ("workdir", meta.workdir, config.get("WorkingDir") or ""),
    ):
        if wanted is not None and wanted != actual:
            return f"{key} {actual!r}, expected {wanted!r}"
    env = dict(item.partition("=")[::2] for item in config.get("Env") or [])
    for name, value in meta.env.items():
        if env.get(name) != value:
            return f"env {name}={env.get(name)!r}, expected {value!r}"
    labels = config.get("Labels") or {}
    for name, template in meta.labels.items():
        value = render_inline(template, variables)
        if labels.get(name) != value:
            return f"label {name}={labels.get(name)!r}, expected {value!r}"
    exposed = set(config.get("ExposedPorts") or {})
    for port in meta.exposed_ports or []:
        if (port if "/" in port else f"{port}/tcp") not in exposed:
            return f"port {port} not exposed (exposed: {', '.join(sorted(exposed)) or 'none'})"
    return ""


def _http(test: ImageTest, box: Box) -> str:
    import requests

    assert test.http is not None
    port, deadline = test.http.port, time.monotonic() + test.timeout
    if _listening(port):
        return f"port {port} is already in use on this machine"
    try:
        server = box.serve(port)
    except SyntraError as exc:
        return str(exc)
    try:
        while not _listening(port):
            if not server.alive():
                return f"the entrypoint exited before listening on {port}"
            if time.monotonic() > deadline:
                return f"nothing listens on port {port} after {test.timeout} s"
            time.sleep(0.1)
        url = f"http://127.0.0.1:{port}{test.http.path}"
        session = requests.Session()
        session.trust_env = False  # 127.0.0.1 is never reached through $HTTP_PROXY
        while True:  # a published port may accept before the server inside listens
            try:
                response = session.get(url, timeout=max(1.0, deadline - time.monotonic()))
                break
            except requests.RequestException as exc:
                if time.monotonic() > deadline:
                    return f"GET {test.http.path}: {type(exc).__name__}"
                time.sleep(0.2)
        expected = test.expect.status if test.expect.status is not None else 200
        if response.status_code != expected:
            return f"status {response.status_code}, expected {expected}"
        body = test.expect.body
        if body is not None and not re.search(body, response.text, re.MULTILINE):
            return f"body {_shown(response.text)} does not match /{body}/"
        return ""
    finally:
        server.stop()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _one(test: ImageTest, box: Box, variables: dict[str, Any]) -> str:
    try:
        if test.command is not None:
            return _command(test, box)
        if test.file is not None:
            return _file(test, box, variables)
        if test.http is not None:
            return _http(test, box)
        return _metadata(test, box.config, variables)
    except (ValueError, OSError, SyntraError) as exc:  # a template, a file, the runtime
        return str(exc)


def run_tests(
    image: ImagePlan, plan: Plan, root: Path, boxes: dict[str, BoxFactory]
) -> list[TestResult]:
    """Every test of `image` in each platform's box, as each passed; a failure raises one
    line per failing test (image, platform, test, what was observed) once all have run."""
    if not image.tests:
        return []
    tests = [ImageTest.model_validate(test) for test in image.tests]
    plugins = {
        name: hashlib.sha256(plugin_file(root, name).read_bytes()).hexdigest()
        for name in image.plugins
        if plugin_file(root, name).is_file()
    }
    variables = test_variables({**plan.variables, "name": image.name}, plugins)
    outcomes = []
    for platform, opened in boxes.items():
        with opened() as box:
            for test in tests:
                problem = one_line(_one(test, box, variables))
                outcomes.append(Outcome(platform, one_line(label(test)), problem))
    said = [
        TestOutcome(
            test=o.test,
            platform=o.platform,
            outcome="passed" if o.ok else "failed",
            message=o.problem,
        )
        for o in outcomes
    ]
    keep(root, ArtifactTests(artifact=image.name, tests=said))  # each test's own, for the report
    failed = [o for o in outcomes if not o.ok]
    if failed:
        lines = [f"{image.name} {o.platform}: {o.test}: {o.problem}" for o in failed]
        raise ToolError(
            f"{len(failed)} of {len(outcomes)} image tests failed; nothing pushed\n"
            + "\n".join(lines)
        )
    return [TestResult(platform=o.platform, test=o.test) for o in outcomes]
