"""Apple's `container` backend: contract tests against a recording stand-in for CLI
versions 0.4.x and 1.x (the CLI only runs on macOS 26), plus the Linux fallback."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from syntra.config import load
from syntra.errors import SyntraError
from syntra.image.build.container import (
    AppleContainer,
    Host,
    memory_flag,
    platform_flags,
    unavailable_reason,
)
from syntra.image.inputs import Job
from syntra.image.job import publish_image
from syntra.paths import build_dir
from syntra.pipeline.context import Context
from syntra.plan import build_plan
from tests.conftest import REPO, commit, run, skopeo
from tests.support.projects import make_project, record

STANDIN = REPO / "tests" / "standins" / "container"
VERSIONS = ["0.4.1", "1.3.0"]


@pytest.mark.parametrize(
    ("host", "program", "reason"),
    [
        (
            Host("Linux", "", "x86_64"),
            None,
            "needs macOS 26 on Apple silicon; this is Linux x86_64",
        ),
        (Host("Darwin", "15.5", "arm64"), "/x", "this is macOS 15.5 arm64"),
        (Host("Darwin", "26.1", "x86_64"), "/x", "this is macOS 26.1 x86_64"),
        (Host("Darwin", "26.1", "arm64"), None, "not installed"),
        (Host("Darwin", "26.1", "arm64"), "/usr/local/bin/container", None),
    ],
)
def test_where_the_backend_is_available(
    host: Host, program: str | None, reason: str | None
) -> None:
    found = unavailable_reason(host, program)
    assert (found is None) if reason is None else (reason in str(found))


def test_flags() -> None:
    assert memory_flag(8 << 30) == "8G"
    assert memory_flag(1536 << 20) == "1536M"
    assert platform_flags(["linux/amd64", "linux/arm64"]) == ["--arch", "amd64", "--arch", "arm64"]
    assert platform_flags(["linux/arm/v7"]) == ["--platform", "linux/arm/v7"]


@pytest.mark.e2e
def test_doit_container_on_linux_uses_podman_and_says_why(
    tmp_path: Path, registry: str, base: str
) -> None:
    root = make_project(tmp_path / "repo", registry, base, "    repository: tests/on-linux\n")
    done = run(root, "doit", "container")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "app: Apple's container CLI needs macOS 26 on Apple silicon; this is Linux x86_64: "
        "using the Linux builder\n"
    ) in done.stdout
    assert "app: built linux/amd64, linux/arm64 with podman" in done.stdout
    assert record(root)["digest"]


@pytest.fixture
def layout(tmp_path: Path, registry: str, base: str) -> Path:
    """A multi-arch OCI layout: what the stand-in's `build` hands out."""
    folder = tmp_path / "built"
    skopeo(
        "copy", "-q", "--all", "--src-tls-verify=false", f"docker://{base}", f"oci:{folder}:image"
    )
    return folder


def _job(tmp_path: Path, registry: str, base: str, extra: str = "") -> Job:
    root = make_project(tmp_path / "repo", registry, base, extra)
    loaded = load(root / "syntra.yaml")
    plan = build_plan(loaded)
    return Context(loaded, plan).job("app")


def _calls(state: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (state / "calls.jsonl").read_text().splitlines()]


