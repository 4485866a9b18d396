"""Image tests for real: buildah runs the built image on every platform (arm64 under
QEMU) before anything is pushed; a failing test leaves the registry untouched."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.conftest import Result, commit, run
from tests.support.projects import make_project

pytestmark = pytest.mark.e2e

SERVER = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG GREETING
COPY . /srv/
RUN ["/bin/busybox", "sh", "-c", "uname -m > /srv/arch.txt && chmod 0640 /srv/arch.txt"]
EXPOSE 18181
LABEL org.example.team=web
ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "18181", "-h", "/srv"]
"""

PASSING = """\
    platforms: [linux/amd64, linux/arm64]
    tests:
      - name: serves the index page
        http: {port: 18181, path: /index.html}
        expect: {status: 200, body: "<h1>app</h1>"}
      - command: [/bin/busybox, cat, /srv/arch.txt]
        expect: {stdout: "^(x86_64|aarch64)$"}
      - command: [/bin/busybox, sh, -c, "echo oops >&2; exit 3"]
        expect: {exit: 3, stderr: oops}
      - file: /srv/arch.txt
        mode: "0640"
        owner: "0:0"
        contains: "x86_64|aarch64"
      - file: /srv/index.html
        mode: -rw-r--r--
        sha256: 8a0b1bd1f7b3da1ee3c8b52bfbe58c6b0a6c8658dd7bfc0a0b4bb0cab4ec2843
      - file: /etc/shadow
        exists: false
      - metadata:
          entrypoint: [/bin/busybox, httpd, -f, -p, "18181", -h, /srv]
          exposed_ports: ["18181"]
          labels: {org.example.team: web, org.opencontainers.image.version: "{{ version }}"}
"""


def _project(tmp_path: Path, registry: str, base: str, tests: str) -> Path:
    name = tmp_path.name.replace("_", "-").lower()[:40]
    root = make_project(
        tmp_path / "repo", registry, base, f"    repository: tests/{name}\n" + tests
    )
    (root / "templates" / "app.j2").write_text(SERVER)
    commit(root, "a server with tests")
    return root


def _tags(registry: str, root: Path) -> list[str]:
    name = root.parent.name.replace("_", "-").lower()[:40]
    listed = requests.get(f"http://{registry}/v2/tests/{name}/tags/list", timeout=10)
    return list(listed.json().get("tags") or []) if listed.status_code == 200 else []


def test_every_platform_passes_its_tests_before_the_push(
    tmp_path: Path, registry: str, base: str
) -> None:
    import hashlib

    root = _project(tmp_path, registry, base, PASSING)
    digest = hashlib.sha256(b"<h1>app</h1>\n").hexdigest()
    text = (root / "syntra.yaml").read_text()
    (root / "syntra.yaml").write_text(
        text.replace("8a0b1bd1f7b3da1ee3c8b52bfbe58c6b0a6c8658dd7bfc0a0b4bb0cab4ec2843", digest)
    )
    commit(root, "the real digest")
    done = run(root, "doit", "docker")
    assert done.returncode == 0, done.stdout + done.stderr
    for platform in ("linux/amd64", "linux/arm64"):
        assert f"app {platform}: serves the index page: passed" in done.stdout
        assert f"app {platform}: file /srv/index.html: passed" in done.stdout
        assert f"app {platform}: metadata: passed" in done.stdout
    assert "latest" in _tags(registry, root)


def test_failing_tests_are_one_line_each_and_nothing_is_pushed(
    tmp_path: Path, registry: str, base: str
) -> None:
    failing = """\
    platforms: [linux/amd64]
    tests:
      - name: broken entrypoint
        command: [/bin/no-such-program]
      - file: /srv/missing.html
      - name: wrong status
        http: {port: 18181, path: /nowhere.html}
        expect: {status: 200}
      - metadata: {user: nobody}
"""
    root = _project(tmp_path, registry, base, failing)
    done = run(root, "doit", "docker")
    assert done.returncode != 0
    lines = done.stdout.splitlines()
    assert "image tests failed" in done.stdout, done.stdout + done.stderr
    start = next(i for i, line in enumerate(lines) if "image tests failed" in line)
    assert lines[start] == "docker app: 4 of 4 image tests failed; nothing pushed"
    failures = lines[start + 1 : start + 5]
    assert failures[0].startswith("app linux/amd64: broken entrypoint: exit ")
    assert failures[1] == "app linux/amd64: file /srv/missing.html: does not exist"
    assert failures[2] == "app linux/amd64: wrong status: status 404, expected 200"
    assert failures[3] == "app linux/amd64: metadata: user '', expected 'nobody'"
    assert "Traceback" not in done.stdout + done.stderr
    assert _tags(registry, root) == []


def test_syntra_test_runs_the_tests_alone(
    tmp_path: Path, registry: str, base: str, syntra: Callable[..., Result]
) -> None:
    tests = """\
    platforms: [linux/amd64, linux/arm64]
    tests:
      - command: [/bin/busybox, cat, /srv/arch.txt]
        expect: {stdout: "^aarch64$"}
"""
    root = _project(tmp_path, registry, base, tests)
    result = syntra(root, "test", "app", "--platform", "linux/arm64")
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        "app linux/arm64: command /bin/busybox cat /srv/arch.txt: passed",
        "app: 1 test passed; nothing pushed",
    ]
    failed = syntra(root, "test", "app", "--platform", "linux/amd64")
    assert failed.code == 3
    assert failed.err.splitlines()[1] == (
        "app linux/amd64: command /bin/busybox cat /srv/arch.txt: "
        "stdout 'x86_64' does not match /^aarch64$/"
    )
    assert _tags(registry, root) == []


def test_test_keys_are_checked_like_the_rest(
    tmp_path: Path, registry: str, base: str, syntra: Callable[..., Result]
) -> None:
    prefix = "images.app.tests[0]"
    cases = {
        "{file: /a, http: {port: 80}}": f"{prefix}: a test needs exactly one of command, "
        "file, metadata, http; it has file and http",
        "{file: /a, expect: {status: 200}}": f"{prefix}.expect.status: 'status' does not "
        "apply to a file test",
        "{command: [x], mode: '0644'}": f"{prefix}.mode: 'mode' does not apply to a command test",
        "{file: srv/a}": f"{prefix}.file: 'srv/a' is not an absolute path",
        "{file: /a, sha256: '{{ plugins.fib.sha256 }}'}": "'fib' is undefined",
        "{metadata: {labels: {v: '{{ verison }}'}}}": "'verison' is undefined; "
        "did you mean 'version'?",
        "{comand: [x]}": f"{prefix}.comand: unknown key 'comand'; did you mean 'command'?",
        "{file: /a, mode: rwx}": f"{prefix}.mode: 'rwx' is not a mode: "
        "write e.g. 0644 or -rw-r--r--",
    }
    root = _project(tmp_path, registry, base, "")
    text = (root / "syntra.yaml").read_text()
    for case, expected in cases.items():
        (root / "syntra.yaml").write_text(f"{text}    tests:\n      - {case}\n")
        result = syntra(root, "validate")
        assert result.code == 2, case
        assert expected in result.err, (case, result.err)
        assert result.err.count("\n") == 1
