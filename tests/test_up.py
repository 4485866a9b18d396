"""`syntra up`, `down`, `logs` and the compose file: a real stack on podman, through
podman-compose, and the services section's errors."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from syntra.registry.transfer import host_platform
from tests.conftest import BUSYBOX, REPO, SCHEMAS, Result, commit, git
from tests.support.bases import POSTGRES_LOCAL, seed_postgres

COMPOSE_SCHEMA = SCHEMAS / "compose-spec" / "compose_spec.json"


def check_compose(document: object) -> None:
    """Valid by the Compose Specification's schema (it names draft 2019-09)."""
    jsonschema.Draft201909Validator(json.loads(COMPOSE_SCHEMA.read_text())).validate(document)


RELAY = """\
#!/bin/sh
# Asks the api service, over the stack's network, and hands its answer back.
echo "Content-Type: text/plain"
echo
/bin/wget -q -O - "http://api:8080/cgi-bin/hello?$QUERY_STRING"
"""
HELLO = """\
#!/bin/sh
echo "Content-Type: text/plain"
echo
echo "$GREETING from $(/bin/hostname) asked $QUERY_STRING"
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def stack_project(root: Path, registry: str, base: str, port: int) -> Path:
    www = root / "web" / "www"
    (www / "cgi-bin").mkdir(parents=True)
    (www / "index.html").write_text("<h1>stack</h1>\n")
    for name, text in (("relay", RELAY), ("hello", HELLO)):
        (www / "cgi-bin" / name).write_text(text)
        (www / "cgi-bin" / name).chmod(0o755)
    (root / "syntra.yaml").write_text(f"""\
version: 1
project: {{name: stack}}
registries: {{local: {{url: '{registry}', insecure: true}}}}
defaults: {{platforms: [{host_platform()}]}}
images:
  web:
    context: web
    base: {base}
    vars:
      copy: [{{src: www/, dest: /srv/www/}}]
      entrypoint: [/bin/busybox, httpd, -f, -p, "8080", -h, /srv/www]
services:
  api:
    image: web
    environment: {{GREETING: "hello {{{{ name }}}}"}}
    healthcheck:
      test: [CMD, wget, -q, -O, /dev/null, "http://127.0.0.1:8080/"]
      interval: 1s
      retries: 20
  web:
    image: web
    ports: ["127.0.0.1:{port}:8080"]
    depends_on: {{api: {{condition: service_healthy}}}}
    healthcheck:
      test: "wget -q -O - http://127.0.0.1:8080/cgi-bin/relay | grep -q ' from '"  # api answered
      interval: 1s
      retries: 20
""")
    (root / ".gitignore").write_text(".syntra/\n")
    git(root, "init", "-q", "-b", "main")
    commit(root, "initial")
    return root


@pytest.fixture(scope="module")
def engine(
    base: str, store: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """podman able to run containers on this machine: runc, no default ulimits (crun and
    setrlimit are refused here), netavark with aardvark-dns so services find each other by
    name, from networks of its own (`podman system reset` elsewhere removes every network
    of the shared folder). Test settings, not Syntra's: `.ci/setup` writes the same for
    the main job."""
    folder = tmp_path_factory.mktemp("engine")
    conf = Path(store["CONTAINERS_CONF"]).read_text()
    settings = folder / "containers.conf"
    settings.write_text(
        "[containers]\ndefault_ulimits = []\n\n"
        + conf.replace("[engine]\n", '[engine]\nruntime = "runc"\n')
        + f'\n[network]\nnetwork_backend = "netavark"\nnetwork_config_dir = "{folder}/networks"\n'
        # Subnets of their own too: networks in other folders do not see these.
        + 'default_subnet_pools = [{base = "10.123.0.0/16", size = 24}]\n'
    )
    previous = os.environ["CONTAINERS_CONF"]
    os.environ["CONTAINERS_CONF"] = str(settings)
    yield base
    os.environ["CONTAINERS_CONF"] = previous


def podman(*args: str) -> list[str]:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, check=True)
    return done.stdout.split()


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as answer:
        body: bytes = answer.read()
        return body.decode()


def started(name: str) -> tuple[str, str]:
    found = json.loads(subprocess.run(["podman", "inspect", name], capture_output=True, text=True,
                                      check=True).stdout)[0]  # fmt: skip
    return found["Id"], found["State"]["StartedAt"]


def private_base(registry: str, base: str, private: str) -> str:
    """The base image copied into a registry of the test's own, which it can stop."""
    copied = f"{private}/fixtures/busybox:1.36"
    subprocess.run(
        ["skopeo", "copy", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
         f"docker://{base}", f"docker://{copied}"],
        capture_output=True, check=True,
    )  # fmt: skip
    return copied


