"""Fast checks of edge cases: `syntra init`'s walk and names, bind volumes, `up`'s
caches and engine output, the run log's redaction, the wasm tasks' up-to-date checks,
Cargo.toml shapes and guest source files."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from doit.exceptions import TaskFailed
from doit.task import Task

from syntra.errors import SyntraError, ToolError
from syntra.pipeline import stages
from syntra.pipeline.context import Context
from tests.conftest import REPO, Result

# 1. syntra init


def test_init_names_a_third_fib_without_looping(tmp_path: Path) -> None:
    for folder in ("a/fib", "b/fib-3", "c/fib"):
        (tmp_path / folder / "guest").mkdir(parents=True)
        (tmp_path / folder / "guest" / "Dockerfile").write_text("FROM scratch\n")
        (tmp_path / folder / "fib.c").write_text("int fib(int n) { return n; }\n")
    done = subprocess.run(
        [sys.executable, "-m", "syntra", "init"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
    )
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "syntra.yaml").read_text()
    for name in ('"fib"', '"fib-3"', '"fib-2"', '"guest"', '"guest-2"', '"guest-3"'):
        assert f"  {name}:" in text, text


def test_init_does_not_enter_skipped_folders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syntra.cli.init import find_dockerfiles, find_guests

    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM scratch\n")
    for skipped in ("node_modules/pkg", ".git/x", "target/debug", "env/lib"):
        (tmp_path / skipped).mkdir(parents=True)
        (tmp_path / skipped / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    entered: list[str] = []
    scandir = os.scandir

    def spy(path: Any = ".") -> Any:
        entered.append(str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", spy)
    assert [image.dockerfile for image in find_dockerfiles(tmp_path)] == ["app/Dockerfile"]
    assert find_guests(tmp_path) == []
    assert entered
    for skipped in ("node_modules", ".git", "target", "env"):
        assert not [p for p in entered if skipped in Path(p).parts], entered


# 2. compose bind volumes

STACK = """\
version: 1
project: {name: demo}
services:
  db:
    image: postgres:16
    volumes: [VOLUME]
