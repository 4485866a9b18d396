"""Throwaway repositories the tests build: an image project on a busybox base, and the
showcase guests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from syntra.paths import STATE_DIR, record_path
from tests.conftest import REPO, commit, git, run

TEMPLATE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG GREETING
COPY . /srv/
RUN ["/bin/busybox", "sh", "-c", "uname -m > /srv/arch.txt && echo $GREETING > /srv/greeting.txt"]
"""


def make_project(root: Path, registry: str, base: str, extra: str = "") -> Path:
    (root / "app").mkdir(parents=True)
    (root / "app" / "index.html").write_text("<h1>app</h1>\n")
    (root / "app" / ".dockerignore").write_text("*.tmp\n")
    (root / "templates").mkdir()
    (root / "templates" / "app.j2").write_text(TEMPLATE)
    (root / ".gitignore").write_text(f"{STATE_DIR}/\n")
    (root / "syntra.yaml").write_text(
        "version: 1\n"
        "project: {name: demo}\n"
        f"registries: {{local: {{url: '{registry}', insecure: true}}}}\n"
        "images:\n"
        "  app:\n"
        "    template: app.j2\n"
        "    context: app\n"
        f"    base: {base}\n"
        "    args: {GREETING: hello}\n"
        "    tags: ['{{ version }}', latest]\n" + extra
    )
    git(root, "init", "-q", "-b", "main")
    commit(root, "initial")
    return root


def record(root: Path, name: str = "app") -> dict[str, object]:
    data: dict[str, object] = json.loads((record_path(root, name)).read_text())
    return data


def doit_ok(root: Path, *args: str, env: dict[str, str] | None = None) -> str:
    done = run(root, "doit", *args, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


SHOWCASE = REPO / "WebAssembly" / "Guest"


def wasm_project(root: Path, registry: str, extra_guests: str = "") -> Path:
    shutil.copytree(
        SHOWCASE, root / "WebAssembly" / "Guest", ignore=shutil.ignore_patterns("__pycache__")
    )
    (root / ".gitignore").write_text(f"{STATE_DIR}/\n")
    (root / "syntra.yaml").write_text(
        "version: 1\n"
        "project: {name: plugins, version: 1.0.0}\n"
        f"registries: {{local: {{url: '{registry}', insecure: true}}}}\n"
        "defaults: {tags: ['{{ version }}']}\n"
        "wasm:\n"
        "  fib-swift:\n"
        "    language: swift\n"
        "    source: WebAssembly/Guest/Swift\n"
        "    mode: embedded\n"
        "    tests: [{call: fib, args: [24], expect: 46368}]\n"
        "  fib-python:\n"
        "    language: python\n"
        "    source: WebAssembly/Guest/Python\n"
        "    world: fib\n"
        "    limits: {max_mem: 256Mi, max_ms: 5000}\n"
        "    tests: [{call: fib, args: [24], expect: 46368}]\n" + extra_guests
    )
    git(root, "init", "-q", "-b", "main")
    commit(root, "guests")
    return root