@pytest.mark.e2e
def test_up_runs_the_stack_and_down_leaves_nothing(
    tmp_path: Path, registry: str, engine: str, syntra: Callable[..., Result]
) -> None:
    from syntra.registry.local import serve

    port = free_port()
    env = {"SYNTRA_BUILDER": "podman"}
    os.environ.update(env)
    root = tmp_path
    try:
        with serve() as private:
            root = stack_project(tmp_path, private, private_base(registry, engine, private), port)
            first = syntra(root, "up")
            assert first.code == 0, first.err
        # The base's registry is gone: a no-op `up` does not ask it.
        lines = first.out.splitlines()
        assert f"web: http://127.0.0.1:{port}/" in lines
        order = ["api: started", "api: healthy", "web: started", "web: healthy"]
        assert [line for line in lines if line in order] == order  # as it happened
        answer = get(f"http://127.0.0.1:{port}/cgi-bin/relay?ping")
        assert answer.startswith("hello api from ") and answer.endswith(" asked ping\n")
        ids = {name: started(f"stack_{name}_1") for name in ("api", "web")}

        second = syntra(root, "up")
        assert second.code == 0, second.err
        assert "web: unchanged for" in second.out and "built" not in second.out
        assert {name: started(f"stack_{name}_1") for name in ("api", "web")} == ids

        config = root / "syntra.yaml"
        config.write_text(config.read_text().replace("hello {{ name }}", "hi {{ name }}"))
        changed = syntra(root, "up", "web")  # api's definition changed: only api is new
        assert changed.code == 0, changed.err
        assert "api: recreated" in changed.out and "web: unchanged, running" in changed.out
        assert started("stack_web_1") == ids["web"] and started("stack_api_1") != ids["api"]
        assert get(f"http://127.0.0.1:{port}/cgi-bin/relay?again").startswith("hi api from ")

        logs = syntra(root, "logs", "api")
        assert logs.code == 0, logs.err

        runfile = YAML(typ="safe").load((root / ".syntra" / "up" / "compose.yaml").read_text())
        assert runfile["services"]["web"]["image"].startswith("localhost/stack/web@sha256:")
        check_compose(runfile)
    finally:
        down = syntra(root, "down", "--volumes")
        del os.environ["SYNTRA_BUILDER"]
    assert down.code == 0, down.err
    label = "label=com.docker.compose.project=stack"
    assert podman("ps", "-a", "-q", "--filter", label) == []
    assert podman("network", "ls", "-q", "--filter", label) == []
    assert podman("volume", "ls", "-q", "--filter", label) == []


FAILING = """\
version: 1
project: {{name: failing}}
registries:
  local: {{url: '{registry}', insecure: true}}
  other:  # never used here: its password is a secret all the same
    url: registry.example.com
    credentials: {{username_env: UP_TEST_USER, password_env: UP_TEST_PASSWORD}}
defaults: {{platforms: [{platform}], registry: local}}
images:
  box:
    context: box
    base: {base}
    vars: {{entrypoint: [/bin/sh, -c], cmd: [sleep 600]}}
services:
  taken:
    image: box
    ports: ["127.0.0.1:{port}:8080"]
  ghost:
    image: 127.0.0.1:1/nowhere/ghost:1
  stray:
    image: localhost/nowhere/stray:1
  sick:
    image: box
    healthcheck: {{test: "echo sick of $${{HOSTNAME}}; exit 1", interval: 1s, retries: 3}}
  quits:
    image: box
    environment: {{SHOWN: "${{UP_TEST_SHOWN}}"}}
    command: ["echo $$SHOWN and {password}; echo bye now; exit 7"]
"""


