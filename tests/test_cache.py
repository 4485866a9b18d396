"""The registry layer cache (`cache:`) and buildx builders (`builders:`).

Two runners are two fresh podman stores (and a fresh BuildKit) sharing one registry: a
slow RUN step writes random bytes, so an image whose bytes equal the first runner's was
built from the cache, and one whose bytes differ was not. Timing is the benchmark's
(bench/cache.py), never a test's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from syntra.config import load
from syntra.errors import SyntraError
from syntra.image.build import BuildRequest, cache
from syntra.image.build.buildx import Buildx
from syntra.image.build.cache import CacheUse, docker_env, podman_auth
from syntra.image.build.podman import Podman
from syntra.oci.auth import Login
from syntra.paths import build_dir, logs_root
from syntra.plan import build_plan
from syntra.registry.local import free_port, serve
from tests.conftest import Result, commit, git, podman_store, reset_store, run, skopeo
from tests.support.dockerd import dockerd
from tests.support.oci import layer_files
from tests.support.projects import make_project, record

SLOW = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN ["/bin/busybox", "sh", "-c", "sleep 2; /bin/busybox od -An -N8 -tx1 /dev/urandom > /token"]
COPY . /srv/
"""
HEX_KEY = re.compile(r"^[0-9a-f]{64}$")


def _cached_project(root: Path, registry: str, base: str, cache: str, extra: str = "") -> Path:
    """One image with a slow step before its sources, built for linux/amd64 and tested."""
    extra += (
        "    platforms: [linux/amd64]\n"
        f"    cache: {cache}\n"
        "    tests:\n"
        "      - command: [/bin/busybox, cat, /srv/index.html]\n"
        "        expect: {stdout: '^version '}\n"
    )
    make_project(root, registry, base, extra)
    (root / "templates" / "app.j2").write_text(SLOW)
    (root / "app" / "index.html").write_text("version one\n")
    commit(root, "slow step")
    return root


def _change(root: Path, registries: str = "") -> None:
    """One line of source changed (and registries added to syntra.yaml), committed."""
    if registries:
        config = (root / "syntra.yaml").read_text()
        config = config.replace("}}\n", f"}}, {registries}}}\n", 1)
        (root / "syntra.yaml").write_text(config + "defaults: {registry: local}\n")
    (root / "app" / "index.html").write_text("version two\n")
    commit(root, "one line")


def _runner(origin: Path, folder: Path) -> Path:
    """A fresh checkout, as a CI runner starts with."""
    git(folder.parent, "clone", "-q", str(origin), str(folder))
    return folder


def _token(root: Path) -> bytes:
    return layer_files(build_dir(root, "app") / "linux-amd64")["token"]


def _tags(registry: str, repository: str, *creds: str) -> list[str]:
    listed = skopeo("list-tags", "--tls-verify=false", *creds, f"docker://{registry}/{repository}")
    return list(json.loads(listed)["Tags"])


def _ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[Callable[[str], dict[str, str]]]:
    made: list[dict[str, str]] = []

    def fresh(name: str) -> dict[str, str]:
        made.append(podman_store(tmp_path / f"store-{name}"))
        return made[-1]

    yield fresh
    for env in made:
        reset_store(env)


