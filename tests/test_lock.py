"""`syntra.lock` against a real registry: a moved base tag changes nothing until the lock
is updated on purpose; `lock --check` sees the move; `lock --update` shows it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from syntra.lockfile import LOCK_VERSION, Lock, Locked, parse, spec_images
from syntra.oci.client import Client
from tests.conftest import BUSYBOX, REPO, Result, commit, ran, run, skopeo
from tests.support.bases import seed_busybox
from tests.support.projects import doit_ok, make_project, record

pytestmark = pytest.mark.e2e


def _index(registry: str, reference: str) -> dict[str, Any]:
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{reference}")
    data: dict[str, Any] = json.loads(raw)
    return data


def test_a_moved_base_changes_nothing_until_the_lock_is_updated(
    tmp_path: Path,
    registry: str,
    store: dict[str, str],
    syntra: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = seed_busybox(registry, BUSYBOX, "fixtures/locked-base", "1")
    root = make_project(tmp_path / "repo", registry, base, "    repository: tests/locked\n")
    locked = syntra(root, "lock")
    assert locked.code == 0, locked.err
    assert f"{base}: locked sha256:" in locked.out
    lock = json.loads((root / "syntra.lock").read_text())
    index = _index(registry, base)
    before = skopeo("inspect", "--format", "{{.Digest}}", "--tls-verify=false", f"docker://{base}")
    assert lock["version"] == LOCK_VERSION
    assert lock["images"][base]["digest"] == before.strip()
    assert lock["images"][base]["platforms"] == {
        f"linux/{m['platform']['architecture']}": m["digest"] for m in index["manifests"]
    }
    again = (root / "syntra.lock").read_bytes()
    assert syntra(root, "lock").out.strip() == "syntra.lock up to date"
    assert (root / "syntra.lock").read_bytes() == again  # same registry, same bytes
    commit(root, "lock")
    doit_ok(root)
    first = record(root)

    # The tag moves upstream: arm64 now gets the amd64 busybox.
    seed_busybox(
        registry,
        {"amd64": BUSYBOX["amd64"], "arm64": BUSYBOX["amd64"]},
        "fixtures/locked-base",
        "1",
    )
    forced = doit_ok(root, "--always-execute", "docker")
    assert "app: linux/amd64, linux/arm64 unchanged (already built from these inputs)" in forced
    assert record(root)["digest"] == first["digest"]
    assert record(root)["base"] == f"{base.rsplit(':', 1)[0]}@{before.strip()}"

    # Nothing asks the base's registry what the tag points at: every manifest request
    # for the base's repository (HEAD or GET, counted in-process) names a digest.
    asked: list[str] = []
    for method in ("head_manifest", "find_manifest"):
        real = getattr(Client, method)

        def counted(client: Client, repository: str, reference: str, real: Any = real) -> Any:
            asked.append(f"{repository}@{reference}")
            return real(client, repository, reference)

        monkeypatch.setattr(Client, method, counted)
    built = syntra(root, "build", "app", "--platform", "linux/amd64", "--output", "oci:out")
    assert built.code == 0, built.err
    base_requests = [a.split("@", 1)[1] for a in asked if a.startswith("fixtures/locked-base@")]
    assert base_requests and all(r.startswith("sha256:") for r in base_requests), asked
    monkeypatch.undo()

    checked = syntra(root, "lock", "--check")
    assert checked.code == 1
    moved = _index(registry, base)
    arm64 = next(
        m["digest"] for m in moved["manifests"] if m["platform"]["architecture"] == "arm64"
    )
    assert (
        f"linux/arm64: {lock['images'][base]['platforms']['linux/arm64']} → {arm64}" in checked.out
    )
    assert "stale" in checked.err and "syntra lock --update" in checked.err
    assert (root / "syntra.lock").read_bytes() == again  # --check writes nothing

    updated = syntra(root, "lock", "--update")
    assert updated.code == 0, updated.err
    after = skopeo("inspect", "--format", "{{.Digest}}", "--tls-verify=false", f"docker://{base}")
    assert f"{base}: {before.strip()} → {after.strip()}" in updated.out
    assert "  linux/arm64: " in updated.out and "  linux/amd64: " not in updated.out
    assert syntra(root, "lock", "--check").code == 0
    commit(root, "lock updated")
    rebuilt = doit_ok(root)
    assert "docker:app" in ran(rebuilt)
    assert record(root)["digest"] != first["digest"]
    assert record(root)["base"] == f"{base.rsplit(':', 1)[0]}@{after.strip()}"


def test_a_lock_that_disagrees_stops_the_run(
    tmp_path: Path, registry: str, base: str, syntra: Callable[..., Result]
) -> None:
    root = make_project(tmp_path / "repo", registry, base, "    repository: tests/disagree\n")
    assert syntra(root, "lock").code == 0
    assert syntra(root, "lock", "--check", "--offline").code == 0
    gone = json.loads((root / "syntra.lock").read_text())
    gone["images"][base]["digest"] = "sha256:" + "0" * 64
    (root / "syntra.lock").write_text(json.dumps(gone))
    missing = syntra(root, "lock", "--check")
    assert missing.code == 1
    assert f"{base}: locked sha256:{'0' * 64} is no longer in its registry" in missing.out
    assert syntra(root, "lock", "--update").code == 0
    assert syntra(root, "lock", "--check").code == 0
    text = (root / "syntra.yaml").read_text()
    (root / "syntra.yaml").write_text(text.replace(base, base.replace(":1.36", ":1.37")))
    done = run(root, "doit")
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        f"syntra.lock: {base.replace(':1.36', ':1.37')} (images.app.base) is not locked; "
        "run `syntra lock`"
    ]
    offline = syntra(root, "lock", "--check", "--offline")
    assert offline.code == 1 and "is not locked; run `syntra lock`" in offline.err
    (root / "syntra.yaml").write_text(text.replace(f"    base: {base}\n", ""))
    unused = run(root, "doit")
    assert unused.returncode == 2
    assert f"syntra.lock: {base} is locked but nothing uses it; run `syntra lock`" in unused.stderr
    redone = syntra(root, "lock")
    assert redone.code == 0 and f"{base}: no longer used, removed" in redone.out
    assert json.loads((root / "syntra.lock").read_text())["images"] == {}


def test_lock_format_is_bounded_and_checked() -> None:
    digest = "sha256:" + "a" * 64
    lock = Lock({"x.io/a:1": Locked("x.io/a:1", digest, {"linux/arm64": digest})})
    assert parse(lock.dumps()) == lock
    assert lock.dumps().endswith(b"\n") and b'"version": 1' in lock.dumps()
    for bad, said in (
        (b"[", "not JSON"),
        (b'{"version": 2, "images": {}}', "version 2 is not one this Syntra reads"),
        (b'{"version": 1, "images": {"a:1": {"digest": "x", "platforms": {}}}}', "digest"),
        (b'{"version": 1, "images": {"A:1": {"digest": "x", "platforms": {}}}}', "lowercase"),
        (b" " * (2 << 20), "larger than"),
    ):
        with pytest.raises(Exception, match=said):
            parse(bad)


def test_spec_images_are_the_literal_froms() -> None:
    text = (
        "ARG BASE_IMAGE\nFROM golang:1.22 AS build\nFROM --platform=$BUILDPLATFORM "
        "x.io/tool:2 as tool\nFROM build AS again\nFROM scratch\nFROM ${BASE_IMAGE}\n"
    )
    assert spec_images(text) == ["golang:1.22", "x.io/tool:2"]


def test_init_locks_what_its_dockerfiles_start_from(
    tmp_path: Path, registry: str, base: str, syntra: Callable[..., Result]
) -> None:
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "Dockerfile").write_text(f"FROM {base} AS build\nFROM build\n")
    (tmp_path / "tool").mkdir()
    (tmp_path / "tool" / "Dockerfile").write_text("FROM 127.0.0.1:9/nowhere/base:1\n")
    done = syntra(tmp_path, "init")
    assert done.code == 0, done.err
    assert "no syntra.lock yet (" in done.out and "127.0.0.1:9" in done.out
    assert "run `syntra lock` once the registries answer" in done.out
    assert not (tmp_path / "syntra.lock").exists()
    (tmp_path / "tool" / "Dockerfile").unlink()
    (tmp_path / "syntra.yaml").unlink()
    (tmp_path / "dodo.py").unlink()
    again = syntra(tmp_path, "init")
    assert "wrote syntra.lock (1 image(s))" in again.out
    lock = json.loads((tmp_path / "syntra.lock").read_text())
    assert list(lock["images"]) == [base]
    assert set(lock["images"][base]["platforms"]) == {"linux/amd64"}


def test_up_runs_locked_service_images_by_digest(tmp_path: Path) -> None:
    from syntra import config
    from syntra.plan import build_plan
    from syntra.up import compose

    (tmp_path / "syntra.yaml").write_text(
        "version: 1\nproject: {name: s}\nservices:\n"
        "  db: {image: 'x.io/pg:15'}\n  cache: {image: 'localhost/made/here:1'}\n"
    )
    digest = "sha256:" + "b" * 64
    loaded = config.load(tmp_path / "syntra.yaml")
    plan = build_plan(loaded)
    lock = Lock({"x.io/pg:15": Locked("x.io/pg:15", digest, {})})
    pins = compose.locked_services(loaded, lock)
    assert pins == {"x.io/pg:15": f"x.io/pg@{digest}"}
    run_file = compose.stack(loaded, plan, pins)
    assert run_file.services["db"]["image"] == f"x.io/pg@{digest}"
    assert run_file.services["cache"]["image"] == "localhost/made/here:1"  # the engine's own
    assert compose.stack(loaded, plan).services["db"]["image"] == "x.io/pg:15"  # committed file


STAGED = """\
ARG BASE_IMAGE
FROM {tools} AS tools
FROM ${{BASE_IMAGE}}
COPY --from=tools /bin/busybox /opt/tools/busybox
"""


def test_a_locked_from_builds_by_digest_and_moves_only_on_update(
    tmp_path: Path, registry: str, base: str, store: dict[str, str], syntra: Callable[..., Result]
) -> None:
    tools = seed_busybox(registry, BUSYBOX, "fixtures/locked-tools", "1")
    root = make_project(
        tmp_path / "repo",
        registry,
        base,
        "    repository: tests/staged\n    platforms: [linux/amd64]\n",
    )
    (root / "templates" / "app.j2").write_text(STAGED.format(tools=tools))
    assert syntra(root, "lock").code == 0
    lock = json.loads((root / "syntra.lock").read_text())
    assert sorted(lock["images"]) == sorted([base, tools])
    commit(root, "staged")
    doit_ok(root)
    first = record(root)
    seed_busybox(registry, {"amd64": BUSYBOX["arm64"]}, "fixtures/locked-tools", "1")
    forced = doit_ok(root, "--always-execute", "docker")
    assert "app: linux/amd64 unchanged (already built from these inputs)" in forced
    assert record(root)["digest"] == first["digest"]
    updated = syntra(root, "lock", "--update", tools)
    assert updated.code == 0 and f"{tools}: sha256:" in updated.out, updated.out
    assert [line for line in updated.out.splitlines() if line.startswith(base)] == []
    by_image = syntra(root, "lock", "--update", "app")  # what images.app uses: base and FROM
    assert f"{base}: unchanged" in by_image.out and f"{tools}: unchanged" in by_image.out
    unknown = syntra(root, "lock", "--update", "ap")
    assert unknown.code == 2 and "nothing named 'ap' is locked" in unknown.err
    assert "docker:app" in ran(doit_ok(root))
    assert record(root)["digest"] != first["digest"]


def test_with_a_base_key_only_signed_bases_are_locked(
    tmp_path: Path, registry: str, store: dict[str, str], syntra: Callable[..., Result]
) -> None:
    from tests.support.signing import cosign

    base = seed_busybox(registry, BUSYBOX, "fixtures/signed-base", "1")
    root = make_project(tmp_path / "repo", registry, base, "    repository: tests/signed\n")
    (root / "keys").mkdir()
    made = cosign("generate-key-pair", "--output-key-prefix", str(root / "keys" / "base"))
    assert made.returncode == 0, made.stderr
    with (root / "syntra.yaml").open("a") as config:
        config.write("supply_chain: {base_key: keys/base.pub}\n")
    refused = syntra(root, "lock")
    assert refused.code == 1
    assert refused.err.count("\n") == 1 and "no valid signature by" in refused.err
    assert "; not locked" in refused.err and not (root / "syntra.lock").exists()
    digest = skopeo("inspect", "--format", "{{.Digest}}", "--tls-verify=false", f"docker://{base}")
    pinned = f"{base.rsplit(':', 1)[0]}@{digest.strip()}"
    signed = cosign("sign", "--key", str(root / "keys" / "base.key"), "--tlog-upload=false",
                    "--allow-http-registry", "--recursive", "--yes", pinned)  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    locked = syntra(root, "lock")
    assert locked.code == 0, locked.err
    assert (
        json.loads((root / "syntra.lock").read_text())["images"][base]["digest"] == digest.strip()
    )


def test_apple_container_refuses_a_locked_from_it_could_not_pin(
    tmp_path: Path,
    registry: str,
    base: str,
    syntra: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from syntra.errors import SyntraError
    from syntra.image.build.container import AppleContainer
    from syntra.image.job import publish_image
    from syntra.pipeline.context import Context

    monkeypatch.setenv("STANDIN_STATE", str(tmp_path / "standin"))
    root = make_project(tmp_path / "repo", registry, base, "    repository: tests/apple-lock\n")
    (root / "templates" / "app.j2").write_text(STAGED.format(tools=base))
    assert syntra(root, "lock").code == 0
    assert syntra(root, "render").code == 0
    job = Context.load(root / "syntra.yaml").job("app")
    assert job.stage_images == {base: str(job.base_reference)}  # the base is the FROM too
    with pytest.raises(SyntraError, match=f"the locked FROM {base} needs a named build context"):
        publish_image(job, AppleContainer(str(REPO / "tests" / "standins" / "container")))
