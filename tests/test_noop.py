"""A second `doit` with nothing changed runs nothing and asks no registry: on a clean
tree, on a dirty one, after a comment-only spec change, after doit's state is lost, and
not after a record is damaged. The registry is real, behind the counting proxy of
tests/support/faults.py, and declared without `insecure` (loopback is plain HTTP)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from syntra.oci.client import Client, loopback
from syntra.paths import STATE_DIR, doit_state, record_path
from tests.conftest import commit, git, ran, run
from tests.support.faults import FaultProxy, fault_proxy
from tests.support.projects import SHOWCASE, make_project, record


def _doit(root: Path, *args: str) -> str:
    done = run(root, "doit", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _quiet(root: Path, proxy: FaultProxy) -> None:
    """A no-op: only `-- ` lines, exit 0, and not one request to the registry."""
    before = proxy.requests
    out = _doit(root)
    assert out and all(line.startswith("-- ") for line in out.splitlines()), out
    assert proxy.requests == before


@pytest.mark.e2e
def test_a_second_run_is_a_no_op(tmp_path: Path, registry: str, base: str) -> None:
    with fault_proxy(registry) as proxy:
        root = make_project(tmp_path / "repo", proxy.address, base.replace(registry, proxy.address))
        text = (root / "syntra.yaml").read_text()
        assert "insecure: true" in text
        (root / "syntra.yaml").write_text(text.replace(", insecure: true", ""))
        (root / "NOTES.md").write_text("outside every image\n")
        commit(root, "loopback registry, plain HTTP undeclared")
        first = _doit(root)
        assert ran(first)[0] == "preflight" and "docker:app" in ran(first)
        _quiet(root, proxy)

        # A comment in the template: specs rendered again, the image's inputs the same.
        template = root / "templates" / "app.j2"
        template.write_text("# a note for readers\n" + template.read_text())
        commit(root, "a comment")
        built = record(root)["digest"]
        retag = _doit(root)
        assert "render:app" in ran(retag) and "preflight" not in ran(retag)
        assert "unchanged (already built from these inputs): retagged" in retag
        assert record(root)["digest"] == built
        _quiet(root, proxy)

        # A dirty tree: its version is pushed once, then the run is a no-op again.
        (root / "NOTES.md").write_text("edited, not committed\n")
        dirty = _doit(root)
        assert ran(dirty) == ["docker:app"]
        assert str(record(root)["version"]).endswith(".dirty")
        _quiet(root, proxy)

        # doit's state lost: every task runs, no blob is uploaded again.
        doit_state(root).unlink()
        proxy.uploaded.clear()
        again = _doit(root)
        assert "docker:app" in ran(again)
        assert proxy.uploaded == []
        assert record(root)["uploaded_bytes"] == 0 and record(root)["digest"] == built
        _quiet(root, proxy)

        # A damaged record never makes its task up to date.
        path = record_path(root, "app")
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        mended = _doit(root, "docker")
        assert ran(mended) == ["docker:app"]
        assert record(root)["digest"] == built
        _quiet(root, proxy)


@pytest.mark.e2e
def test_lost_state_asks_the_registry_and_sends_nothing(
    tmp_path: Path, registry: str, base: str
) -> None:
    """Right after the push that built the image (its record counts what it sent), doit's
    state is lost: the image task runs, finds every platform under its inputs tag,
    retags, uploads no blob, and its record counts the bytes this run sent: none."""
    with fault_proxy(registry) as proxy:
        root = make_project(tmp_path / "repo", proxy.address, base.replace(registry, proxy.address))
        text = (root / "syntra.yaml").read_text()  # a repository no other test pushes to
        (root / "syntra.yaml").write_text(text.replace("{name: demo}", "{name: lost}"))
        commit(root, "its own repository")
        first = _doit(root)
        assert "app: built " in first
        built = record(root)
        assert int(str(built["uploaded_bytes"])) > 0 and proxy.uploaded

        doit_state(root).unlink()
        proxy.uploaded.clear()
        again = _doit(root)
        assert "docker:app" in ran(again) and "preflight" in ran(again)
        assert "unchanged (already built from these inputs): retagged" in again
        assert proxy.uploaded == []
        assert record(root)["uploaded_bytes"] == 0
        assert record(root)["digest"] == built["digest"]
        _quiet(root, proxy)


@pytest.mark.e2e
def test_lost_state_publishes_no_guest_bytes_again(tmp_path: Path, registry: str) -> None:
    """The same for a wasm guest: compiled again to the same bytes, its publish finds the
    artifact under its inputs tag and sends no blob; its record says 0 bytes."""
    with fault_proxy(registry) as proxy:
        root = tmp_path / "repo"
        shutil.copytree(SHOWCASE / "C", root / "guest")
        (root / ".gitignore").write_text(f"{STATE_DIR}/\n")
        (root / "syntra.yaml").write_text(
            "version: 1\n"
            "project: {name: lost-guest, version: 1.0.0}\n"
            f"registries: {{local: {{url: '{proxy.address}'}}}}\n"
            "wasm:\n"
            "  fib-c:\n"
            "    language: c\n"
            "    source: guest\n"
            "    tests: [{call: fib, args: [24], expect: 46368}]\n"
        )
        git(root, "init", "-q", "-b", "main")
        commit(root, "a guest")
        _doit(root, "wasm")
        published = record(root, "fib-c")
        assert int(str(published["uploaded_bytes"])) > 0 and proxy.uploaded

        doit_state(root).unlink()
        proxy.uploaded.clear()
        again = _doit(root, "wasm")
        assert "wasm:fib-c.publish" in ran(again)
        assert proxy.uploaded == []
        assert record(root, "fib-c")["uploaded_bytes"] == 0
        assert record(root, "fib-c")["digest"] == published["digest"]
        quiet = _doit(root, "wasm")
        assert all(line.startswith("-- ") for line in quiet.splitlines()), quiet


@pytest.mark.e2e
def test_merge_says_what_it_did(tmp_path: Path, registry: str, base: str) -> None:
    root = make_project(tmp_path / "repo", registry, base)
    for platform in ("linux/amd64", "linux/arm64"):
        done = run(root, "syntra", "build", "app", "--platform", platform, "--push-by-digest")
        assert done.returncode == 0, done.stderr
    merged = run(root, "syntra", "merge", "app")
    assert merged.returncode == 0, merged.stderr
    digest = json.loads(merged.stdout)["digest"]
    assert merged.stderr.startswith(f"app: index pushed: {digest} -> ")
    again = run(root, "syntra", "merge", "app")
    assert again.stderr.startswith(f"app: index unchanged: {digest} -> ")


def test_loopback_registries_speak_plain_http() -> None:
    for host in ("localhost", "localhost:5000", "127.0.0.1:5000", "127.3.2.1", "[::1]:5000"):
        assert loopback(host) and Client(host).base == f"http://{host}"
    for host in ("ghcr.io", "10.0.0.1:5000", "localhost.example.com", "[fe80::1]:5000"):
        assert not loopback(host) and Client(host).base == f"https://{host}"
    assert Client("ghcr.io", insecure=True).base == "http://ghcr.io"