@pytest.mark.e2e
def test_up_failures_are_one_line_naming_the_cause(
    tmp_path: Path,
    registry: str,
    engine: str,
    syntra: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password, shown = "hunter2-registry-pw", "given-to-quits-42"
    monkeypatch.setenv("SYNTRA_BUILDER", "podman")
    monkeypatch.setenv("UP_TEST_USER", "someone")
    monkeypatch.setenv("UP_TEST_PASSWORD", password)
    monkeypatch.setenv("UP_TEST_SHOWN", shown)
    (tmp_path / "box").mkdir()
    (tmp_path / "box" / "README").write_text("a shell\n")
    with socket.socket() as holder:  # the port is taken while `up` runs
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        (tmp_path / "syntra.yaml").write_text(
            FAILING.format(
                registry=registry, platform=host_platform(), base=engine, port=port,
                password=password,
            )
        )  # fmt: skip
        (tmp_path / ".gitignore").write_text(".syntra/\n")
        git(tmp_path, "init", "-q", "-b", "main")
        commit(tmp_path, "initial")
        try:
            taken = syntra(tmp_path, "up", "taken")
            assert taken.code == 3, taken.out + taken.err
            assert len(taken.err.splitlines()) == 1, taken.err
            assert taken.err.startswith("taken: did not start: ")
            assert f"127.0.0.1:{port}: bind: address already in use" in taken.err

            ghost = syntra(tmp_path, "up", "ghost")
            assert ghost.code == 4 and len(ghost.err.splitlines()) == 1, ghost.err
            assert ghost.err.startswith("ghost: did not start: image not pulled: ")
            assert "127.0.0.1:1/nowhere/ghost:1" in ghost.err
            assert "connection refused" in ghost.err

            stray = syntra(tmp_path, "up", "stray")  # before anything is built
            assert (stray.code, stray.out) == (3, ""), stray.out + stray.err
            assert stray.err == (
                "image localhost/nowhere/stray:1 is not in podman's image store, and no "
                "registry has it (`syntra import` makes one from a root filesystem tarball)\n"
            )

            sick = syntra(tmp_path, "up", "sick")
            assert sick.code == 3 and len(sick.err.splitlines()) == 1, sick.err
            assert "sick: started" in sick.out
            # podman's own verdict after 3 failed checks, not the 30 s grace after them
            assert sick.err.startswith(
                "sick: unhealthy; its health check's last output: sick of "
            ), sick.err

            quits = syntra(tmp_path, "up", "quits")
            assert quits.code == 3 and len(quits.err.splitlines()) == 1, quits.err
            assert quits.err.startswith("quits: exited with code 7; last log line: bye now")

            logs = syntra(tmp_path, "logs", "quits")
            assert "quits | *** and ***" in logs.out, logs.out
            up_log = (tmp_path / ".syntra" / "logs" / "up.log").read_text()
            assert "bind: address already in use" in up_log  # the whole story is kept
            for said in (taken, ghost, sick, quits, logs):
                assert password not in said.out + said.err and shown not in said.out + said.err
            assert password not in up_log and shown not in up_log
            # Compose interpolated nothing: `$$SHOWN` reached the container's shell as
            # `$SHOWN`, and the values in the file it ran are escaped.
            runfile = (tmp_path / ".syntra" / "up" / "compose.yaml").read_text()
            assert "$$SHOWN" in runfile and "$${HOSTNAME}" in runfile
        finally:
            down = syntra(tmp_path, "down")
    assert down.code == 0, down.err
    assert podman("ps", "-a", "-q", "--filter", "label=com.docker.compose.project=failing") == []


def rootfs_tarball(folder: Path) -> Path:
    """A root filesystem of static busybox for this host, as a tarball."""
    root = folder / "rootfs"
    (root / "bin").mkdir(parents=True)
    arch = host_platform().split("/")[1]
    shutil.copy(BUSYBOX[arch], root / "bin" / "busybox")
    subprocess.run([str(root / "bin" / "busybox"), "--install", "-s", str(root / "bin")],
                   check=True)  # fmt: skip
    for link in (root / "bin").iterdir():  # absolute links to the host's /bin: relative
        if link.is_symlink():
            link.unlink()
            link.symlink_to("busybox")
    (root / "srv").mkdir()
    tarball = folder / "rootfs.tar"
    subprocess.run(["tar", "-C", str(root), "-cf", str(tarball), "."], check=True)
    return tarball


LOCAL_BASE = """\
version: 1
project: {{name: localbase}}
registries: {{nowhere: {{url: '127.0.0.1:1', insecure: true}}}}  # never reached
defaults: {{platforms: [{platform}]}}
images:
  web:
    context: web
    base: localhost/uptest/box:1
    vars:
      copy: [{{src: index.html, dest: /srv/index.html}}]
      entrypoint: [/bin/httpd, -f, -p, "8080", -h, /srv]
services:
  box:
    image: localhost/uptest/box:1
    healthcheck: {{test: "test \\"$$GREETING\\" = 'hi there'", interval: 1s, retries: 5}}
  web:
    image: web
    ports: ["127.0.0.1:{port}:8080"]
    depends_on: {{box: {{condition: service_healthy}}}}
"""


@pytest.mark.e2e
def test_import_makes_a_service_image_and_a_base_no_registry_serves(
    tmp_path: Path, engine: str, syntra: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTRA_BUILDER", "podman")
    tarball = rootfs_tarball(tmp_path / "parts")
    name = "localhost/uptest/box:1"
    flags = ['--entrypoint=["/bin/sh", "-c"]', '--cmd=["sleep 600"]', "--env=GREETING=hi there",
             "--expose=8080", "--workdir=/srv", "--stop-signal=SIGINT"]  # fmt: skip
    for bad, said in (
        ("--env=GREETING", "--env 'GREETING': not NAME=value"),
        ("--stop-signal=SIGSOON", "--stop-signal 'SIGSOON': not a signal"),
        ("--expose=70000", "--expose '70000': not a port"),
        ("--entrypoint=[1, 2]", "'[1, 2]': not a JSON array of strings"),
    ):
        refused = syntra(tmp_path, "import", str(tarball), name, bad)
        assert refused.code == 2 and refused.err.startswith(said), refused.err
        assert len(refused.err.splitlines()) == 1
    not_tar = syntra(
        tmp_path, "import", str(tmp_path / "parts" / "rootfs" / "bin" / "busybox"), name
    )
    assert not_tar.code == 2 and not_tar.err.endswith("busybox: not a tar archive\n")

    imported = syntra(tmp_path, "import", str(tarball), name, *flags)
    assert imported.code == 0, imported.err
    digest = subprocess.run(["podman", "image", "inspect", "--format", "{{.Digest}}", name],
                            capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    assert (
        imported.out
        == f"imported {tarball} into podman as {name} (localhost/uptest/box@{digest})\n"
    )
    config = json.loads(subprocess.run(["podman", "image", "inspect", name], capture_output=True,
                                       text=True, check=True).stdout)[0]["Config"]  # fmt: skip
    assert config["Entrypoint"] == ["/bin/sh", "-c"] and config["Cmd"] == ["sleep 600"]
    assert "GREETING=hi there" in config["Env"] and config["WorkingDir"] == "/srv"
    assert "8080/tcp" in config["ExposedPorts"] and config["StopSignal"] in ("SIGINT", "2")

    port = free_port()
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "index.html").write_text("built on an imported base\n")
    (tmp_path / "syntra.yaml").write_text(LOCAL_BASE.format(platform=host_platform(), port=port))
    (tmp_path / ".gitignore").write_text(".syntra/\nparts/\n")
    git(tmp_path, "init", "-q", "-b", "main")
    commit(tmp_path, "initial")
    try:
        first = syntra(tmp_path, "up")
        assert first.code == 0, first.err
        assert "box: healthy" in first.out  # the imported image runs as a service
        assert get(f"http://127.0.0.1:{port}/") == "built on an imported base\n"
        runfile = YAML(typ="safe").load((tmp_path / ".syntra" / "up" / "compose.yaml").read_text())
        assert runfile["services"]["box"]["image"] == name
        built = json.loads((tmp_path / ".syntra" / "up" / "images.json").read_text())
        assert built["web"]["base"] == f"localhost/uptest/box@{digest}"
        second = syntra(tmp_path, "up")
        assert second.code == 0 and "web: unchanged for" in second.out, second.err
        again = syntra(tmp_path, "import", str(tarball), name, *flags, "--env=EXTRA=1")
        assert again.code == 0, again.err
        third = syntra(tmp_path, "up")  # a new base in the engine: web is built on it
        assert third.code == 0 and "web: built for" in third.out, third.err
        assert get(f"http://127.0.0.1:{port}/") == "built on an imported base\n"
    finally:
        down = syntra(tmp_path, "down")
        subprocess.run(["podman", "rmi", "-f", name], capture_output=True, check=False)
    assert down.code == 0, down.err


def showcase_stack(root: Path, port: int) -> Path:
    """The showcase's services, images and sources, without its wasm guests (compiling
    them is test_wasm's business): the server bundles no plugins here."""
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096
    config = yaml.load((REPO / "syntra.yaml").read_text())
    for folder in ("server", "notes", "templates"):
        shutil.copytree(REPO / folder, root / folder)
    server = config["images"]["server"]
    server["plugins"] = []
    # No image tests: the server's HTTP test listens on the host's port 8080, which a
    # real `syntra up` of the showcase on this machine publishes (the main job runs them).
    server["tests"] = []
    for key in ("wasm", "supply_chain", "ci"):
        del config[key]
    # A project name of its own: its network never shares aardvark-dns's entries (kept
    # per network name, machine-wide) with a real `syntra up` of the showcase.
    config["project"]["name"] = "showcase"
    config["defaults"]["platforms"] = [host_platform()]
    config["services"]["server"]["ports"][0] = DoubleQuotedScalarString(f"127.0.0.1:{port}:8080")
    with (root / "syntra.yaml").open("w") as handle:
        yaml.dump(config, handle)
    (root / ".gitignore").write_text(".syntra/\n")
    git(root, "init", "-q", "-b", "main")
    commit(root, "initial")
    return root


def post(url: str, body: str) -> str:
    request = urllib.request.Request(url, data=body.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as answer:
        said: bytes = answer.read()
        return said.decode()


@pytest.mark.e2e
def test_showcase_stack_keeps_notes_in_postgres(
    tmp_path: Path,
    registry: str,
    engine: str,
    syntra: Callable[..., Result],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = free_port()
    root = showcase_stack(tmp_path, port)
    monkeypatch.setenv("SYNTRA_BUILDER", "podman")
    monkeypatch.setenv("SYNTRA_REGISTRY", registry)
    monkeypatch.setenv("SYNTRA_BASE_IMAGE", engine)
    monkeypatch.setenv("SYNTRA_NOTES_BASE", seed_postgres(REPO, registry))
    monkeypatch.setenv("SYNTRA_POSTGRES_IMAGE", POSTGRES_LOCAL)
    try:
        first = syntra(root, "up")
        assert first.code == 0, first.err + first.out
        for name in ("db", "notes", "server"):
            assert f"{name}: healthy" in first.out
        assert f"server: http://127.0.0.1:{port}/" in first.out
        url = f"http://127.0.0.1:{port}/cgi-bin/notes"
        assert post(url, "first note") == "1: first note\n"
        assert post(url, "it's kept") == "1: first note\n2: it's kept\n"
        assert get(url) == "1: first note\n2: it's kept\n"
        table = subprocess.run(
            ["podman", "exec", "showcase_db_1", "psql", "-U", "notes", "-At", "-c",
             "SELECT count(*) FROM notes"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        assert table.stdout == "2\n"  # in the database, seen by its own client
        logs = syntra(root, "logs", "db")
        assert "db | database notes of notes initialised" in logs.out, logs.err
        ids = {name: started(f"showcase_{name}_1") for name in ("db", "notes", "server")}
        second = syntra(root, "up", "server")
        assert second.code == 0, second.err
        assert {name: started(f"showcase_{name}_1") for name in ("db", "notes", "server")} == ids

        kept = syntra(root, "down")  # the data stays, as with `docker compose down`
        assert kept.code == 0, kept.err
        assert "kept volume showcase_pgdata (`syntra down --volumes` removes it)" in kept.out
        assert (
            podman("ps", "-a", "-q", "--filter", "label=com.docker.compose.project=showcase") == []
        )
        again = syntra(root, "up")
        assert again.code == 0, again.err
        assert get(url) == "1: first note\n2: it's kept\n"  # the rows survived down + up

        emptied = syntra(root, "down", "--volumes")
        assert emptied.code == 0, emptied.err
        assert "removed volume showcase_pgdata" in emptied.out
        fresh = syntra(root, "up")
        assert fresh.code == 0, fresh.err
        assert get(url) == "\n"  # a new, empty database: no notes
    finally:
        down = syntra(root, "down", "--volumes")
    assert down.code == 0, down.err
    label = "label=com.docker.compose.project=showcase"
    assert podman("ps", "-a", "-q", "--filter", label) == []
    assert podman("network", "ls", "-q", "--filter", label) == []
    assert podman("volume", "ls", "-q", "--filter", label) == []


SERVICES = """\
version: 1
project: {name: demo}
images:
  web: {context: web, base: "127.0.0.1:5000/demo/base:1"}
services:
  web:
    image: web
    ports: ["8080:80"]
    environment: {GREETING: "v{{ version }}", PRICE: "$5"}
    depends_on: {db: {condition: service_healthy}}
  db:
    image: postgres:16
    healthcheck: {test: "pg_isready", interval: 1s}
    volumes: ["data:/var/lib/postgresql/data", "./web:/seed:ro"]
"""


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (("image: web", "image: wbe"), "7:12: services.web.image: 'wbe' is not an image under "
         "images nor a pinned reference (name:tag or name@sha256:digest); did you mean 'web'?"),
        (("image: postgres:16", "image: postgres"), "12:12: services.db.image: 'postgres' is "
         "not an image under images nor a pinned reference"),
        (("{db: {condition", "{dbb: {condition"), "10:23: services.web.depends_on.dbb: 'dbb' "
         "is not a service under services; did you mean 'db'?"),
        (("service_healthy", "service_health"), "services.web.depends_on.db.condition: "
         "'service_health' is not one of service_started, service_healthy; did you mean "
         "'service_healthy'?"),
        (("image: postgres:16", "image: postgres:16\n    depends_on: [web]"),
         "services.web.depends_on: a cycle: web -> db -> web"),
        (("image: postgres:16", "image: postgres:16\n    depends_on: [wbe]"),
         "13:18: services.db.depends_on[0]: 'wbe' is not a service under services; did you "
         "mean 'web'?"),
        (("healthcheck: {test: \"pg_isready\", interval: 1s}", "ports: []"),
         "services.web.depends_on.db: service_healthy needs a healthcheck on service 'db'"),
        (('ports: ["8080:80"]', 'ports: ["80800:80"]'), "services.web.ports[0]: '80800:80' is "
         "not a port mapping"),
        (('ports: ["8080:80"]', "port: [8080]"), "services.web.port: unknown key 'port'; did "
         "you mean 'ports'?"),
        (("interval: 1s", "interval: soon"), "'soon' is not a duration"),
        (('test: "pg_isready"', "test: [pg_isready, -q]"), "services.db.healthcheck.test: "
         "'pg_isready' is not CMD or CMD-SHELL"),
        (('"./web:/seed:ro"', '"../up:/seed"'), "'../up:/seed' is not a volume"),
    ],
)  # fmt: skip
def test_services_errors_are_one_positioned_line(
    tmp_path: Path, syntra: Callable[..., Result], change: tuple[str, str], said: str
) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "syntra.yaml").write_text(SERVICES.replace(*change))
    result = syntra(tmp_path, "validate")
    assert result.code == 2 and result.out == ""
    assert len(result.err.splitlines()) == 1 and said in result.err, result.err


def test_durations_have_one_parser() -> None:
    """What syntra.yaml accepts as a duration is what `up` waits for: one function."""
    from syntra.config.model import duration_seconds

    cases = {"1s": 1.0, "500ms": 0.5, "1m30s": 90.0, "1h2m3.5s": 3723.5, "250us": 250e-6}
    assert {text: duration_seconds(text) for text in cases} == pytest.approx(cases)
    for wrong in ("", "soon", "5", "1s ", "-1s", "1d"):
        with pytest.raises(ValueError, match="is not a duration"):
            duration_seconds(wrong)


def test_compose_file_follows_the_compose_spec(
    tmp_path: Path, syntra: Callable[..., Result]
) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "syntra.yaml").write_text(SERVICES)
    assert syntra(tmp_path, "render").code == 0
    text = (tmp_path / "ContainerSpecs" / "compose.yaml").read_text()
    document = YAML(typ="safe").load(text)
    check_compose(document)
    web, db = document["services"]["web"], document["services"]["db"]
    # Stable across commits: a local name, templates as written, `$` kept from compose.
    assert web["image"] == "localhost/demo/web:local"
    assert web["environment"] == {"GREETING": "v{{ version }}", "PRICE": "$$5"}
    assert web["ports"] == ["8080:80"]  # quoted: YAML 1.1 reads 8080:80 as a number
    assert '"8080:80"' in text
    assert web["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert db["healthcheck"]["test"] == ["CMD-SHELL", "pg_isready"]
    assert db["volumes"] == ["data:/var/lib/postgresql/data", "../web:/seed:ro"]
    assert document["volumes"] == {"data": {}}
    assert syntra(tmp_path, "render", "--check").code == 0
    (tmp_path / "syntra.yaml").write_text(SERVICES.replace("8080:80", "8081:80"))
    drifted = syntra(tmp_path, "render", "--check")
    assert drifted.code == 1 and '+      - "8081:80"' in drifted.out
    (tmp_path / "syntra.yaml").write_text(SERVICES.split("services:")[0])
    assert "removed ContainerSpecs/compose.yaml" in syntra(tmp_path, "render").out


def test_compose_interpolates_nothing_syntra_writes(
    tmp_path: Path, syntra: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`$$VAR` in syntra.yaml reaches the container as `$VAR`: every `$` of a command, a
    health check or a value is written `$$`, so Compose expands none of them."""
    (tmp_path / "web").mkdir()
    monkeypatch.setenv("UP_TEST_MOTD", "from the host")
    extra = (
        '    command: [sh, -c, "echo $${HOME} $$PATH"]\n'
        '    environment: {MOTD: "${UP_TEST_MOTD}", COST: "$$5"}\n'
        '    healthcheck: {test: "test -n \\"$$HOSTNAME\\"", interval: 1s}\n'
    )
    config = SERVICES.replace("    depends_on: {db: {condition: service_healthy}}\n", "")
    config = config.replace('    environment: {GREETING: "v{{ version }}", PRICE: "$5"}\n', extra)
    (tmp_path / "syntra.yaml").write_text(config)
    from syntra.pipeline.context import Context
    from syntra.up import compose

    monkeypatch.chdir(tmp_path)
    ctx = Context.load(tmp_path / "syntra.yaml")
    run = compose.stack(ctx.loaded, ctx.plan, {"web": "localhost/demo/web@sha256:" + "0" * 64})
    web = YAML(typ="safe").load(compose.dump(run.document()))["services"]["web"]
    assert web["command"] == ["sh", "-c", "echo $${HOME} $$PATH"]
    assert web["environment"] == {"MOTD": "from the host", "COST": "$$5"}
    assert web["healthcheck"]["test"] == ["CMD-SHELL", 'test -n "$$HOSTNAME"']
    check_compose(run.document())


def test_showcase_compose_file_follows_the_compose_spec() -> None:
    document = YAML(typ="safe").load((REPO / "ContainerSpecs" / "compose.yaml").read_text())
    check_compose(document)
    assert document["services"]["server"]["image"] == "localhost/syntra/server:local"
    # Left for Compose to expand: the committed file does not depend on the environment.
    db = "${SYNTRA_POSTGRES_IMAGE:-docker.io/library/postgres:15-bookworm}"
    assert document["services"]["db"]["image"] == db


def test_compose_file_does_not_depend_on_the_environment(
    syntra: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYNTRA_POSTGRES_IMAGE", POSTGRES_LOCAL)
    assert syntra(REPO, "render", "--check").code == 0


def test_up_names_an_unknown_service(tmp_path: Path, syntra: Callable[..., Result]) -> None:
    (tmp_path / "web").mkdir()
    (tmp_path / "syntra.yaml").write_text(SERVICES)
    result = syntra(tmp_path, "up", "wbe")
    assert result.code == 2
    assert result.err.endswith("no service 'wbe' in syntra.yaml; did you mean 'web'?\n")


@pytest.mark.parametrize("command", ["up", "down", "logs"])
def test_commands_need_services(project: Path, syntra: Callable[..., Result], command: str) -> None:
    result = syntra(project, command)
    assert (result.code, result.out) == (2, "")
    assert result.err == "syntra.yaml: no services; add a services: section\n"
