"""Linux image builds for real: podman, QEMU for arm64, a registry, skopeo, OCI schemas."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, cast

import pytest

from syntra.oci import Client
from syntra.paths import STATE_DIR, logs_dir, logs_root, record_path, state_dir
from syntra.registry.local import serve
from tests.conftest import BUSYBOX, commit, git, podman_store, ran, reset_store, run, skopeo
from tests.support.bases import seed_busybox
from tests.support.oci import layer_files, validate
from tests.support.projects import TEMPLATE, doit_ok, make_project, record

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(tmp_path: Path, registry: str, base: str) -> Path:
    name = tmp_path.name.replace("_", "-").lower()[:40]
    extra = f"    repository: tests/{name}\n"
    return make_project(tmp_path / "repo", registry, base, extra)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, registry: str, base: str) -> tuple[Path, str]:
    """A project built and pushed once, for the tests that only read what it made;
    with its `doit` output."""
    root = tmp_path_factory.mktemp("built") / "repo"
    make_project(root, registry, base, "    repository: tests/built\n")
    return root, doit_ok(root)


def test_multi_arch_image_in_registry(built: tuple[Path, str], registry: str) -> None:
    project, output = built
    assert ran(output) == ["preflight", "render:app", "render:stale", "ci", "docker:app"]
    pushed = record(project)
    index_ref = f"docker://{registry}/{pushed['repository']}@{pushed['digest']}"
    index = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", index_ref))
    validate(index, "image-index-schema.json")
    assert [m["platform"] for m in index["manifests"]] == [
        {"architecture": "amd64", "os": "linux"},
        {"architecture": "arm64", "os": "linux"},
    ]
    for child in index["manifests"]:
        ref = f"docker://{registry}/{pushed['repository']}@{child['digest']}"
        manifest = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", ref))
        validate(manifest, "image-manifest-schema.json")
        config = json.loads(skopeo("inspect", "--config", "--raw", "--tls-verify=false", ref))
        validate(config, "config-schema.json")
        assert config["architecture"] == child["platform"]["architecture"]
        assert config["config"]["Labels"]["org.opencontainers.image.revision"] == git(
            project, "rev-parse", "HEAD"
        )
    for tag in pushed["tags"]:  # type: ignore[attr-defined]
        tagged = skopeo(
            "inspect", "--raw", "--tls-verify=false", f"{index_ref.split('@')[0]}:{tag}"
        )
        assert json.loads(tagged) == index


def test_foreign_run_step_ran_under_qemu(
    built: tuple[Path, str], registry: str, tmp_path: Path
) -> None:
    pushed = record(built[0])
    ref = f"docker://{registry}/{pushed['repository']}:latest"
    layout = tmp_path / "pulled"
    skopeo(
        "copy", "-q", "--src-tls-verify=false", "--override-arch", "arm64", ref, f"oci:{layout}:x"
    )
    files = layer_files(layout)
    assert files["srv/arch.txt"] == b"aarch64\n"
    assert files["srv/greeting.txt"] == b"hello\n"
    assert "srv/.dockerignore" in files and "srv/index.html" in files


def test_incremental(project: Path) -> None:
    doit_ok(project)
    assert ran(doit_ok(project)) == []
    (project / "app" / "scratch.tmp").write_text("ignored by .dockerignore\n")
    assert ran(doit_ok(project)) == []
    (project / "app" / "index.html").write_text("<h1>changed</h1>\n")
    assert ran(doit_ok(project)) == ["docker:app"]
    (project / "app" / "new.txt").write_text("added\n")
    assert ran(doit_ok(project)) == ["docker:app"]
    (project / "app" / "new.txt").unlink()
    assert ran(doit_ok(project)) == ["docker:app"]


def test_each_input_rebuilds_only_its_image(project: Path, registry: str) -> None:
    text = (project / "syntra.yaml").read_text()
    other = (
        "  other:\n    template: app.j2\n    context: app\n"
        "    base: {base}\n    platforms: [linux/amd64]\n"
    )
    base_line = next(line for line in text.splitlines() if "base:" in line)
    text += other.format(base=base_line.split("base: ")[1])
    text += f"    repository: tests/other-{project.parent.name[-12:].lower().replace('_', '-')}\n"
    (project / "syntra.yaml").write_text(text)
    doit_ok(project)
    for change in (
        ("GREETING: hello", "GREETING: bonjour"),
        (
            "    tags: ['{{ version }}', latest]\n",
            "    tags: ['{{ version }}', latest]\n    platforms: [linux/arm64]\n",
        ),
    ):
        text = text.replace(*change)
        (project / "syntra.yaml").write_text(text)
        rebuilt = [task for task in ran(doit_ok(project)) if task.startswith("docker:")]
        assert rebuilt == ["docker:app"]


def test_base_image_digest_change_rebuilds(
    tmp_path: Path, registry: str, store: dict[str, str]
) -> None:
    """A moved base tag is seen when the image's task runs: not by a no-op, which asks
    no registry, but by `doit -a docker` (or any change that runs the task)."""
    base = seed_busybox(registry, BUSYBOX, "fixtures/moving-base", "1")
    root = make_project(tmp_path / "repo", registry, base, "    repository: tests/moving\n")
    doit_ok(root)
    assert ran(doit_ok(root)) == []
    seed_busybox(
        registry,
        {"amd64": BUSYBOX["amd64"], "arm64": BUSYBOX["amd64"]},
        "fixtures/moving-base",
        "1",
    )
    assert ran(doit_ok(root)) == []  # up-to-date checks are local: the base is not asked
    forced = doit_ok(root, "--always-execute", "docker")  # the base pinned again
    assert "app: built linux/amd64, linux/arm64" in forced


def test_two_clean_builds_give_the_same_index_digest(
    project: Path, tmp_path: Path, registry: str
) -> None:
    stores = [podman_store(tmp_path / "store-a"), podman_store(tmp_path / "store-b")]
    try:
        doit_ok(project, env=stores[0])
        first = record(project)["digest"]
        shutil.rmtree(state_dir(project))
        doit_ok(project, env=stores[1])
        assert record(project)["digest"] == first
    finally:
        for env in stores:
            reset_store(env)


def test_repush_of_unchanged_image_uploads_no_blob(project: Path) -> None:
    doit_ok(project)
    assert record(project)["uploaded_bytes"] > 0  # type: ignore[operator]
    (record_path(project, "app")).unlink()
    assert ran(doit_ok(project)) == ["docker:app"]
    assert record(project)["uploaded_bytes"] == 0


def test_merge_of_per_platform_pushes_equals_direct_build(
    built: tuple[Path, str], tmp_path: Path
) -> None:
    project, _ = built
    direct = record(project)
    runner = tmp_path / "runner"
    shutil.copytree(project, runner, ignore=shutil.ignore_patterns(STATE_DIR))
    for platform in ("linux/arm64", "linux/amd64"):
        done = run(runner, "syntra", "build", "app", "--platform", platform, "--push-by-digest")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["platform"] == platform
    assert not (record_path(runner, "app")).exists()
    merged = run(runner, "syntra", "merge", "app")
    assert merged.returncode == 0, merged.stderr
    assert json.loads(merged.stdout)["digest"] == direct["digest"]
    fanned_out: list[dict[str, Any]] = json.loads(merged.stdout)["platforms"]
    direct_platforms = cast(list[dict[str, Any]], direct["platforms"])
    # Same images; each names the command that built it (recorded on its runner).
    assert [{**p, "command": None} for p in fanned_out] == [
        {**p, "command": None} for p in direct_platforms
    ]
    assert [p["command"] for p in fanned_out] == [
        f"syntra build app --platform {p['platform']} --push-by-digest" for p in fanned_out
    ]


def test_merge_without_digest_files(project: Path) -> None:
    assert run(project, "syntra", "render").returncode == 0
    done = run(project, "syntra", "merge", "app")
    assert done.returncode == 2
    assert done.stderr == (
        "app: no digest files in .syntra/digests/app; "
        "run `syntra build app --platform P --push-by-digest` first\n"
    )


def test_a_commit_outside_the_context_rebuilds_nothing(project: Path, registry: str) -> None:
    """The inputs digest, not the commit, decides: the new commit's tags go onto the image
    already built (its labels name the commit that built it), locally and in CI."""
    doit_ok(project)
    first = record(project)
    logs = sorted((logs_dir(project, "app")).iterdir())
    sizes = [log.stat().st_size for log in logs]
    (project / "NOTES.md").write_text("outside the image's context\n")
    commit(project, "docs: notes")
    planned = run(project, "syntra", "plan", "--changed", "--json")
    assert planned.returncode == 0, planned.stderr
    assert json.loads(planned.stdout) == {"matrix": [], "chunks": [[]]}
    retag = doit_ok(project)  # new tags to push, nothing to build
    assert (
        "app: linux/amd64, linux/arm64 unchanged (already built from these inputs): retagged"
        in retag
    )
    again = record(project)
    assert again["digest"] == first["digest"] and again["version"] != first["version"]
    assert [log.stat().st_size for log in logs] == sizes  # no builder ran
    client = Client(registry, insecure=True)
    assert client.head_manifest(str(again["repository"]), str(again["version"])) == first["digest"]
    merged = run(project, "syntra", "merge", "--all")  # CI: nothing built, only retagged
    assert merged.returncode == 0 and str(first["digest"]) in merged.stdout, merged.stderr
    (project / "app" / "index.html").write_text("<h1>changed</h1>\n")
    commit(project, "feat: new page")
    changed = json.loads(run(project, "syntra", "plan", "--changed", "--json").stdout)
    assert [(e["image"], e["platform"]) for e in changed["matrix"]] == [
        ("app", "linux/amd64"), ("app", "linux/arm64"),
    ]  # fmt: skip


def test_secrets_reach_run_steps_but_no_log_or_image(
    project: Path, registry: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = project / "templates" / "app.j2"
    expected = hashlib.sha256(b"s3cr3t-value").hexdigest()
    spec.write_text(
        TEMPLATE
        + 'RUN --mount=type=secret,id=token ["/bin/busybox", "sh", "-c", '
        + f'"test \\"$(sha256sum < /run/secrets/token)\\" = \\"{expected}  -\\" '
        + '&& touch /srv/secret-seen"]\n'
    )
    text = (project / "syntra.yaml").read_text()
    (project / "syntra.yaml").write_text(text + "    secrets: [{id: token, env: APP_TOKEN}]\n")
    output = doit_ok(project, env={"APP_TOKEN": "s3cr3t-value"})
    pushed = record(project)
    ref = f"docker://{registry}/{pushed['repository']}@{pushed['digest']}"
    config = skopeo(
        "inspect", "--config", "--raw", "--tls-verify=false", "--override-arch", "arm64", ref
    )
    logs = "".join(p.read_text() for p in logs_root(project).rglob("*.log"))
    assert "id=token,env=APP_TOKEN" in logs
    for place in (output, logs, config, json.dumps(pushed)):
        assert "s3cr3t-value" not in place
    # A pull request has no secrets: the build is not refused for that before it starts.
    pull_request = run(project, "syntra", "test", "app", "--platform", "linux/amd64",
                       "--without-secrets")  # fmt: skip
    assert "app: build secrets left out: token" in pull_request.stdout
    assert "build secrets not set" not in pull_request.stderr
    refused = run(project, "syntra", "test", "app", "--platform", "linux/amd64")
    assert "build secrets not set: $APP_TOKEN" in refused.stderr


def test_build_failure_names_stage_image_and_platform(project: Path) -> None:
    (project / "templates" / "app.j2").write_text(TEMPLATE + 'RUN ["/bin/busybox", "false"]\n')
    done = run(project, "doit")
    assert done.returncode != 0
    out = done.stdout + done.stderr
    failure = next(line for line in out.splitlines() if "docker app: podman build" in line)
    assert failure.startswith(
        "docker app: podman build of app for linux/amd64 failed (exit 1; see "
    )
    assert "error" in failure.split("): ", 1)[1].lower()  # the tool's error line, not its tail
    assert "Traceback" not in out


def test_push_with_credentials_from_the_environment(
    tmp_path: Path, registry: str, base: str
) -> None:
    htpasswd = tmp_path / "htpasswd"
    login = ["htpasswd", "-Bbc", str(htpasswd), "ci", "pa55word"]
    subprocess.run(login, check=True, capture_output=True)
    with serve(htpasswd=htpasswd) as private:
        root = make_project(tmp_path / "repo", private, base)
        label = f"docker app: registry local ({private})"
        anonymous = run(root, "doit", "docker")
        assert f"{label}: needs a login and none is configured (looked in " in anonymous.stdout
        assert not logs_root(root).exists()  # refused before building
        credentials = "credentials: {username_env: REG_USER, password_env: REG_PASS}"
        (root / "syntra.yaml").write_text(
            (root / "syntra.yaml")
            .read_text()
            .replace("insecure: true}}", f"insecure: true, {credentials}}}}}")
        )
        missing = run(root, "doit", "docker", env={"REG_USER": "ci"})
        assert f"{label}: credentials variable REG_PASS is not set" in missing.stdout
        wrong = run(root, "doit", "docker", env={"REG_USER": "ci", "REG_PASS": "nope"})
        assert (
            f"{label}: login refused for 'ci' (credentials from $REG_USER / $REG_PASS)"
            in wrong.stdout
        )
        assert "nope" not in wrong.stdout + wrong.stderr
        assert not logs_root(root).exists()
        secrets = {"REG_USER": "ci", "REG_PASS": "pa55word"}
        # The base's registry is not declared: on loopback it is plain HTTP all the same.
        undeclared = run(root, "doit", "docker", env=secrets)
        assert undeclared.returncode == 0, undeclared.stdout + undeclared.stderr
        assert "TLS" not in undeclared.stdout + undeclared.stderr
        (root / "syntra.yaml").write_text(
            (root / "syntra.yaml")
            .read_text()
            .replace(
                "}}\n",
                f"}}, bases: {{url: '{registry}', insecure: true}}}}\n"
                "defaults: {registry: local}\n",
                1,
            )
        )
        commit(root, "credentials")  # a clean tree: every tag, not only the dev version
        done = run(root, "doit", "docker", env=secrets)
        assert done.returncode == 0, done.stdout
        logs = "".join(p.read_text() for p in logs_root(root).rglob("*.log"))
        assert "pa55word" not in done.stdout + done.stderr + logs
        creds = ["--tls-verify=false", "--creds", "ci:pa55word"]
        tags = skopeo("list-tags", *creds, f"docker://{private}/demo/app")
        assert "latest" in json.loads(tags)["Tags"]


def test_build_to_an_archive_pushes_nothing_and_matches_the_push(
    project: Path, registry: str, tmp_path: Path
) -> None:
    """Two local builds of one commit write the same archive bytes, with the index
    digest the pushed image has later; nothing reaches the registry before that."""
    archives = [tmp_path / "one.tar", tmp_path / "two.tar"]
    for archive in archives:
        done = run(project, "syntra", "build", "app", "--output", f"oci-archive:{archive}:1.0")
        assert done.returncode == 0, done.stderr
    assert archives[0].read_bytes() == archives[1].read_bytes()
    path = f"tests/{project.parent.name.replace('_', '-').lower()[:40]}"
    assert Client(registry, insecure=True).tags(path) == []  # nothing pushed
    raw = skopeo("inspect", "--raw", f"oci-archive:{archives[0]}:1.0")
    doit_ok(project, "docker")
    assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == record(project)["digest"]
    loaded = run(project, "syntra", "build", "app", "--platform", "linux/amd64", "--output", "load")
    assert loaded.returncode == 0, loaded.stderr
    host = next(p for p in cast(list[dict[str, Any]], record(project)["platforms"])
                if p["platform"] == "linux/amd64")  # fmt: skip
    manifest = Client(registry, insecure=True).get_manifest(path, host["digest"]).json()
    image_id = manifest["config"]["digest"]
    assert f"podman image store (image ID {image_id})" in loaded.stdout
    listed = subprocess.run(["podman", "images", "-q", "--no-trunc"], capture_output=True,
                            text=True, check=True).stdout  # fmt: skip
    assert image_id in listed


def test_snapshot_builds_and_tests_with_no_registry_to_push_to(
    tmp_path: Path, registry: str, base: str
) -> None:
    """`SYNTRA_SNAPSHOT=1 doit`: the push registry is unreachable and its credentials are
    not set, yet everything is built, tested and written; twice, the same bytes."""
    root = make_project(tmp_path / "repo", registry, base, "    registry: prod\n")
    text = (root / "syntra.yaml").read_text().replace(
        "registries: {", "registries: {prod: {url: '127.0.0.1:9', credentials: "
        "{username_env: PROD_USER, password_env: PROD_TOKEN}}, ",
    )  # fmt: skip
    (root / "syntra.yaml").write_text(
        text + "supply_chain: {signing: {mode: key, key: keys/cosign.key}}\n"
    )
    commit(root, "prod registry")
    snapshot = {"SYNTRA_SNAPSHOT": "1"}
    first = run(root, "doit", env=snapshot)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "app: snapshot of linux/amd64, linux/arm64" in first.stdout
    assert not any(task.startswith(("supply", "wasm:")) and "publish" in task
                   for task in ran(first.stdout))  # fmt: skip
    archive = root / "dist" / "snapshot" / "app.oci.tar"
    made = archive.read_bytes()
    assert ran(run(root, "doit", env=snapshot).stdout) == []  # nothing changed: nothing runs
    archive.unlink()
    again = run(root, "doit", env=snapshot)
    assert again.returncode == 0 and archive.read_bytes() == made
    archive.unlink()
    built = run(root, "syntra", "build", "app", env=snapshot)  # the command honours it too
    assert built.returncode == 0, built.stdout + built.stderr
    assert "app: snapshot of linux/amd64, linux/arm64" in built.stdout
    assert archive.read_bytes() == made
    by_digest = ("build", "app", "--push-by-digest", "--platform", "linux/amd64")
    refused = run(root, "syntra", *by_digest, env=snapshot)
    assert (refused.returncode, refused.stderr) == (
        2,
        "SYNTRA_SNAPSHOT is set: nothing is pushed, so no --push-by-digest\n",
    )
    pushing = run(root, "doit")  # without the snapshot, the preconditions of a push stop it
    assert pushing.returncode != 0 and "preflight: " in pushing.stdout