"""


@pytest.mark.parametrize(
    ("volume", "said"),
    [
        ("./../up:/seed", "services.db.volumes[0]: './../up' escapes the repository root"),
        ("./out:/seed", "services.db.volumes[0]: './out' escapes the repository root"),
        ("./a;b:/seed", "services.db.volumes[0]: './a;b' cannot be a path: ';' is not allowed"),
    ],
)
def test_bind_volumes_stay_in_the_repository(
    tmp_path: Path, syntra: Callable[..., Result], volume: str, said: str
) -> None:
    (tmp_path / "out").symlink_to("/etc")
    (tmp_path / "syntra.yaml").write_text(STACK.replace("VOLUME", json.dumps(volume)))
    result = syntra(tmp_path, "validate")
    assert result.code == 2 and result.out == ""
    assert len(result.err.splitlines()) == 1 and said in result.err, result.err


def test_bind_volume_with_a_double_slash_is_a_repository_folder(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    (tmp_path / "syntra.yaml").write_text(STACK.replace("VOLUME", '".//etc:/x:ro"'))
    assert syntra(tmp_path, "render").code == 0
    text = (tmp_path / "ContainerSpecs" / "compose.yaml").read_text()
    assert '"../etc:/x:ro"' in text and '"/etc' not in text


# 3. syntra up: its image cache and the engine's inspect output


def _context(root: Path) -> Context:
    return Context.load(root / "syntra.yaml")


def test_damaged_image_cache_counts_as_absent(tmp_path: Path) -> None:
    from syntra.up import stack

    record = tmp_path / "images.json"
    for text in ('{"web": "x"}', "{not json", '{"web": {"inputs": 1}}', "[]"):
        record.write_text(text)
        assert stack._read_built(record) == ({}, [f"{record}: damaged; building the images again"])
    record.write_text('{"web": {"inputs": "k", "engine": "podman", "pin": "p"}}')
    assert stack._read_built(record) == (
        {"web": stack.Built(inputs="k", engine="podman", pin="p")},
        [],
    )
    assert stack._read_built(tmp_path / "missing.json") == ({}, [])


@pytest.mark.parametrize(
    "said", ["not json", "{}", "[]", '[{"Id": "abc"}]', '[{"Id": "abc", "State": "up"}]']
)
def test_unexpected_inspect_output_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, said: str
) -> None:
    from syntra import process
    from syntra.up import stack

    (tmp_path / "syntra.yaml").write_text(STACK.replace("VOLUME", '"data:/d"'))
    ctx = _context(tmp_path)
    answers = iter(["0123456789abcdef\n", said])
    monkeypatch.setattr(process, "output", lambda *a, **k: next(answers))
    with pytest.raises(ToolError) as raised:
        stack.container(ctx, stack.Engine("podman", ("podman", "compose")), "db")
    assert str(raised.value).startswith("podman inspect 0123456789ab: ")
    assert len(str(raised.value).splitlines()) == 1


def test_inspect_output_gives_the_container(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syntra import process
    from syntra.up import stack

    (tmp_path / "syntra.yaml").write_text(STACK.replace("VOLUME", '"data:/d"'))
    ctx = _context(tmp_path)
    state = {"Running": True, "Healthcheck": {"Status": "healthy"}, "Pid": 3}
    inspected = [{"Id": "abc", "State": state, "Config": {"Labels": None}}]
    answers = iter(["abc\n", json.dumps(inspected)])
    monkeypatch.setattr(process, "output", lambda *a, **k: next(answers))
    found = stack.container(ctx, stack.Engine("podman", ("podman", "compose")), "db")
    assert found == stack.Container("abc", True, "", "healthy")


# 4. the run log


def test_run_log_redacts_the_command_and_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from syntra.pipeline import tasklog
    from syntra.redaction import keep_secret

    keep_secret("hunter2-secret")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tasklog, "invocation", lambda: "doit --token hunter2-secret")

    fail = TaskFailed("docker web: login with hunter2-secret refused\n")

    reporter = tasklog.Reporter(open(os.devnull, "w"), {})  # noqa: SIM115
    reporter.initialize([], [])
    reporter.add_failure(Task("docker:web", [lambda: None]), fail)
    reporter.complete_run()
    text = (tmp_path / ".syntra" / "runs" / "last.json").read_text()
    assert "hunter2-secret" not in text
    log = tasklog.read_last_run(tmp_path)
    assert log is not None
    assert log.command == "doit --token ***"
    assert log.tasks[0].error == "docker web: login with *** refused"


# 5. the wasm and compose tasks

GUESTS = """\
version: 1
project: {name: demo}
registries:
  local: {url: "127.0.0.1:5000", insecure: true}
wasm:
  fib:
    language: c
    source: fib
    exports: [fib]
    web: WEB