@pytest.mark.e2e
def test_second_runner_rebuilds_from_the_cache_and_tags_no_release(
    tmp_path: Path, registry: str, base: str, stores: Callable[[str], dict[str, str]]
) -> None:
    """The cache registry needs a login (from syntra.yaml's credentials, as pushes):
    runner A fills it; after a one-line change runner B's fresh store rebuilds with it
    (the slow step's bytes are A's), the image passes its tests, and the cache
    repository holds only podman's hex cache keys."""
    htpasswd = tmp_path / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(htpasswd), "ci", "cache-pa55"], check=True,
                   capture_output=True)  # fmt: skip
    login = {"CACHE_USER": "ci", "CACHE_PASS": "cache-pa55"}
    with serve(htpasswd=htpasswd) as private:
        origin = _cached_project(tmp_path / "origin", registry, base, "{registry: cache}",
                                 "    repository: tests/two-runners\n")  # fmt: skip
        credentials = "credentials: {username_env: CACHE_USER, password_env: CACHE_PASS}"
        _change(origin, f"cache: {{url: '{private}', insecure: true, {credentials}}}")
        runner_a = _runner(origin, tmp_path / "a")
        git(runner_a, "checkout", "-q", "HEAD~0")
        (runner_a / "app" / "index.html").write_text("version one\n")  # A built before it
        commit(runner_a, "the earlier source")
        first = _ok(run(runner_a, "doit", "docker", env={**stores("a"), **login}))
        assert "warning" not in first
        runner_b = _runner(origin, tmp_path / "b")
        _ok(run(runner_b, "doit", "docker", env={**stores("b"), **login}))
        assert _token(runner_b) == _token(runner_a)  # the slow step came from the cache
        # Without the cache the same rebuild runs the slow step again.
        runner_c = _runner(origin, tmp_path / "c")
        off = {**stores("c"), "SYNTRA_LAYER_CACHE": "off"}  # B pushed it: build, push nothing
        _ok(run(runner_c, "syntra", "test", "app", "--platform", "linux/amd64", env=off))
        assert _token(runner_c) != _token(runner_a)
        creds = ("--creds", "ci:cache-pa55")
        cached = _tags(private, "tests/two-runners/cache", *creds)
        assert cached and all(HEX_KEY.match(tag) for tag in cached), cached
        assert not [t for t in _tags(registry, "tests/two-runners") if HEX_KEY.match(t)]
        built = layer_files(build_dir(runner_b, "app") / "linux-amd64")
        assert built["srv/index.html"] == b"version two\n"
        logs = "".join(p.read_text() for p in logs_root(runner_b).rglob("*.log"))
        assert "--cache-to" in logs and "cache-pa55" not in logs


@pytest.mark.e2e
def test_a_cache_registry_that_is_down_is_one_warning(
    tmp_path: Path, registry: str, base: str, stores: Callable[[str], dict[str, str]]
) -> None:
    root = _cached_project(tmp_path / "repo", registry, base, "{registry: gone}",
                           "    repository: tests/cache-down\n")  # fmt: skip
    gone = f"127.0.0.1:{free_port()}"
    _change(root, f"gone: {{url: '{gone}', insecure: true}}")
    env = {**stores("down"), "SYNTRA_REGISTRY_TRIES": "1"}
    output = _ok(run(root, "doit", "docker", env=env))
    warnings = [line for line in output.splitlines() if "warning" in line]
    assert len(warnings) == 1 and warnings[0].startswith(
        f"warning: app: cache {gone}/tests/cache-down/cache not used ("
    ), warnings
    assert warnings[0].endswith("); building uncached")
    assert "Traceback" not in output


def _request(root: Path, platform: str, cache: CacheUse | None) -> BuildRequest:
    image = build_plan(load(root / "syntra.yaml")).image("app")
    return BuildRequest(
        image=image,
        platform=platform,
        root=root,
        source_date_epoch=1_700_000_000,
        args={},
        layout=root / "layout",
        log=root / "build.log",
        cache=cache,
        buildx_builder=image.builders.get(platform),
    )


