"""The registry layer against a real registry that fails: injected faults, a registry that
lies, pushes killed with SIGKILL, cross-repository mounts, and every place a login comes
from. Registry state is always checked directly, never through Syntra."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from syntra.paths import STATE_DIR, record_path, records_dir
from syntra.registry.local import free_port, serve
from tests.conftest import PYTHON, REPO, commit, git, run, skopeo
from tests.support.faults import fault_proxy
from tests.support.layouts import PUSH, oci_layout
from tests.support.projects import SHOWCASE
from tests.support.signing import PASSPHRASE

pytestmark = pytest.mark.e2e

INDEXES = ("application/vnd.oci.image.index.v1+json",
           "application/vnd.docker.distribution.manifest.list.v2+json")  # fmt: skip
ACCEPT = ", ".join((*INDEXES, "application/vnd.oci.image.manifest.v1+json",
                    "application/vnd.docker.distribution.manifest.v2+json"))  # fmt: skip
FAST = {"SYNTRA_REGISTRY_TIMEOUT": "2"}
"""Stalls are detected after 2 s instead of 30, so the tests stay short."""


def walk(registry: str) -> dict[str, dict[str, str]]:
    """Every tag of every repository → the digest it points at, after checking that every
    manifest, child and blob under it is present (straight from the registry)."""
    base = f"http://{registry}/v2"
    found: dict[str, dict[str, str]] = {}
    for repository in requests.get(f"{base}/_catalog?n=1000", timeout=10).json()["repositories"]:
        listed = requests.get(f"{base}/{repository}/tags/list", timeout=10).json().get("tags")
        found[repository] = {}
        for tag in listed or []:
            found[repository][tag] = _complete(base, repository, tag)
    return found


def _complete(base: str, repository: str, reference: str) -> str:
    response = requests.get(
        f"{base}/{repository}/manifests/{reference}", headers={"Accept": ACCEPT}, timeout=10
    )
    assert response.status_code == 200, f"{repository}:{reference} points at nothing"
    manifest = response.json()
    for child in manifest.get("manifests", []):
        _complete(base, repository, child["digest"])
    for blob in [manifest.get("config"), *manifest.get("layers", [])]:
        if blob:
            head = requests.head(f"{base}/{repository}/blobs/{blob['digest']}", timeout=10)
            assert head.status_code == 200, f"{repository}:{reference} misses {blob['digest']}"
    return str(response.headers["Docker-Content-Digest"])


def copy_base(source: str, target: str) -> None:
    skopeo(
        "copy", "--all", "--preserve-digests", "--src-tls-verify=false", "--dest-tls-verify=false",
        f"docker://{source}/fixtures/busybox:1.36", f"docker://{target}/fixtures/busybox:1.36",
    )  # fmt: skip


def pipeline_project(root: Path) -> Path:
    """One image and one Swift guest, key-signed, on a commit tagged v1.0.0; the registry
    comes from $FAULT_REGISTRY, so clones at any address build the same bytes."""
    (root / "app").mkdir(parents=True)
    (root / "app" / "index.html").write_text("<h1>faults</h1>\n")
    (root / "WebAssembly").mkdir()
    (root / "WebAssembly" / "Swift").mkdir()
    (root / "WebAssembly" / "Swift" / "Fib.swift").write_text(
        (SHOWCASE / "Swift" / "Fib.swift").read_text()
    )
    (root / ".gitignore").write_text(f"{STATE_DIR}/\ndist/\n")
    (root / "syntra.yaml").write_text(
        "version: 1\n"
        "project: {name: faults}\n"
        "registries: {local: {url: '${FAULT_REGISTRY}', insecure: true}}\n"
        "defaults: {platforms: [linux/amd64], tags: ['{{ version }}']}\n"
        "images:\n"
        "  app:\n"
        "    context: app\n"
        "    base: ${FAULT_REGISTRY}/fixtures/busybox:1.36\n"
        "    vars: {copy: [{src: index.html, dest: /srv/}]}\n"
        "wasm:\n"
        "  fib:\n"
        "    language: swift\n"
        "    source: WebAssembly/Swift\n"
        "    mode: embedded\n"
        "    tests: [{call: fib, args: [10], expect: 55}]\n"
        "supply_chain:\n"
        "  sbom: [spdx-json]\n"
        "  signing: {mode: key, key: keys/cosign.key}\n"
    )
    git(root, "init", "-q", "-b", "main")
    keygen = run(root, "syntra", "keygen", env={**PASSPHRASE, "FAULT_REGISTRY": "unused"})
    assert keygen.returncode == 0, keygen.stderr
    commit(root, "faults")
    git(root, "tag", "v1.0.0")
    return root


def pipeline(source: Path, clone: Path, address: str, env: dict[str, str]) -> dict[str, str]:
    """A fresh clone runs doit, verify --all and release against `address`; returns the
    digest of each artifact."""
    git(source.parent, "clone", "-q", str(source), str(clone))
    environment = {**PASSPHRASE, "FAULT_REGISTRY": address, **env}
    for argv in (["doit"], ["syntra", "verify", "--all"], ["doit", "release"]):
        done = run(clone, *argv, env=environment)
        assert done.returncode == 0, f"{argv}: {done.stdout}{done.stderr}"
        assert "Traceback" not in done.stdout + done.stderr
    return _records(clone)


def _records(clone: Path) -> dict[str, str]:
    """The digest each artifact's record names."""
    out = records_dir(clone)
    return {
        name: json.loads((out / f"{name}.json").read_text())["digest"] for name in ("app", "fib")
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return pipeline_project(tmp_path_factory.mktemp("faults") / "source")


@pytest.fixture(scope="module")
def port() -> int:
    """The proxy's one address: images name their registry, so every run uses the same."""
    return free_port()


@pytest.fixture(scope="module")
def clean(
    source: Path, port: int, registry: str, base: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The fault-free run: the digests every faulty run must reproduce."""
    with serve() as target:
        copy_base(registry, target)
        with fault_proxy(target, port=port) as proxy:
            digests = pipeline(source, tmp_path_factory.mktemp("clean") / "repo", proxy.address, {})
        walk(target)
    return digests


@pytest.mark.parametrize(
    ("rate", "env"),
    [(0.10, {}), (0.30, {"SYNTRA_REGISTRY_TRIES": "12"})],
    ids=["10%-default-policy", "30%-more-tries"],
)
def test_the_pipeline_survives_registry_faults(
    rate: float,
    env: dict[str, str],
    clean: dict[str, str],
    source: Path,
    port: int,
    registry: str,
    tmp_path: Path,
) -> None:
    with serve() as target:
        copy_base(registry, target)
        with fault_proxy(target, rate=rate, seed=int(rate * 100), port=port) as proxy:
            digests = pipeline(source, tmp_path / "repo", proxy.address, {**FAST, **env})
            assert sum(proxy.injected.values()) >= 10, proxy.injected  # faults really happened
        assert digests == clean
        tags = walk(target)
        assert tags["faults/app"]["1.0.0"] == clean["app"]
        assert tags["faults/fib"]["1.0.0"] == clean["fib"]


def test_a_registry_that_alters_manifests_is_refused(
    source: Path, port: int, registry: str, base: str, tmp_path: Path
) -> None:
    with serve() as target:
        copy_base(registry, target)
        clone = tmp_path / "repo"
        env = {**PASSPHRASE, **FAST, "SYNTRA_REGISTRY_TRIES": "2"}
        with fault_proxy(target, port=port) as proxy:
            git(source.parent, "clone", "-q", str(source), str(clone))
            done = run(clone, "doit", "supply", env={**env, "FAULT_REGISTRY": proxy.address})
            assert done.returncode == 0, done.stdout
        before = walk(target)
        with fault_proxy(target, port=port, lie=True) as proxy:
            env["FAULT_REGISTRY"] = proxy.address
            release = run(clone, "syntra", "release", env=env)
            verify = run(clone, "syntra", "verify", "--all", env=env)
        assert release.returncode != 0
        refusals = release.stderr.splitlines()
        assert [line.split(": ")[0] for line in refusals[:-1]] == [
            f"{name} {digest}" for name, digest in sorted(_records(clone).items())
        ]
        assert all("the body's digest is sha256:" in line for line in refusals[:-1])
        assert (
            refusals[-1] == "release 1.0.0: refused (2 artifacts of 2 not verified); nothing tagged"
        )
        assert verify.returncode != 0
        for done in (release, verify):
            assert "Traceback" not in done.stdout + done.stderr
        assert walk(target) == before  # nothing was tagged


def test_a_push_killed_at_any_point_completes_when_run_again(tmp_path: Path) -> None:
    layout = oci_layout(tmp_path / "layout", layers=6, size=6 << 20, seed=7)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    timing = random.Random(11)
    with serve() as target, fault_proxy(target, latency=0.05) as proxy:
        argv = [PYTHON, "-c", PUSH, proxy.address, str(layout), "tests/killed"]
        for _ in range(4):
            pushing = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE)
            time.sleep(timing.uniform(0.3, 1.5))
            pushing.send_signal(signal.SIGKILL)
            pushing.wait()
            walk(target)  # whatever a killed push left, no tag points at missing content
        done = subprocess.run(argv, env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert walk(target)["tests/killed"]["v1"].startswith("sha256:")


def test_base_layers_already_in_the_registry_are_mounted(
    tmp_path: Path, registry: str, base: str
) -> None:
    from tests.support.projects import make_project

    root = make_project(tmp_path / "repo", registry, base, "    repository: tests/mounted\n")
    with fault_proxy(registry) as proxy:
        text = (
            (root / "syntra.yaml")
            .read_text()
            .replace(f"url: '{registry}'", f"url: '{proxy.address}'")
        )
        (root / "syntra.yaml").write_text(
            text.replace(f"base: {registry}/", f"base: {proxy.address}/")
        )
        commit(root, "through the counting proxy")
        done = run(root, "doit", "docker")
        assert done.returncode == 0, done.stdout
    index = requests.get(
        f"http://{registry}/v2/fixtures/busybox/manifests/1.36", headers={"Accept": ACCEPT}
    ).json()
    base_layers = {
        layer["digest"]
        for child in index["manifests"]
        for layer in requests.get(
            f"http://{registry}/v2/fixtures/busybox/manifests/{child['digest']}",
            headers={"Accept": ACCEPT},
        ).json()["layers"]
    }
    assert proxy.uploaded and proxy.mounted  # the image's own layers went up
    assert not base_layers & set(proxy.uploaded)  # no byte of the base was sent again
    assert base_layers & set(proxy.mounted)


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("auth")
    htpasswd = folder / "htpasswd"
    subprocess.run(
        ["htpasswd", "-Bbc", str(htpasswd), "ci", "pa55word"], check=True, capture_output=True
    )
    with serve(htpasswd=htpasswd) as address:
        yield address


def _guest_project(root: Path, registry: str) -> Path:
    (root / "Swift").mkdir(parents=True)
    (root / "Swift" / "Fib.swift").write_text((SHOWCASE / "Swift" / "Fib.swift").read_text())
    (root / ".gitignore").write_text(f"{STATE_DIR}/\n")
    (root / "syntra.yaml").write_text(
        "version: 1\nproject: {name: auth, version: 1.0.0}\n"
        f"registries: {{private: {{url: '{registry}', insecure: true}}}}\n"
        "wasm: {fib: {language: swift, source: Swift, mode: embedded}}\n"
    )
    git(root, "init", "-q", "-b", "main")
    commit(root, "guest")
    return root


def _publish(root: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    (record_path(root, "fib")).unlink(missing_ok=True)
    elsewhere = {"HOME": str(root / "home"), "XDG_RUNTIME_DIR": str(root / "run")}
    return run(root, "doit", "wasm", env={**elsewhere, **env})


def test_logins_come_from_podman_docker_and_credential_helpers(
    private: str, tmp_path: Path
) -> None:
    root = _guest_project(tmp_path / "repo", private)
    anonymous = _publish(root, {})
    assert f"registry private ({private}): needs a login and none is configured" in anonymous.stdout

    authfile = tmp_path / "podman-auth.json"
    subprocess.run(
        ["podman", "login", "--tls-verify=false", "--authfile", str(authfile),
         "-u", "ci", "--password-stdin", private],
        input="pa55word", text=True, check=True, capture_output=True,
    )  # fmt: skip
    done = _publish(root, {"REGISTRY_AUTH_FILE": str(authfile)})
    assert done.returncode == 0, done.stdout

    docker = tmp_path / "docker"
    docker.mkdir()
    auth = __import__("base64").b64encode(b"ci:pa55word").decode()
    (docker / "config.json").write_text(json.dumps({"auths": {private: {"auth": auth}}}))
    done = _publish(root, {"DOCKER_CONFIG": str(docker)})
    assert done.returncode == 0, done.stdout

    helpers = tmp_path / "bin"
    helpers.mkdir()
    helper = helpers / "docker-credential-syntratest"
    helper.write_text(
        "#!/bin/sh\nread host\n"
        'printf \'{"ServerURL":"%s","Username":"ci","Secret":"pa55word"}\' "$host"\n'
    )
    helper.chmod(0o755)
    (docker / "config.json").write_text(json.dumps({"credHelpers": {private: "syntratest"}}))
    path = f"{helpers}:{os.environ['PATH']}"
    done = _publish(root, {"DOCKER_CONFIG": str(docker), "PATH": path})
    assert done.returncode == 0, done.stdout
    assert "pa55word" not in done.stdout + done.stderr


def test_a_refused_login_is_one_line_before_any_build(private: str, tmp_path: Path) -> None:
    root = _guest_project(tmp_path / "repo", private)
    text = (
        (root / "syntra.yaml")
        .read_text()
        .replace(
            "insecure: true}",
            "insecure: true, credentials: {username_env: PROD_USER, password_env: PROD_PASSWORD}}",
        )
    )
    (root / "syntra.yaml").write_text(text)
    commit(root, "credentials")
    started = time.monotonic()
    done = run(root, "doit", env={"PROD_USER": "deployer", "PROD_PASSWORD": "wrong"})
    assert done.returncode != 0
    assert (
        f"preflight: registry private ({private}): login refused for 'deployer' "
        "(credentials from $PROD_USER / $PROD_PASSWORD)"
    ) in done.stdout
    assert "wasm:" not in done.stdout  # nothing was compiled
    assert "wrong" not in done.stdout + done.stderr
    assert time.monotonic() - started < 30