@pytest.fixture
def standin(tmp_path: Path, layout: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "standin"
    monkeypatch.setenv("STANDIN_STATE", str(state))
    monkeypatch.setenv("STANDIN_LAYOUT", str(layout))
    monkeypatch.setenv("STANDIN_PASSWORD", "pa55word")
    monkeypatch.setenv("REG_USER", "ci")
    monkeypatch.setenv("REG_PASS", "pa55word")
    return state


@pytest.mark.e2e
@pytest.mark.parametrize("version", VERSIONS)
def test_every_command_for_each_version(
    version: str, tmp_path: Path, registry: str, base: str, layout: Path, standin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("STANDIN_VERSION", version)
    credentials = "credentials: {username_env: REG_USER, password_env: REG_PASS}"
    job = _job(
        tmp_path, registry, base, f"    repository: tests/apple-{version.replace('.', '-')}\n"
    )
    text = (
        (job.root / "syntra.yaml")
        .read_text()
        .replace("insecure: true}}", f"insecure: true, {credentials}}}}}")
    )
    (job.root / "syntra.yaml").write_text(text)
    commit(job.root, "credentials")  # a clean tree: every tag, not only the dev version
    job = _job_from(job.root)
    (job.root / "ContainerSpecs" / "app").mkdir(parents=True)
    (job.root / job.image.containerfile).write_text("FROM scratch\n")
    refs = job.image.destination.refs
    staging = refs[0].rsplit(":", 1)[0] + ":syntra-staging"

    pushed = publish_image(job, AppleContainer(str(STANDIN)))

    calls = [call["argv"] for call in _calls(standin)]
    spec, context = str(job.root / job.image.containerfile), str(job.root / "app")
    epoch = str(job.plan.source_date_epoch)
    base_arg = next(a for a in calls[5] if a.startswith("BASE_IMAGE="))
    labels = [x for k, v in job.image.labels.items() for x in ("-l", f"{k}={v}")]
    group = "image" if version >= "0.5" else "images"
    assert calls == [
        ["--version"],
        ["system", "status", "--format", "json"],
        ["system", "start", "--enable-kernel-install"],
        ["system", "status", "--format", "json"],
        ["registry", "login", "--scheme", "http", "-u", "ci", "--password-stdin", registry],
        ["build", "-t", staging, "-f", spec, "--arch", "amd64", "--arch", "arm64",
         "-c", "4", "-m", "8G", "--build-arg", "GREETING=hello", "--build-arg", base_arg,
         "--build-arg", f"SOURCE_DATE_EPOCH={epoch}", *labels, "--progress", "plain", context],
        ["image", "tag", staging, refs[0]],
        ["image", "tag", staging, refs[1]],
        ["image", "list", "--format", "json"],
        [group, "push", "--scheme", "http", staging],
    ]  # fmt: skip
    index = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    for ref in refs:  # the real tags, put by Syntra once the index was verified
        raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
        assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == index
    login = _calls(standin)[4]
    assert login["password_ok"] is True
    assert "pa55word" not in json.dumps(calls)
    assert base_arg.startswith(f"BASE_IMAGE={base.rsplit(':', 1)[0]}@sha256:")
    index = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    assert pushed.digest == index
    assert [child.platform for child in pushed.platforms] == ["linux/amd64", "linux/arm64"]
    assert record(job.root)["digest"] == index


def _job_from(root: Path) -> Job:
    loaded = load(root / "syntra.yaml")
    plan = build_plan(loaded)
    return Context(loaded, plan).job("app")


@pytest.mark.e2e
def test_missing_index_children_are_repaired(
    tmp_path: Path, registry: str, base: str, layout: Path, standin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("STANDIN_DROP_CHILD", "1")
    job = _job(tmp_path, registry, base, "    repository: tests/apple-repair\n")
    (job.root / "ContainerSpecs" / "app").mkdir(parents=True)
    (job.root / job.image.containerfile).write_text("FROM scratch\n")
    pushed = publish_image(job, AppleContainer(str(STANDIN)))
    assert [c["argv"][:3] for c in _calls(standin)][-1] == ["image", "save", "--output"]
    for child in pushed.platforms:
        ref = f"docker://{registry}/tests/apple-repair@{child.digest}"
        assert json.loads(skopeo("inspect", "--raw", "--tls-verify=false", ref))["layers"]
    # Published again from the same inputs: the registry is asked first, nothing is built.
    backend = AppleContainer(str(STANDIN))  # asks `--version`
    calls = len(_calls(standin))
    again = publish_image(_job_from(job.root), backend)
    assert again.retagged and again.digest == pushed.digest and again.uploaded_bytes == 0
    assert len(_calls(standin)) == calls


@pytest.mark.e2e
def test_errors_are_one_clear_line(
    tmp_path: Path, registry: str, base: str, standin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = _job(tmp_path, registry, base, "    repository: tests/apple-errors\n")
    (job.root / "ContainerSpecs" / "app").mkdir(parents=True)
    spec = job.root / job.image.containerfile
    spec.write_text("FROM scratch\n" + "# padding\n" * 1700)
    with pytest.raises(SyntraError, match=r"is 17013 bytes: Apple's container CLI refuses"):
        publish_image(job, AppleContainer(str(STANDIN)))
    assert not any(c["argv"][0] == "build" for c in _calls(standin))
    spec.write_text("FROM scratch\n")
    monkeypatch.setenv("STANDIN_FAIL", "build")
    failed = (
        r"^container build of app failed \(exit 1; see .*\): #5 ERROR: process did not complete"
    )
    with pytest.raises(SyntraError, match=failed):
        publish_image(job, AppleContainer(str(STANDIN)))
    (standin / "running").unlink()
    monkeypatch.setenv("STANDIN_NO_START", "1")
    with pytest.raises(SyntraError, match="container system start did not bring the services up"):
        publish_image(job, AppleContainer(str(STANDIN)))


def test_scheme_is_explicit_for_1_3(
    tmp_path: Path, standin: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1.3.0 no longer guesses plain HTTP: the stand-in refuses `auto`, as the CLI does."""
    monkeypatch.setenv("STANDIN_VERSION", "1.3.0")
    cli = AppleContainer(str(STANDIN))
    assert cli.push_argv("127.0.0.1:5000/a/b:1", "http") == [
        "image",
        "push",
        "--scheme",
        "http",
        "127.0.0.1:5000/a/b:1",
    ]
    (standin / "running").touch()
    done = subprocess.run(
        [str(STANDIN), "image", "push", "127.0.0.1:5000/a/b:1"], capture_output=True, text=True
    )
    assert "HTTP response to HTTPS client" in done.stderr


@pytest.mark.e2e
def test_image_tests_run_through_the_cli_before_the_push(
    tmp_path: Path, registry: str, base: str, layout: Path, standin: Path
) -> None:
    """Commands through `container run --entrypoint`, servers through `run --detach
    --publish`, files and config from `image save`; a failure pushes nothing."""
    from syntra.registry.local import free_port

    port = free_port()
    tests = (
        "    tests:\n"
        "      - command: [/bin/busybox, uname, -m]\n"
        '        expect: {stdout: "^(x86_64|aarch64)$"}\n'
        "      - {file: /bin/busybox, mode: '0755'}\n"
        f"      - {{http: {{port: {port}, path: /}}, timeout: 2}}\n"
    )
    job = _job(tmp_path, registry, base, "    repository: tests/apple-tests\n" + tests)
    (job.root / "ContainerSpecs" / "app").mkdir(parents=True)
    (job.root / job.image.containerfile).write_text("FROM scratch\n")
    staging = job.image.destination.refs[0].rsplit(":", 1)[0] + ":syntra-staging"
    with pytest.raises(SyntraError) as failed:
        publish_image(job, AppleContainer(str(STANDIN)))
    lines = str(failed.value).splitlines()
    assert lines[0] == "2 of 6 image tests failed; nothing pushed"
    for number, arch in enumerate(("amd64", "arm64"), start=1):
        assert lines[number] == (
            f"app linux/{arch}: http :{port}/: nothing listens on port {port} after 2 s"
        )
    calls = [call["argv"] for call in _calls(standin)]
    for arch in ("amd64", "arm64"):
        run_argv = ["run", "--rm", "--platform", f"linux/{arch}", "--entrypoint", "/bin/busybox"]
        assert [*run_argv, staging, "uname", "-m"] in calls
    served = [argv for argv in calls if argv[:2] == ["run", "--detach"]]
    assert [argv[3:] for argv in served] == [
        [argv[3], "--publish", f"127.0.0.1:{port}:{port}", "--platform", f"linux/{arch}", staging]
        for argv, arch in zip(served, ("amd64", "arm64"), strict=True)
    ]
    for argv in served:
        assert ["stop", argv[3]] in calls and ["rm", argv[3]] in calls
    assert not any(argv[1:2] == ["push"] for argv in calls)  # nothing left the machine

    (job.root / "syntra.yaml").write_text(
        (job.root / "syntra.yaml").read_text().split("      - {http:")[0]
    )
    pushed = publish_image(_job_from(job.root), AppleContainer(str(STANDIN)))
    assert [(t.platform, t.test) for t in pushed.tests] == [
        (platform, test)
        for platform in ("linux/amd64", "linux/arm64")
        for test in ("command /bin/busybox uname -m", "file /bin/busybox")
    ]


@pytest.mark.e2e
def test_doit_container_then_supply_signs_the_index_container_pushed(
    tmp_path: Path, registry: str, base: str, layout: Path, standin: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """The record says what was pushed and from which inputs: `doit supply` finds the
    image current and signs Apple's index, without a Linux builder building another."""
    from tests.support.signing import PASSPHRASE, cosign

    signing = "supply_chain: {sbom: [], signing: {mode: key, key: keys/cosign.key}}\n"
    root = make_project(tmp_path / "repo", registry, base, "    repository: tests/apple-doit\n")
    (root / "syntra.yaml").write_text((root / "syntra.yaml").read_text() + signing)
    commit(root, "signing")
    assert run(root, "syntra", "keygen", env=PASSPHRASE).returncode == 0
    env = {**PASSPHRASE, "SYNTRA_CONTAINER_CLI": str(STANDIN)}

    built = run(root, "doit", "container", env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    assert "app: built linux/amd64, linux/arm64 with container 1.3.0" in built.stdout
    index = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    assert record(root)["digest"] == index

    signed = run(root, "doit", "supply", env=env)
    assert signed.returncode == 0, signed.stdout + signed.stderr
    assert "-- docker:app" in signed.stdout  # doit: up to date, not run
    assert "built" not in signed.stdout
    assert f"app: signed {index}" in signed.stdout
    assert not list(build_dir(root, "app").glob("*"))  # no layout builder ran
    verified = cosign(
        "verify", "--key", str(root / "keys" / "cosign.pub"), "--insecure-ignore-tlog=true",
        "--allow-http-registry", f"{registry}/tests/apple-doit@{index}",
    )  # fmt: skip
    assert verified.returncode == 0, verified.stderr