def test_cache_and_builders_in_each_builders_command_line(tmp_path: Path) -> None:
    """A contract test: remote and Kubernetes builders run nowhere here, so `builders:`
    is checked as the `--builder` each platform's buildx build names."""
    root = make_project(
        tmp_path / "repo",
        "reg.example:5000",
        "reg.example:5000/base:1",
        "    cache: {registry: local, repository: ci/layers, mode: min, ttl: 168h}\n",
    )
    (root / "syntra.yaml").write_text(
        (root / "syntra.yaml").read_text() + "builders: {all: local-kit, linux/arm64: k8s-arm}\n"
    )
    plan = build_plan(load(root / "syntra.yaml")).image("app")
    assert plan.cache is not None and plan.cache.reference == "reg.example:5000/ci/layers"
    assert plan.builders == {"linux/amd64": "local-kit", "linux/arm64": "k8s-arm"}
    both = CacheUse(plan.cache, write=True, login=None)
    arm = Buildx().argv(_request(root, "linux/arm64", both))
    ref = (
        "type=registry,ref=reg.example:5000/ci/layers:buildx-app-linux-arm64,registry.insecure=true"
    )
    assert arm[1:5] == ["buildx", "build", "--builder", "k8s-arm"]
    assert _after(arm, "--cache-from") == ref and _after(arm, "--cache-to") == f"{ref},mode=min"
    amd = Buildx().argv(_request(root, "linux/amd64", both))
    assert _after(amd, "--builder") == "local-kit"
    podman = Podman().argv(_request(root, "linux/amd64", both))
    assert (
        " ".join(podman).count(
            "--layers --cache-from reg.example:5000/ci/layers "
            "--cache-to reg.example:5000/ci/layers "
            "--cache-ttl 168h --tls-verify=false"
        )
        == 1
    )
    read = CacheUse(plan.cache, write=False, login=None)
    for argv in (Buildx().argv(_request(root, "linux/arm64", read)),
                 Podman().argv(_request(root, "linux/amd64", read))):  # fmt: skip
        assert "--cache-from" in argv and "--cache-to" not in argv
    uncached = Podman().argv(_request(root, "linux/amd64", None))
    assert "--cache-from" not in uncached and "--layers" not in uncached