"""
MODULE = b"\x00asm\x01\x00\x00\x00"
COMPONENT = b"\x00asm\x0d\x00\x01\x00"


@pytest.fixture
def guest_tasks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from syntra.pipeline import tasks

    (tmp_path / "fib").mkdir()
    (tmp_path / "fib" / "fib.c").write_text("int fib(int n) { return n; }\n")
    monkeypatch.chdir(tmp_path)
    tasks._context.cache_clear()
    yield tasks
    tasks._context.cache_clear()


def _setup(root: Path, web: str, wasm: bytes) -> Path:
    (root / "syntra.yaml").write_text(GUESTS.replace("WEB", web))
    output = root / _context(root).plan.guest("fib").output
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(wasm)
    return output


_WHICH = shutil.which


def _jco(monkeypatch: pytest.MonkeyPatch, present: bool) -> None:
    real = _WHICH
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: "/x/jco" if name == "jco" and present else real(name)
    )


@pytest.mark.parametrize(
    ("web", "wasm"),
    [("{publish: false}", COMPONENT), ("{publish: false}", MODULE), ("true", MODULE)],
)
def test_publish_does_not_depend_on_jco_unless_it_ships_a_component_bundle(
    guest_tasks: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, web: str, wasm: bytes
) -> None:
    _setup(tmp_path, web, wasm)
    _jco(monkeypatch, True)
    with_jco = stages.wasm_publish_state(guest_tasks._context(), "fib")
    _jco(monkeypatch, False)
    assert stages.wasm_publish_state(guest_tasks._context(), "fib") == with_jco


def test_a_published_component_bundle_depends_on_jco(
    guest_tasks: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(tmp_path, "{publish: true}", COMPONENT)
    _jco(monkeypatch, True)
    with_jco = stages.wasm_publish_state(guest_tasks._context(), "fib")
    _jco(monkeypatch, False)
    assert stages.wasm_publish_state(guest_tasks._context(), "fib") != with_jco


def test_web_task_of_a_component_without_jco_is_up_to_date(
    guest_tasks: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(tmp_path, "true", COMPONENT)
    _jco(monkeypatch, False)
    web = next(t for t in guest_tasks.task_wasm() if t["name"] == "fib.web")
    check = web["uptodate"][0]

    class Task:
        value_savers: ClassVar[list[Any]] = []

    check.configure_task(Task())
    assert check(Task(), {}) is False  # never run: runs once
    saved = Task.value_savers[0]()
    assert not (tmp_path / "dist" / "web" / "fib").exists()
    assert check(Task(), saved) is True  # rightly absent: nothing to do
    _jco(monkeypatch, True)
    assert check(Task(), saved) is False  # jco came: the bundle can be made


def test_web_task_of_a_module_ignores_jco(
    guest_tasks: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _setup(tmp_path, "true", MODULE)
    (tmp_path / "dist" / "web" / "fib").mkdir(parents=True)
    _jco(monkeypatch, False)
    state = stages.web_state(guest_tasks._context(), "fib")
    _jco(monkeypatch, True)
    assert stages.web_state(guest_tasks._context(), "fib") == state
    assert state[1] is True


def test_compose_file_is_a_target_of_its_task(guest_tasks: Any, tmp_path: Path) -> None:
    (tmp_path / "syntra.yaml").write_text(STACK.replace("VOLUME", '"data:/d"'))
    compose = next(t for t in guest_tasks.task_render() if t["name"] == "compose")
    assert compose["targets"] == ["ContainerSpecs/compose.yaml"]


# 6. names shared by an image and a guest: tests/corpus/guest_image_same_name.yaml

# 7. Cargo.toml shapes

CARGO = """\
[package]
name = "g"
version = "0.1.0"

[lib]
crate-type = ["cdylib"]
"""


@pytest.mark.parametrize(
    ("manifest", "said"),
    [
        ('package = "x"\n[lib]\ncrate-type = ["cdylib"]\n', "'package' is not a table"),
        ('lib = 3\n[package]\nname = "g"\n', "'lib' is not a table"),
        (CARGO.replace('["cdylib"]', '"cdylib-not"'), 'crate-type = ["cdylib"]'),
        (CARGO.replace('["cdylib"]', '"cdylib"'), 'crate-type = ["cdylib"]'),
        (CARGO.replace('["cdylib"]', '["rlib"]'), 'crate-type = ["cdylib"]'),
    ],
)
def test_malformed_cargo_toml_is_one_line(tmp_path: Path, manifest: str, said: str) -> None:
    from syntra.wasm.languages import rust

    path = tmp_path / "Cargo.toml"
    path.write_text(manifest)
    with pytest.raises(SyntraError) as raised:
        rust.crate_file(path)
    assert said in str(raised.value) and len(str(raised.value).splitlines()) == 1
    assert rust.LANGUAGE.detect(tmp_path) is None
    path.write_text(CARGO)
    assert rust.crate_file(path) == "g.wasm"


def test_init_with_a_malformed_cargo_toml(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "Cargo.toml").write_text('package = "x"\nlib = 3\n')
    result = syntra(tmp_path, "init")
    assert result.code == 0, result.err
    assert "wasm:" not in (tmp_path / "syntra.yaml").read_text().replace("# wasm:", "")


# 8. guest sources


def test_cargo_target_is_not_a_source(tmp_path: Path) -> None:
    from syntra.paths import source_files

    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "lib.rs").write_text("")
    (tmp_path / "Cargo.toml").write_text(CARGO)
    for built in ("target/debug/g.d", ".build/x.o", "src/__pycache__/m.pyc"):
        (tmp_path / built).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / built).write_text("")
    found = [p.relative_to(tmp_path).as_posix() for p in source_files(tmp_path)]
    assert found == ["Cargo.toml", "src/lib.rs"]
