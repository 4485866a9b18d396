"""The error model: one line and an exit code by what failed (1 refused, 2 configuration,
3 build or tool, 4 registry), the traceback only with SYNTRA_DEBUG=1, and damaged or
unwritable local state reported, never trusted."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from syntra.oci import MANIFEST
from syntra.paths import DEFAULT_KEY, doit_state, state_dir
from syntra.registry.local import free_port
from tests.conftest import Result, commit, run

FAILING = 'FROM scratch\nRUN ["/no/such/program"]\n'


def _source_spec(project: Path) -> None:
    (project / "web" / "Dockerfile").write_text(FAILING)
    text = (
        (project / "syntra.yaml").read_text().replace("    base: 127.0.0.1:5000/demo/base:1\n", "")
    )
    (project / "syntra.yaml").write_text(text + "    dockerfile: web/Dockerfile\n")
    commit(project, "source spec")


def test_exit_codes_say_what_failed(project: Path, syntra: Callable[..., Result]) -> None:
    text = (project / "syntra.yaml").read_text()
    (project / "syntra.yaml").write_text(text.replace("name: demo", "name: [demo]"))
    config = syntra(project, "validate")
    assert config.code == 2 and config.err.count("\n") == 1, config.err

    (project / "syntra.yaml").write_text(text)
    port = free_port()  # nothing listens there
    registry = syntra(project, "inspect", "--insecure", f"127.0.0.1:{port}/x/y:1")
    assert registry.code == 4, registry.err
    assert "connection refused" in registry.err.lower() and "Traceback" not in registry.err

    _source_spec(project)
    tool = syntra(project, "test", "web", "--builder", "podman", "--platform", "linux/amd64")
    assert tool.code == 3, tool.err
    assert tool.err.startswith("podman build of web for linux/amd64 failed (exit ")


def test_syntra_debug_shows_the_traceback(project: Path) -> None:
    text = (project / "syntra.yaml").read_text()
    (project / "syntra.yaml").write_text(text.replace("name: demo", "name: [demo]"))
    quiet = run(project, "syntra", "validate")
    loud = run(project, "syntra", "validate", env={"SYNTRA_DEBUG": "1"})
    assert (quiet.returncode, loud.returncode) == (2, 2)
    assert "Traceback" not in quiet.stderr
    assert "Traceback (most recent call last)" in loud.stderr
    assert loud.stderr.strip().endswith(quiet.stderr.strip())


def test_unwritable_state_is_one_line(
    project: Path, syntra: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    state_dir(project).write_text("not a folder\n")  # as root, only this stops a write
    done = run(project, "doit", "render")
    assert done.returncode == 3, done.stdout + done.stderr
    assert done.stderr.strip() == f"{state_dir(project)}: cannot write Syntra's state (File exists)"
    monkeypatch.setenv("SYNTRA_KEY_PASSPHRASE", "a passphrase")
    keygen = syntra(project, "keygen")
    assert (keygen.code, keygen.err) == (3, f"{DEFAULT_KEY.parent}: Not a directory\n")


def test_damaged_records_count_as_missing(project: Path) -> None:
    """A truncated record, or one missing a key, makes the push run again instead of
    being taken for done; the stage that needs it says to push again."""
    from syntra.paths import record_path
    from syntra.pipeline.context import Context
    from syntra.records import find_record

    path = record_path(project, "web")
    path.parent.mkdir(parents=True)
    whole = {"schema_version": 1, "kind": "image", "name": "web"}
    for damaged in ('{"schema_version": 1, "kind": "ima', json.dumps(whole)):
        path.write_text(damaged)
        assert find_record(project, "web") is None
    ctx = Context.load(project / "syntra.yaml")
    assert ctx.plan.outputs()[0].task == "docker:web"
    done = run(project, "syntra", "supply")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("web: nothing pushed yet (")
    assert "is damaged or from another version); push it again" in done.stderr


def test_doit_state_is_a_transactional_database(project: Path) -> None:
    done = run(project, "doit", "render")
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(doit_state(project)) as db:
        tasks = {row[0] for row in db.execute("SELECT task_id FROM doit")}
    assert "render:web" in tasks


def test_a_tool_failure_shows_its_error_line_with_secrets_redacted(tmp_path: Path) -> None:
    from syntra import process
    from syntra.errors import ToolError

    password = process.keep_secret("hunter2-registry-password")
    script = (
        f"echo 'note: logging in with {password}'; echo 'Error: login as ci:{password} refused'"
        "; echo '  at frame 1'; exit 7"
    )
    log = tmp_path / "tool.log"
    with pytest.raises(ToolError) as failed:
        process.run(["sh", "-c", script], "login", log=log)
    assert str(failed.value) == f"login failed (exit 7; see {log}): Error: login as ci:*** refused"
    assert password not in log.read_text() and "***" in log.read_text()
    assert failed.value.exit_code == 3


def test_secrets_of_several_lines_are_redacted_line_by_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build secret file and a signing key, printed whole, line by line with a
    builder's prefix, and inside an error line: in no log and no message."""
    from syntra import process
    from syntra.errors import ToolError
    from syntra.image import buildsecrets
    from syntra.supply import keys

    lines = ["registry=https://npm.example.com/", "//npm.example.com/:_authToken=tok-6f1d2c9a"]
    (tmp_path / "npmrc").write_text("\n".join(lines) + "\n")
    image = SimpleNamespace(name="web", secrets=[{"id": "npmrc", "src": "npmrc"}])
    buildsecrets.check(tmp_path, [image])  # type: ignore[list-item]
    monkeypatch.setenv("PASS_FOR_TEST", "correct horse")
    keys.generate(tmp_path / "cosign.key", "PASS_FOR_TEST")
    keys.load_private(tmp_path, "cosign.key", "PASS_FOR_TEST")
    key_lines = (tmp_path / "cosign.key").read_text().splitlines()
    script = (
        "for f in npmrc cosign.key; do cat $f; sed 's/^/#7 0.21 /' $f; done; "
        'echo "Error: rejected $(sed -n 2p npmrc)"; exit 1'
    )
    log = tmp_path / "build.log"
    with pytest.raises(ToolError) as failed:
        process.run(["sh", "-c", script], "build", cwd=tmp_path, log=log)
    streamed = tmp_path / "streamed.log"
    with pytest.raises(ToolError):
        process.streamed(["sh", "-c", f"cd {tmp_path} && {script}"], streamed, "build")
    assert str(failed.value).startswith(f"build failed (exit 1; see {log}): Error: rejected ***")
    for text in (log.read_text(), streamed.read_text(), str(failed.value)):
        assert "***" in text
        for line in lines + key_lines[1:-1]:
            assert line not in text


def test_malformed_content_is_one_line(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    layout = tmp_path / "layout"
    (layout / "blobs" / "sha256").mkdir(parents=True)
    (layout / "index.json").write_text('{"schemaVersion": 2, "manifests": [{"size": 1}]}')
    broken = syntra(tmp_path, "copy", f"oci:{layout}", f"oci:{tmp_path / 'out'}")
    assert broken.code == 3 and broken.err.count("\n") == 1, broken.err  # a local file
    assert broken.err.startswith(f"{layout}: not an OCI image layout (")

    manifest = b'{"schemaVersion": 2, "layers": "none"}'
    digest = hashlib.sha256(manifest).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(manifest)
    entry = {"mediaType": MANIFEST, "digest": f"sha256:{digest}", "size": len(manifest)}
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    malformed = syntra(tmp_path, "copy", f"oci:{layout}", f"oci:{tmp_path / 'out'}")
    assert (malformed.code, malformed.err) == (3, f"sha256:{digest} has malformed descriptors\n")