def _after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_builders_get_the_push_login_in_a_file_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """buildx: a DOCKER_CONFIG whose auths entry wins over the user's credential store,
    the user's builders and plugins linked in; podman: an --authfile."""
    user = tmp_path / "docker"
    (user / "buildx" / "instances").mkdir(parents=True)
    (user / "config.json").write_text(json.dumps({"credsStore": "pass", "auths": {"x.io": {}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(user))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(user / "config.json"))
    plan = build_plan(load(_plain_project(tmp_path))).image("app")
    assert plan.cache is not None
    use = CacheUse(plan.cache, write=True, login=Login("ci", "s3cret", "test"))
    with docker_env(use) as env:
        folder = Path(env["DOCKER_CONFIG"])
        config = json.loads((folder / "config.json").read_text())
        assert config["auths"]["reg.example:5000"] == {"auth": "Y2k6czNjcmV0"}  # ci:s3cret
        assert config["credHelpers"] == {"reg.example:5000": ""} and "x.io" in config["auths"]
        assert (folder / "buildx").resolve() == user / "buildx"
        assert (folder / "config.json").stat().st_mode & 0o077 == 0
    assert not folder.exists()
    with podman_auth(use) as flags:
        written = json.loads(Path(flags[1]).read_text())
        assert flags[0] == "--authfile" and "reg.example:5000" in written["auths"]
        assert written["credHelpers"] == {}


def _plain_project(tmp_path: Path) -> Path:
    root = make_project(tmp_path / "repo", "reg.example:5000", "reg.example:5000/base:1",
                        "    cache: {registry: local}\n")  # fmt: skip
    return root / "syntra.yaml"


def test_cache_errors_are_one_positioned_line(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    root = make_project(tmp_path / "repo", "reg.example:5000", "reg.example:5000/base:1",
                        "    cache: {registry: locl, mode: all}\n")  # fmt: skip
    done = syntra(root, "validate")
    assert (done.code, done.err) == (
        2, "syntra.yaml:11:12: images.app.cache: 'all' is not one of min, max\n"
    )  # fmt: skip
    (root / "syntra.yaml").write_text((root / "syntra.yaml").read_text().replace(", mode: all", ""))
    done = syntra(root, "validate")
    assert done.code == 2
    assert (
        "images.app.cache.registry: 'locl' is not a registry under registries; "
        "did you mean 'local'?" in done.err
    )


def test_an_image_can_turn_the_defaults_cache_off(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo", "reg.example:5000", "reg.example:5000/base:1",
                        "    cache: false\n")  # fmt: skip
    text = (root / "syntra.yaml").read_text()
    (root / "syntra.yaml").write_text(text + "defaults: {cache: {registry: local}}\n")
    assert build_plan(load(root / "syntra.yaml")).image("app").cache is None
    (root / "syntra.yaml").write_text(text.replace("    cache: false\n", "") +
                                      "defaults: {cache: {registry: local}}\n")  # fmt: skip
    cache = build_plan(load(root / "syntra.yaml")).image("app").cache
    assert cache is not None and cache.repository == "demo/app/cache"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    with dockerd(tmp_path_factory.mktemp("dockerd")) as env:
        yield env


@pytest.mark.e2e
def test_real_buildx_builds_tests_and_publishes_from_the_registry_cache(
    tmp_path: Path, registry: str, base: str, engine: dict[str, str]
) -> None:
    """Real docker buildx on BuildKit: the image is built, tested and pushed through
    Syntra's publisher; after BuildKit's own cache is pruned (a fresh runner), the
    rebuild takes the slow step from the registry cache, which holds one cache tag."""
    root = _cached_project(tmp_path / "repo", registry, base, "{registry: local}",
                           "    repository: tests/buildx-cache\n")  # fmt: skip
    env = {**engine, "SYNTRA_BUILDER": "buildx"}
    built = _ok(run(root, "doit", "docker", env=env))
    assert "warning" not in built
    first = _token(root)
    pushed = record(root)
    listed = skopeo("inspect", "--raw", "--tls-verify=false",
                    f"docker://{registry}/tests/buildx-cache:latest")  # fmt: skip
    assert hashlib.sha256(listed.encode()).hexdigest() == str(pushed["digest"])[7:]
    prune = ["docker", "buildx", "prune", "--all", "--force"]
    subprocess.run(prune, env={**os.environ, **engine}, check=True, capture_output=True)
    _change(root)
    _ok(run(root, "doit", "docker", env=env))
    assert _token(root) == first  # the slow step came from the registry cache
    assert layer_files(build_dir(root, "app") / "linux-amd64")["srv/index.html"] == b"version two\n"
    log = "".join(p.read_text() for p in logs_root(root).rglob("*.log"))
    assert "importing cache manifest from" in log
    assert _tags(registry, "tests/buildx-cache/cache") == ["buildx-app-linux-amd64"]
    # A builder syntra.yaml names that docker does not know: one line, nothing built.
    (root / "syntra.yaml").write_text(
        (root / "syntra.yaml").read_text() + "builders: {all: arm-nodes}\n"
    )
    (root / "app" / "index.html").write_text("version three\n")
    commit(root, "a builder that is not there")
    missing = run(root, "syntra", "build", "app", env=env)
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert (
        "buildx builder 'arm-nodes' (builders, for linux/amd64) is not there: "
        "create it with `docker buildx create --name arm-nodes ...`"
    ) in missing.stderr


def test_each_run_chooses_how_it_uses_the_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SYNTRA_LAYER_CACHE", raising=False)
    assert cache.mode(snapshot=False) == "write"
    assert cache.mode(snapshot=True) == "read"  # a snapshot pushes nothing: reads only
    monkeypatch.setenv("SYNTRA_LAYER_CACHE", "off")
    assert cache.mode(snapshot=False) == "off"
    monkeypatch.setenv("SYNTRA_LAYER_CACHE", "sometimes")
    with pytest.raises(SyntraError) as caught:
        cache.mode(snapshot=False)
    assert str(caught.value) == "SYNTRA_LAYER_CACHE='sometimes' is not one of off, read, write"


def test_the_cache_may_not_share_the_images_repository(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    root = make_project(tmp_path / "repo", "reg.example:5000", "reg.example:5000/base:1",
                        "    cache: {registry: local, repository: demo/app}\n")  # fmt: skip
    done = syntra(root, "validate")
    assert done.code == 2
    assert done.err.endswith(
        "images.app.cache.repository: 'demo/app' is the image's own repository; "
        "the cache needs its own\n"
    )
