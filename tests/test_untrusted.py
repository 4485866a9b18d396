"""Untrusted input stays in its box: crafted archives and layouts, and a malicious
registry (a small HTTP server on 127.0.0.1, made in each test). Every attack is refused
with one line and its exit code (3 a local file, 4 a registry), and nothing is read,
written or sent outside its box: sentinel files stay untouched, nothing appears outside
the target, the login never reaches another host."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import tarfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYTHON, REPO, Result

Syntra = Callable[..., Result]
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
PASSWORD = "s3cret-Pa55word-for-the-registry"
USER = "alice"


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Few retries, and no login but the test's own."""
    monkeypatch.setenv("SYNTRA_REGISTRY_TRIES", "2")
    monkeypatch.setenv("SYNTRA_REGISTRY_RETRY_SECONDS", "1")
    monkeypatch.setenv("SYNTRA_REGISTRY_TIMEOUT", "5")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "home" / "docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "home" / "auth.json"))
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)


def one_line(result: Result, code: int) -> str:
    assert result.code == code, (result.code, result.err)
    assert result.err.count("\n") == 1 and "Traceback" not in result.err, result.err
    return result.err


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(data: bytes, media: str, **more: Any) -> dict[str, Any]:
    return {"mediaType": media, "digest": digest(data), "size": len(data), **more}


def manifest(layers: list[bytes], config: bytes = b'{"architecture":"amd64","os":"linux"}',
             media: str = LAYER, **annotations: Any) -> bytes:  # fmt: skip
    return json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST, "config": descriptor(config, CONFIG),
        "layers": [descriptor(layer, media, **annotations) for layer in layers],
    }).encode()  # fmt: skip


def index(children: list[dict[str, Any]]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": children}).encode()


def write_layout(root: Path, layers: list[bytes], top: dict[str, Any] | None = None) -> bytes:
    """An OCI layout of one image tagged `1`; `top` replaces its index entry."""
    config = b'{"architecture":"amd64","os":"linux"}'
    body = manifest(layers, config)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for data in (*layers, config, body):
        (blobs / digest(data)[7:]).write_bytes(data)
    (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entry = top or descriptor(
        body, MANIFEST, annotations={"org.opencontainers.image.ref.name": "1"}
    )
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return body


@dataclass
class Member:
    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    link: str = ""


def write_tar(path: Path, members: Iterable[Member]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as out:
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.type, info.linkname = member.kind, member.link
            info.mode = 0o755 if member.kind == tarfile.DIRTYPE else 0o644
            info.size = len(member.data) if member.kind == tarfile.REGTYPE else 0
            out.addfile(info, io.BytesIO(member.data) if info.size else None)
    return path


def layout_members(root: Path) -> list[Member]:
    return [
        Member(str(p.relative_to(root)), p.read_bytes())
        for p in sorted(root.rglob("*"))
        if p.is_file()
    ]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")} if folder.exists() else set()


# Archives: read member by member, never extracted ---------------------------------------


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    value = "environ-secret-" + "x" * 16
    monkeypatch.setenv("SYNTRA_TEST_ENV_SECRET", value)
    return value


@pytest.mark.parametrize(
    ("field_name", "named"),
    [
        ("Layers", "/proc/self/environ"),
        ("Layers", "SENTINEL"),  # ../../… up to the sentinel
        ("Config", "/proc/self/environ"),
        ("Config", "SENTINEL"),
    ],
)
def test_a_docker_archive_names_only_its_own_members(
    tmp_path: Path, syntra: Syntra, secret_env: str, field_name: str, named: str
) -> None:
    sentinel = tmp_path / "sentinel"
    sentinel.write_text(secret_env)
    if named == "SENTINEL":
        named = "../" * 40 + str(sentinel).lstrip("/")
    config, layer = b'{"os":"linux"}', b"layer bytes"
    entry = {"Config": "config.json", "RepoTags": [], "Layers": ["layer.tar"]}
    entry[field_name] = [named] if field_name == "Layers" else named
    archive = write_tar(tmp_path / "evil.tar", [
        Member("manifest.json", json.dumps([entry]).encode()),
        Member("config.json", config), Member("layer.tar", layer),
    ])  # fmt: skip
    out = tmp_path / "out"
    err = one_line(syntra(tmp_path, "copy", f"docker-archive:{archive}", f"oci:{out}"), 3)
    assert "not a file in the archive" in err or "escapes the archive" in err, err
    assert not out.exists()
    assert sentinel.read_text() == secret_env
    assert secret_env not in err


def _escapes(tmp_path: Path) -> list[tuple[str, list[Member]]]:
    outside = tmp_path / "outside"
    chain = [Member(f"s{i}", kind=tarfile.SYMTYPE, link=f"s{i + 1}") for i in range(60)]
    chain.append(Member("s60", kind=tarfile.SYMTYPE, link="../" * 30 + str(outside)[1:]))
    return [
        ("dot-dot", [Member("../" * 6 + "escaped", b"x")]),
        ("absolute", [Member(str(outside / "escaped"), b"x")]),
        ("symlink", [Member("blobs/sha256/link", kind=tarfile.SYMTYPE, link=str(outside))]),
        ("hardlink", [Member("hard", kind=tarfile.LNKTYPE, link="index.json")]),
        ("symlink chain", [*chain, Member("s0/escaped", b"x")]),
        ("device", [Member("blobs/null", kind=tarfile.CHRTYPE)]),
    ]


@pytest.mark.parametrize("attack", range(6))
def test_an_oci_archive_with_escaping_members_is_refused(
    tmp_path: Path, syntra: Syntra, attack: int
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    name, extra = _escapes(tmp_path)[attack]
    layout = tmp_path / "layout"
    write_layout(layout, [b"layer"])
    archive = write_tar(tmp_path / "evil.tar", [*layout_members(layout), *extra])
    before = files_under(tmp_path)
    out = tmp_path / "out"
    err = one_line(syntra(tmp_path, "copy", f"oci-archive:{archive}:1", f"oci:{out}"), 3)
    assert str(archive) in err and ("escapes the archive" in err or "is a link" in err
                                    or "not a regular file" in err), (name, err)  # fmt: skip
    assert files_under(tmp_path) == before, name  # nothing written anywhere
    assert [p.name for p in outside.iterdir()] == ["keep"]


def test_a_destination_that_cannot_be_written_is_a_local_file_error(
    tmp_path: Path, syntra: Syntra
) -> None:
    """Exit 3 (a local file), as everywhere else, not 2 (usage): one line naming it."""
    layout = tmp_path / "layout"
    write_layout(layout, [b"layer one"])
    blocked = tmp_path / "file"
    blocked.write_text("in the way\n")
    for destination in (f"oci:{blocked / 'out'}", f"docker-archive:{blocked / 'out.tar'}"):
        err = one_line(syntra(tmp_path, "copy", f"oci:{layout}:1", destination), 3)
        assert str(blocked) in err, err


def test_an_archive_is_read_in_place_and_copies_back_the_same(
    tmp_path: Path, syntra: Syntra
) -> None:
    """The sound path: oci-archive → oci → docker-archive → oci, digests kept."""
    layout = tmp_path / "layout"
    body = write_layout(layout, [b"layer one", b"layer two"])
    archive = write_tar(tmp_path / "good.tar", layout_members(layout))
    done = syntra(tmp_path, "copy", f"oci-archive:{archive}:1", f"oci:{tmp_path / 'copy'}:1")
    assert done.code == 0, done.err
    assert (tmp_path / "copy" / "blobs" / "sha256" / digest(body)[7:]).read_bytes() == body
    saved = tmp_path / "saved.tar"
    done = syntra(tmp_path, "copy", f"oci:{tmp_path / 'copy'}:1", f"docker-archive:{saved}")
    assert done.code == 0, done.err
    back = syntra(tmp_path, "copy", f"docker-archive:{saved}", f"oci:{tmp_path / 'back'}")
    assert back.code == 0, back.err
    blobs = tmp_path / "back" / "blobs" / "sha256"
    assert (blobs / digest(b"layer two")[7:]).read_bytes() == b"layer two"


# Layouts: digests parsed, blobs verified ------------------------------------------------


def _bad_digest(tmp_path: Path) -> str:
    """A digest that, used as a path under a layout, would point at tmp_path/planted."""
    planted = tmp_path / "planted"
    planted.write_bytes(manifest([b"planted"]))
    return "sha256:" + "../" * 40 + str(planted).lstrip("/")


def test_a_layout_index_digest_that_is_a_path_is_refused(tmp_path: Path, syntra: Syntra) -> None:
    layout = tmp_path / "layout"
    bad = _bad_digest(tmp_path)
    write_layout(layout, [b"layer"], top={"mediaType": MANIFEST, "digest": bad, "size": 10})
    out = tmp_path / "out"
    err = one_line(syntra(tmp_path, "copy", f"oci:{layout}", f"oci:{out}"), 3)
    assert "is not a digest" in err and not out.exists()


def test_a_manifest_digest_that_is_a_path_is_refused(tmp_path: Path, syntra: Syntra) -> None:
    layout = tmp_path / "layout"
    bad = _bad_digest(tmp_path)
    body = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": bad, "size": 5},
        "layers": [{"mediaType": LAYER, "digest": bad, "size": 5}],
    }).encode()  # fmt: skip
    write_layout(layout, [])
    (layout / "blobs" / "sha256" / digest(body)[7:]).write_bytes(body)
    entry = descriptor(body, MANIFEST)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    for destination in (f"oci:{tmp_path / 'out'}", f"oci-archive:{tmp_path / 'out.tar'}"):
        err = one_line(syntra(tmp_path, "copy", f"oci:{layout}", destination), 3)
        assert "is not a digest" in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.tar").exists()


def test_a_corrupt_layout_blob_is_refused(tmp_path: Path, syntra: Syntra) -> None:
    layout = tmp_path / "layout"
    write_layout(layout, [b"layer bytes"])
    (layout / "blobs" / "sha256" / digest(b"layer bytes")[7:]).write_bytes(b"layer byteZ")
    out = tmp_path / "out"
    err = one_line(syntra(tmp_path, "copy", f"oci:{layout}", f"oci:{out}"), 3)
    assert "does not hash to its name" in err
    assert not (out / "blobs" / "sha256" / digest(b"layer bytes")[7:]).exists()


def test_a_layout_blob_is_hashed_in_the_read_that_uploads_it(
    tmp_path: Path, syntra: Syntra, registry: str
) -> None:
    """A blob that changes under the copy (or was wrong from the start) is caught by the
    one read that sends it: the copy fails before a manifest or tag is written."""
    from syntra.oci import Client

    layout = tmp_path / "layout"
    good = os.urandom(3 << 20)
    body = write_layout(layout, [good])
    bad = bytearray(good)
    bad[-1] ^= 1
    (layout / "blobs" / "sha256" / digest(good)[7:]).write_bytes(bytes(bad))
    repository = f"evil/onepass{os.getpid()}"
    err = one_line(syntra(tmp_path, "copy", f"oci:{layout}", f"{registry}/{repository}:1"), 3)
    assert f"does not hash to {digest(good)}" in err, err
    client = Client(registry, insecure=True)
    assert client.find_manifest(repository, digest(body)) is None
    assert client.head_manifest(repository, "1") is None
    assert not client.has_blob(repository, digest(good))
    (layout / "blobs" / "sha256" / digest(good)[7:]).write_bytes(good)  # intact: it copies
    done = syntra(tmp_path, "copy", f"oci:{layout}", f"{registry}/{repository}:1")
    assert done.code == 0, done.err
    assert client.head_manifest(repository, "1") == digest(body)


@pytest.mark.parametrize("kind", ["symlink", "fifo", "linked folder"])
def test_a_layout_blob_that_is_not_a_regular_file_is_refused(
    tmp_path: Path, syntra: Syntra, kind: str
) -> None:
    layout = tmp_path / "layout"
    write_layout(layout, [b"layer bytes"])
    blob = layout / "blobs" / "sha256" / digest(b"layer bytes")[7:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    blob.rename(elsewhere / blob.name)  # the right bytes, but not in the layout
    if kind == "symlink":
        blob.symlink_to(elsewhere / blob.name)
    elif kind == "fifo":
        os.mkfifo(blob)
    else:  # blobs/sha256 itself a link to a folder outside
        for other in blob.parent.iterdir():
            other.rename(elsewhere / other.name)
        blob.parent.rmdir()
        blob.parent.symlink_to(elsewhere)
    out = tmp_path / "out"
    err = one_line(syntra(tmp_path, "copy", f"oci:{layout}", f"oci:{out}"), 3)
    assert "symbolic link" in err or "not a regular file" in err, err


# A malicious registry ------------------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


Answer = tuple[int, dict[str, str], "bytes | Iterator[bytes]"]


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: Callable[[str, str, dict[str, str]], Answer]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self.seen: list[Seen] = []
        self.sent = 0  # bytes of streamed bodies

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stall per request
    server: Server

    def log_message(self, *args: Any) -> None:
        pass

    def _any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append(Seen(self.command, self.path, headers))
        status, sent_headers, content = self.server.answer(self.command, self.path, headers)
        self.send_response(status)
        for key, value in sent_headers.items():
            self.send_header(key, value)
        if isinstance(content, bytes):
            self.send_header("Content-Length", str(len(content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(content)
            return
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for piece in content:
                self.wfile.write(piece)
                self.server.sent += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any


@contextmanager
def serve(answer: Callable[[str, str, dict[str, str]], Answer]) -> Iterator[Server]:
    server = Server(answer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Registry:
    """What a malicious registry serves: manifests by tag or digest, blobs by digest."""

    manifests: dict[str, bytes] = field(default_factory=dict)
    blobs: dict[str, Callable[[], bytes | Iterator[bytes]]] = field(default_factory=dict)
    login: bool = False
    extra: Callable[[str, str, dict[str, str]], Answer | None] = lambda *_: None

    def tag(self, tag: str, body: bytes) -> str:
        self.manifests[tag] = self.manifests[digest(body)] = body
        return digest(body)

    def __call__(self, method: str, path: str, headers: dict[str, str]) -> Answer:
        if (special := self.extra(method, path, headers)) is not None:
            return special
        basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if self.login and headers.get("authorization") != basic:
            return 401, {"WWW-Authenticate": 'Basic realm="evil"'}, b""
        parts = path.split("?")[0].split("/")
        if len(parts) >= 5 and parts[-2] == "manifests" and parts[-1] in self.manifests:
            body = self.manifests[parts[-1]]
            media = INDEX if b'"manifests"' in body else MANIFEST
            return 200, {"Content-Type": media, "Docker-Content-Digest": digest(body)}, body
        if len(parts) >= 5 and parts[-2] == "blobs" and parts[-1] in self.blobs:
            return 200, {"Content-Type": "application/octet-stream"}, self.blobs[parts[-1]]()
        return 404, {"Content-Type": "application/json"}, b'{"errors":[{"code":"UNKNOWN"}]}'


def store_login(tmp_path: Path, port: int) -> None:
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    path = tmp_path / "home" / "auth.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"auths": {f"127.0.0.1:{port}": {"auth": auth}}}))


def test_a_registry_digest_that_is_a_path_is_refused(tmp_path: Path, syntra: Syntra) -> None:
    bad = _bad_digest(tmp_path)
    body = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": CONFIG, "digest": bad, "size": 5},
        "layers": [{"mediaType": "application/wasm", "digest": bad, "size": 5}],
    }).encode()  # fmt: skip
    registry = Registry()
    registry.tag("1", body)
    registry.manifests["header"] = body

    def bad_header(method: str, path: str, headers: dict[str, str]) -> Answer | None:
        if path.endswith("/manifests/header"):  # a digest header that is a path
            return 200, {"Docker-Content-Digest": bad, "Content-Type": MANIFEST}, body
        return None

    registry.extra = bad_header
    before = files_under(tmp_path)
    with serve(registry) as server:
        host = f"127.0.0.1:{server.port}/evil/app"
        target = tmp_path / "target"
        for argv in (
            ("copy", f"{host}:1", f"oci:{tmp_path / 'out'}", "--insecure"),
            ("pull", f"{host}:1", str(target), "--insecure"),
            ("inspect", f"{host}:1", "--insecure"),
            ("copy", f"{host}:header", f"oci:{tmp_path / 'out'}", "--insecure"),
        ):
            err = one_line(syntra(tmp_path, *argv), 4)
            assert "is not a digest" in err, (argv, err)
        assert not any(".." in seen.path for seen in server.seen)  # never a URL either
    assert files_under(tmp_path) == before  # no folder made outside, nor inside


WASM = b"\0asm\1\0\0\0"


def _titled(title: str, data: bytes = WASM, media: str = "application/wasm") -> Registry:
    registry = Registry()
    titled = {"org.opencontainers.image.title": title}
    registry.tag("1", manifest([data], media=media, annotations=titled))
    registry.blobs[digest(data)] = lambda: data
    return registry


@pytest.mark.parametrize(
    ("title", "data"),
    [
        ("../../../escaped.wasm", WASM),
        ("..", WASM),
        ("/tmp/escaped.wasm", WASM),
        ("sub/app.wasm", WASM),  # no separators
        (".git/config", b"[core]\n\tfsmonitor = touch PWNED\n"),
        (".hidden.wasm", WASM),
        ("dodo.py", b"import os; os.system('touch PWNED')\n"),  # not a .wasm name
        ("app.wasm", b"import os; os.system('touch PWNED')\n"),  # named wasm, is not
    ],
)
def test_pull_writes_only_a_checked_title_inside_its_folder(
    tmp_path: Path, syntra: Syntra, title: str, data: bytes
) -> None:
    before = files_under(tmp_path)
    with serve(_titled(title, data)) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        err = one_line(syntra(tmp_path, "pull", ref, "--insecure"), 4)
    assert "is not a file name here" in err or "not wasm" in err or "as its name says" in err
    assert files_under(tmp_path) == before  # nothing written, not even the folder


def test_pull_writes_into_a_new_folder_never_over_a_file(tmp_path: Path, syntra: Syntra) -> None:
    with serve(_titled("app.wasm")) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        done = syntra(tmp_path, "pull", ref, "--insecure")
        assert done.code == 0, done.err
        assert (tmp_path / "app" / "app.wasm").read_bytes() == WASM  # not ./app.wasm
        assert "nothing was verified" in done.err  # no trust: written, and said so
        (tmp_path / "app" / "app.wasm").write_bytes(b"mine")
        err = one_line(syntra(tmp_path, "pull", ref, "--insecure"), 3)
        assert "already there; --force" in err, err
        assert (tmp_path / "app" / "app.wasm").read_bytes() == b"mine"
        done = syntra(tmp_path, "pull", ref, "--insecure", "--force", "--json")
        assert done.code == 0, done.err
        assert json.loads(done.out)["verified"] is None
    assert (tmp_path / "app" / "app.wasm").read_bytes() == WASM


def test_pull_with_a_key_refuses_an_unsigned_artifact(tmp_path: Path, syntra: Syntra) -> None:
    from tests.support.signing import cosign

    made = cosign("generate-key-pair", "--output-key-prefix", str(tmp_path / "k"))
    assert made.returncode == 0, made.stderr
    before = files_under(tmp_path)
    with serve(_titled("app.wasm")) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        err = one_line(
            syntra(tmp_path, "pull", ref, "--insecure", "--key", str(tmp_path / "k.pub")), 1
        )
        assert "no valid signature" in err and "nothing was written" in err, err
        assert not any("/blobs/" in seen.path for seen in server.seen)  # nothing fetched
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("size", [10**400, 2 << 30])
def test_a_blob_declaring_more_than_an_artifact_may_weigh_is_never_asked_for(
    tmp_path: Path, syntra: Syntra, size: int
) -> None:
    """A declared size past MAX_ARTIFACT (one too large for a float, one of 2 GiB) is
    refused from the descriptor: no deadline stretched by it, no request, no file."""
    huge_digest = "sha256:" + "ab" * 32
    titled = {"org.opencontainers.image.title": "app.wasm"}
    image = json.loads(manifest([WASM], media="application/wasm", annotations=titled))
    image["layers"][0].update(digest=huge_digest, size=size)
    registry = Registry()
    registry.tag("1", json.dumps(image).encode())
    registry.blobs[huge_digest] = _endless
    before = files_under(tmp_path)
    with serve(registry) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        err = one_line(syntra(tmp_path, "pull", ref, "--insecure"), 4)
        assert "declares more than the 1024 MiB a blob may weigh" in err, err
        assert not any("/blobs/" in seen.path for seen in server.seen)
    assert files_under(tmp_path) == before


@pytest.mark.parametrize(
    "title", [".git/config", ".github/workflows/x.yml", "../x.js", "a/.syntra/x.js"]
)
def test_a_web_bundle_title_that_is_hidden_or_climbs_is_refused(
    tmp_path: Path, syntra: Syntra, title: str
) -> None:
    data = b"[core]\n\tfsmonitor = touch PWNED\n"
    config = b"{}"
    body = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "artifactType": "application/vnd.syntra.web-bundle.v1+json",
        "config": descriptor(config, "application/vnd.oci.empty.v1+json"),
        "layers": [descriptor(data, "application/octet-stream",
                              annotations={"org.opencontainers.image.title": title})],
    }).encode()  # fmt: skip
    registry = Registry()
    registry.tag("1", body)
    registry.blobs[digest(data)] = lambda: data
    before = files_under(tmp_path)
    with serve(registry) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        err = one_line(syntra(tmp_path, "pull", ref, "--web", "--insecure"), 4)
    assert "is not a file name here" in err, err
    assert files_under(tmp_path) == before


def test_a_manifest_larger_than_4_mib_is_refused(tmp_path: Path, syntra: Syntra) -> None:
    huge = b'{"schemaVersion":2,"layers":[],"pad":"' + b"x" * (5 << 20) + b'"}'

    def endless() -> Iterator[bytes]:
        while True:
            yield b" " * 65536

    def answer(method: str, path: str, headers: dict[str, str]) -> Answer:
        if path.endswith("/declared"):
            return 200, {"Content-Type": MANIFEST}, huge
        return 200, {"Content-Type": MANIFEST}, endless()

    with serve(answer) as server:
        for tag in ("declared", "streamed"):
            ref = f"127.0.0.1:{server.port}/evil/app@{digest(huge)}"
            ref = ref if tag == "declared" else f"127.0.0.1:{server.port}/evil/app:streamed"
            err = one_line(syntra(tmp_path, "inspect", ref, "--insecure"), 4)
            assert "larger than 4 MiB" in err, err


def test_a_blob_streaming_past_its_declared_size_is_cut_off(
    tmp_path: Path, syntra: Syntra, monkeypatch: pytest.MonkeyPatch
) -> None:
    declared = b"\0asm" + b"\1" * 60

    def endless() -> Iterator[bytes]:
        while True:
            yield b"A" * 65536

    registry = Registry()
    registry.tag("1", manifest([declared], media="application/wasm"))
    registry.blobs[digest(declared)] = endless
    config = b'{"architecture":"amd64","os":"linux"}'
    registry.blobs[digest(config)] = lambda: config
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    with serve(registry) as server:
        host = f"127.0.0.1:{server.port}/evil/app"
        target = tmp_path / "target"
        err = one_line(syntra(tmp_path, "pull", f"{host}:1", str(target), "--insecure"), 4)
        assert f"more than the declared {len(declared)} bytes" in err, err
        err = one_line(syntra(tmp_path, "copy", f"{host}:1", f"oci:{tmp_path / 'out'}",
                              "--insecure"), 4)  # fmt: skip
        assert f"more than the declared {len(declared)} bytes" in err, err
        assert server.sent < 64 << 20  # it stopped reading
    assert not files_under(scratch) and not files_under(target)  # no partial file left


def test_a_deeply_nested_index_is_one_line(tmp_path: Path, syntra: Syntra) -> None:
    registry = Registry()
    child = manifest([b"layer"])
    registry.tag("leaf", child)
    previous = descriptor(child, MANIFEST)
    for _ in range(3000):
        body = index([previous])
        registry.manifests[digest(body)] = body
        previous = descriptor(body, INDEX)
    registry.tag("deep", body)
    nested = b'{"a":' * 100_000 + b"1" + b"}" * 100_000  # past the JSON parser's depth
    registry.tag("nested", nested)
    wide = index([descriptor(child, MANIFEST)] * 2000)
    registry.tag("wide", wide)
    with serve(registry) as server:
        host = f"127.0.0.1:{server.port}/evil/app"
        err = one_line(syntra(tmp_path, "copy", f"{host}:deep", f"oci:{tmp_path / 'o'}",
                              "--insecure"), 4)  # fmt: skip
        assert "nests indexes more than 8 deep" in err, err
        assert len(server.seen) < 40  # stopped at the limit, not after 3,000 fetches
        assert "no JSON manifest" in one_line(
            syntra(tmp_path, "inspect", f"{host}:nested", "--insecure"), 4
        )
        assert "more than 1024" in one_line(
            syntra(tmp_path, "inspect", f"{host}:wide", "--insecure"), 4
        )


def test_inspect_fetches_each_distinct_child_once(tmp_path: Path, syntra: Syntra) -> None:
    registry = Registry()
    config = b'{"architecture":"amd64","os":"linux","created":"2024-01-01T00:00:00Z"}'
    child = manifest([b"layer"], config)
    registry.tag("child", child)
    registry.blobs[digest(config)] = lambda: config
    platform = {"os": "linux", "architecture": "amd64"}
    registry.tag("1", index([descriptor(child, MANIFEST, platform=platform)] * 200))
    with serve(registry) as server:
        done = syntra(tmp_path, "inspect", f"127.0.0.1:{server.port}/evil/app:1", "--insecure",
                      "--json")  # fmt: skip
        assert done.code == 0, done.err
        assert len(json.loads(done.out)["platforms"]) == 200
        child_gets = [s for s in server.seen if s.path.endswith(f"/manifests/{digest(child)}")]
        config_gets = [s for s in server.seen if s.path.endswith(f"/blobs/{digest(config)}")]
        assert (len(child_gets), len(config_gets)) == (1, 1)


def test_a_large_blob_the_registry_has_is_not_sent_again(tmp_path: Path, syntra: Syntra) -> None:
    """HEAD answers carry the blob's length, not a body: no 4 MiB cap applies."""
    layer = os.urandom(5 << 20)
    write_layout(tmp_path / "layout", [layer])

    def present(method: str, path: str, headers: dict[str, str]) -> Answer | None:
        if method == "HEAD" and "/blobs/" in path:
            return 200, {"Docker-Content-Digest": path.rsplit("/", 1)[1]}, layer
        if method == "PUT" and "/manifests/" in path:
            return 201, {}, b""
        return None

    with serve(Registry(extra=present)) as server:
        done = syntra(tmp_path, "copy", f"oci:{tmp_path / 'layout'}",
                      f"127.0.0.1:{server.port}/evil/app:1", "--insecure")  # fmt: skip
        assert done.code == 0, done.err
        assert not [s for s in server.seen if s.method in ("POST", "PATCH")]


def test_a_tag_list_that_loops_is_refused(tmp_path: Path, syntra: Syntra) -> None:
    def answer(method: str, path: str, headers: dict[str, str]) -> Answer:
        page = int(path.split("page=")[1]) if "page=" in path else 0
        repository = path.split("/tags/")[0]
        # renewing: new tags and a next page, forever; else the same tags from a new link
        tags = [f"t{page}"] if "renewing" in path else ["a", "b"]
        link = f'<{repository}/tags/list?page={page + 1}>; rel="next"'
        body = json.dumps({"name": "x", "tags": tags}).encode()
        return 200, {"Content-Type": "application/json", "Link": link}, body

    with serve(answer) as server:
        same = syntra(tmp_path, "tags", f"127.0.0.1:{server.port}/evil/same", "--insecure")
        assert "a next page after one of no new tags" in one_line(same, 4)
        assert len(server.seen) == 2
        renewing = syntra(tmp_path, "tags", f"127.0.0.1:{server.port}/evil/renewing",
                          "--insecure")  # fmt: skip
        assert "runs past 1000 pages" in one_line(renewing, 4)


def _bundle(files: dict[str, tuple[bytes, str]]) -> Registry:
    """A web bundle: each title's data, with its media type."""
    config = b"{}"
    body = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "artifactType": "application/vnd.syntra.web-bundle.v1+json",
        "config": descriptor(config, "application/vnd.oci.empty.v1+json"),
        "layers": [descriptor(data, media, annotations={"org.opencontainers.image.title": title})
                   for title, (data, media) in files.items()],
    }).encode()  # fmt: skip
    registry = Registry()
    registry.tag("1", body)
    for data, _ in files.values():
        registry.blobs[digest(data)] = lambda data=data: data  # type: ignore[misc]
    return registry


def test_pull_web_never_writes_through_a_linked_folder(tmp_path: Path, syntra: Syntra) -> None:
    (tmp_path / "outside").mkdir()
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "assets").symlink_to("../outside")
    registry = _bundle({"assets/app.js": (b"alert(1)\n", "text/javascript")})
    with serve(registry) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        site = str(tmp_path / "site")
        for force in ((), ("--force",)):
            err = one_line(syntra(tmp_path, "pull", ref, site, "--web", "--insecure", *force), 3)
            assert "assets: a symbolic link; pull writes only inside" in err, err
        assert not any("/blobs/" in seen.path for seen in server.seen)
    assert not any((tmp_path / "outside").iterdir())


def test_pull_never_writes_through_a_link_planted_as_its_temporary_file(
    tmp_path: Path, syntra: Syntra
) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "victim").write_bytes(b"mine")
    for planted in (".app.wasm.part", ".app.wasm.tmp"):
        (tmp_path / "app" / planted).symlink_to("../victim")
    with serve(_titled("app.wasm")) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        done = syntra(tmp_path, "pull", ref, str(tmp_path / "app"), "--insecure")
        assert done.code == 0, done.err
    assert (tmp_path / "victim").read_bytes() == b"mine"
    written = tmp_path / "app" / "app.wasm"
    assert not written.is_symlink() and written.read_bytes() == WASM


@pytest.mark.parametrize("title", ["conftest.py", "Makefile", "x.pth", "sitecustomize.py"])
def test_a_web_bundle_file_of_a_type_a_bundle_never_holds_is_refused(
    tmp_path: Path, syntra: Syntra, title: str
) -> None:
    registry = _bundle({
        "app.js": (b"alert(1)\n", "text/javascript"),
        title: (b"import os; os.system('touch PWNED')\n", "application/octet-stream"),
    })  # fmt: skip
    before = files_under(tmp_path)
    with serve(registry) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        err = one_line(syntra(tmp_path, "pull", ref, "--web", "--insecure"), 4)
        assert f"'{title}' is not a file name here (its suffix must be one of .wasm" in err, err
        assert not any("/blobs/" in seen.path for seen in server.seen)
    assert files_under(tmp_path) == before


def test_a_web_bundle_of_every_file_type_syntra_writes_is_pulled(
    tmp_path: Path, syntra: Syntra
) -> None:
    files = {
        "guest.wasm": (WASM, "application/wasm"),
        "guest.js": (b"export {}\n", "text/javascript"),
        "guest.d.ts": (b"export {};\n", "application/typescript"),
        "index.html": (b"<!doctype html>\n", "text/html"),
        "interfaces/x.json": (b"{}", "application/json"),
    }
    with serve(_bundle(files)) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        done = syntra(tmp_path, "pull", ref, "--web", "--insecure")
        assert done.code == 0, done.err
    for title, (data, _) in files.items():
        assert (tmp_path / "app" / title).read_bytes() == data


@pytest.mark.parametrize("web", [False, True])
def test_a_default_folder_already_there_is_used_only_with_force(
    tmp_path: Path, syntra: Syntra, web: bool
) -> None:
    """The registry names the default folder: one already there (a checkout's `src`,
    `tests`) is not written into unless asked."""
    (tmp_path / "app").mkdir()
    registry = (
        _bundle({"app.js": (b"alert(1)\n", "text/javascript")}) if web else _titled("app.wasm")
    )
    kind = ("--web",) if web else ()
    with serve(registry) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        err = one_line(syntra(tmp_path, "pull", ref, "--insecure", *kind), 3)
        assert err == "app: already there; --force writes into it, or name the folder\n", err
        assert not any("/blobs/" in seen.path for seen in server.seen)
        assert not any((tmp_path / "app").iterdir())
        done = syntra(tmp_path, "pull", ref, "--insecure", "--force", *kind)
        assert done.code == 0, done.err
    assert (tmp_path / "app" / ("app.js" if web else "app.wasm")).is_file()


def _endless() -> Iterator[bytes]:
    while True:
        yield b"{" * 65536


@pytest.mark.parametrize("kind", ["config", "signature", "attestation"])
def test_a_declared_size_past_its_bound_is_refused_before_reading(
    tmp_path: Path, syntra: Syntra, kind: str
) -> None:
    """A config, signature or attestation declaring 600 MiB: refused from the descriptor
    (4 MiB for JSON documents, 64 MiB for an attestation, which can carry an SBOM), the
    blob never asked for (memory stays flat whatever the limit)."""
    huge_digest = "sha256:" + "ab" * 32
    huge = {"mediaType": CONFIG, "digest": huge_digest, "size": 600 << 20}
    image = json.loads(manifest([b"layer"]))
    if kind == "config":
        image["config"] = huge
    registry = Registry()
    top = registry.tag("1", json.dumps(image).encode())
    attached = json.loads(manifest([]))
    attached["layers"] = [{**huge, "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json"}]
    suffix = "sig" if kind == "signature" else "att"
    registry.manifests[f"sha256-{top[7:]}.{suffix}"] = json.dumps(attached).encode()
    registry.blobs[huge_digest] = _endless
    config = b'{"architecture":"amd64","os":"linux"}'
    registry.blobs[digest(config)] = lambda: config
    with serve(registry) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        command = ("inspect", ref) if kind == "config" else ("tree", ref)
        err = one_line(syntra(tmp_path, *command, "--insecure"), 4)
        bound = "64 MiB" if kind == "attestation" else "4 MiB"
        assert f"declares {600 << 20} bytes, more than the {bound}" in err, err
        assert not any(huge_digest in seen.path for seen in server.seen)
        assert server.sent == 0


def test_a_tag_list_is_bounded_in_total_not_only_in_pages(tmp_path: Path, syntra: Syntra) -> None:
    """Pages of 4 MiB each, far under the page cap: refused once the total passes its bound."""

    def answer(method: str, path: str, headers: dict[str, str]) -> Answer:
        page = int(path.split("page=")[1]) if "page=" in path else 0
        tags = [f"p{page}-{n:06d}-" + "x" * 110 for n in range(30000)]
        link = f'</v2/evil/app/tags/list?page={page + 1}>; rel="next"'
        body = json.dumps({"name": "evil/app", "tags": tags}).encode()
        return 200, {"Content-Type": "application/json", "Link": link}, body

    with serve(answer) as server:
        err = one_line(
            syntra(tmp_path, "tags", f"127.0.0.1:{server.port}/evil/app", "--insecure"), 4
        )
        assert "more than 100000 tags" in err or "larger than 16 MiB" in err, err
        assert len(server.seen) <= 5


class _Trickling(BaseHTTPRequestHandler):
    """An answer a byte at a time, each read well inside the socket timeout: in its
    headers, or (with a Content-Length) in its body."""

    protocol_version = "HTTP/1.1"
    in_headers = False

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
        if not self.in_headers:
            self.wfile.write(f"Content-Type: {MANIFEST}\r\nContent-Length: 9999\r\n\r\n".encode())
        try:
            for _ in range(1000):
                self.wfile.write(b"X-Slow: 1\r\n" if self.in_headers else b" ")
                self.wfile.flush()
                time.sleep(0.5)
        except OSError:
            pass

    do_HEAD = do_GET


@pytest.mark.parametrize("where", ["body", "headers"])
def test_a_trickling_answer_ends_at_the_deadline(
    tmp_path: Path, syntra: Syntra, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    """The overall deadline (connect, headers and whole body) cuts a trickle off, in one
    line, however steadily it sends."""
    handler = type("Handler", (_Trickling,), {"in_headers": where == "headers"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SYNTRA_REGISTRY_DEADLINE", "2")
    try:
        started = time.monotonic()
        ref = f"127.0.0.1:{server.server_address[1]}/evil/app:1"
        err = one_line(syntra(tmp_path, "inspect", ref, "--insecure"), 4)
        assert "no whole answer within 2 s" in err, err
        assert time.monotonic() - started < 15
    finally:
        server.shutdown()
        server.server_close()


def test_terminal_escapes_from_a_registry_are_shown_inert(tmp_path: Path, syntra: Syntra) -> None:
    """ESC/OSC sequences and line breaks in labels, annotations and tags: escaped in human
    output (no control character reaches the terminal, no forged line), exact in --json."""
    hostile = "\x1b[2J\x1b]0;owned\x07\nverified: OK\r"
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Labels": {"evil": hostile}}}).encode()  # fmt: skip
    image = json.loads(manifest([b"layer"], config))
    image["annotations"] = {"note": hostile}
    registry = Registry()
    registry.tag("1", json.dumps(image).encode())
    registry.blobs[digest(config)] = lambda: config

    def tags(method: str, path: str, headers: dict[str, str]) -> Answer | None:
        if path.split("?")[0].endswith("/tags/list"):
            body = json.dumps({"name": "evil/app", "tags": ["1", hostile]}).encode()
            return 200, {"Content-Type": "application/json"}, body
        return None

    registry.extra = tags
    with serve(registry) as server:
        ref = f"127.0.0.1:{server.port}/evil/app:1"
        for argv in (("inspect", ref), ("tags", f"127.0.0.1:{server.port}/evil/app")):
            shown = syntra(tmp_path, *argv, "--insecure")
            assert shown.code == 0, shown.err
            assert not any(c in shown.out for c in "\x1b\x07\r"), shown.out
            assert "\nverified: OK" not in shown.out and "\\x1b[2J" in shown.out
        exact = syntra(tmp_path, "inspect", ref, "--insecure", "--json")
        assert json.loads(exact.out)["labels"]["evil"] == hostile
        listed = syntra(
            tmp_path, "tags", f"127.0.0.1:{server.port}/evil/app", "--insecure", "--json"
        )
        assert hostile in json.loads(listed.out)


# Credentials stay with their registry ------------------------------------------------------


def test_the_login_never_reaches_another_host(tmp_path: Path, syntra: Syntra) -> None:
    """An upload `Location` and a blob redirect on another host (`localhost` against
    `127.0.0.1`): the other host gets no Authorization; the registry does."""

    def elsewhere(method: str, path: str, headers: dict[str, str]) -> Answer:
        return (201, {}, b"") if method == "PUT" else (200, {}, b"layer")

    with serve(elsewhere) as foreign:
        other = f"http://localhost:{foreign.port}"
        registry = Registry(login=True)

        def extra(method: str, path: str, headers: dict[str, str]) -> Answer | None:
            if "authorization" not in headers:
                return None  # a challenge first: the client then holds the login
            if method == "POST" and "/blobs/uploads/" in path:
                return 202, {"Location": f"{other}/upload/1"}, b""
            if method == "HEAD" and "/blobs/" in path:
                return 404, {}, b""
            if method == "PUT" and "/manifests/" in path:
                return 201, {}, b""
            if method == "GET" and path.endswith(f"/blobs/{digest(b'layer')}"):
                return 307, {"Location": f"{other}/blob"}, b""
            return None

        registry.extra = extra
        body = write_layout(tmp_path / "layout", [b"layer"])
        registry.tag("1", body)
        registry.blobs[digest(b'{"architecture":"amd64","os":"linux"}')] = lambda: (
            b'{"architecture":"amd64","os":"linux"}'
        )
        with serve(registry) as server:
            store_login(tmp_path, server.port)
            host = f"127.0.0.1:{server.port}/evil/app"
            pushed = syntra(tmp_path, "copy", f"oci:{tmp_path / 'layout'}", f"{host}:2",
                            "--insecure")  # fmt: skip
            pulled = syntra(tmp_path, "copy", f"{host}:1", f"oci:{tmp_path / 'out'}",
                            "--insecure")  # fmt: skip
            assert any("authorization" in s.headers for s in server.seen)
    assert pushed.code == 0 and pulled.code == 0, (pushed.err, pulled.err)
    assert {s.method for s in foreign.seen} == {"PUT", "GET"}
    assert not [s for s in foreign.seen if "authorization" in s.headers]


def test_basic_credentials_go_to_a_token_realm_elsewhere_only_over_https(
    tmp_path: Path, syntra: Syntra
) -> None:
    with serve(lambda m, p, h: (200, {"Content-Type": "application/json"},
                                b'{"token":"t"}')) as realm:  # fmt: skip
        challenge = f'Bearer realm="http://localhost:{realm.port}/token",service="evil"'
        with serve(lambda m, p, h: (401, {"WWW-Authenticate": challenge}, b"")) as server:
            store_login(tmp_path, server.port)
            done = syntra(tmp_path, "inspect", f"127.0.0.1:{server.port}/evil/app:1",
                          "--insecure")  # fmt: skip
    err = one_line(done, 4)
    assert "another host over plain HTTP; the login is not sent there" in err
    assert not [s for s in realm.seen if "authorization" in s.headers]


def test_registry_error_text_never_shows_the_password(tmp_path: Path, syntra: Syntra) -> None:
    encoded = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    message = f"denied: {USER}:{PASSWORD} is not allowed ({encoded}) " + "x" * 280 + PASSWORD
    registry = Registry(login=True)
    registry.extra = lambda method, path, headers: (
        (403, {"Content-Type": "application/json"},
         json.dumps({"errors": [{"code": "DENIED", "message": message}]}).encode())
        if headers.get("authorization") else None
    )  # fmt: skip
    with serve(registry) as server:
        store_login(tmp_path, server.port)
        plain = Registry(login=True)
        plain.extra = lambda method, path, headers: (
            (500, {"Content-Type": "text/plain"}, f"boom {PASSWORD} {encoded}".encode())
            if headers.get("authorization") else None
        )  # fmt: skip
        named = f"evil/app@{digest(b'anything')}"  # a GET, whose error has a body
        denied = syntra(tmp_path, "inspect", f"127.0.0.1:{server.port}/{named}", "--insecure")
        with serve(plain) as failing:
            store_login(tmp_path, failing.port)
            failed = syntra(tmp_path, "inspect", f"127.0.0.1:{failing.port}/{named}",
                            "--insecure")  # fmt: skip
    for result in (one_line(denied, 4), one_line(failed, 4)):
        assert "***" in result, result
        for secret in (PASSWORD, encoded, PASSWORD[:12], encoded[:12]):
            assert secret not in result, result


# Partial files on SIGTERM -------------------------------------------------------------------


def test_sigterm_during_a_download_leaves_no_partial_file(tmp_path: Path) -> None:
    declared = b"\0asm" + b"\1" * (64 << 20)

    def slow() -> Iterator[bytes]:
        for start in range(0, len(declared), 65536):
            yield declared[start : start + 65536]
            time.sleep(0.02)

    registry = Registry()
    registry.tag("1", manifest([declared], media="application/wasm"))
    registry.blobs[digest(declared)] = slow
    scratch, target = tmp_path / "tmp", tmp_path / "target"
    scratch.mkdir()
    with serve(registry) as server:
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "TMPDIR": str(scratch)}
        running = subprocess.Popen(
            [PYTHON, "-m", "syntra", "pull", f"127.0.0.1:{server.port}/evil/app:1", str(target),
             "--insecure"], env=env, cwd=tmp_path, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while server.sent < (1 << 20) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.sent >= 1 << 20 and files_under(scratch)  # mid-download
        running.send_signal(signal.SIGTERM)
        _, err = running.communicate(timeout=30)
    assert running.returncode == 143, err
    assert "Traceback" not in err
    assert not files_under(scratch) and not files_under(target)


@pytest.mark.parametrize(
    ("name", "inside"),
    [
        ("a/b", "a/b"),
        ("./a//b/", "a/b"),
        ("/etc/passwd", None),
        ("a/../../b", None),
        ("..", None),
        ("a\\..\\b", None),
        ("a\nb", None),
        ("", None),
        ("/".join(["d"] * 33), None),
    ],
)
def test_one_check_confines_every_outside_name(name: str, inside: str | None) -> None:
    """Archive members, layer titles and plugin manifest entries become paths only
    through `fsutil.confined`."""
    from syntra.fsutil import confined

    assert confined(name) == inside


def test_a_plugin_manifest_naming_a_folder_is_refused(tmp_path: Path) -> None:
    from syntra.errors import SyntraError
    from syntra.plugins import load_manifest

    (tmp_path / "plugins.json").write_text(
        json.dumps({"plugins": [{"name": "up", "file": "..", "sha256": "0" * 64}]})
    )
    with pytest.raises(SyntraError, match=r"'\.\.' is not a file name"):
        load_manifest(tmp_path / "plugins.json")


def test_a_v128_signature_is_refused_not_an_abort(tmp_path: Path) -> None:
    """Naming a v128 aborts the process inside wasmtime's C API: a module whose exports
    take or return one is refused from its bytes before any type of it is read."""
    import wasmtime

    from syntra.errors import SyntraError
    from syntra.plugins.sandbox import open_runtime

    wasm = tmp_path / "simd.wasm"
    wasm.write_bytes(
        wasmtime.wat2wasm(
            '(module (func (export "splat") (param i32) (result v128) v128.const i64x2 0 0))'
        )
    )
    limits = {"max_mem": 1 << 20, "max_ms": 500, "fuel": None}
    for runtime in ("wasmtime", "wasm3"):
        with pytest.raises(SyntraError, match=r"cannot be called here: .*v128"):
            open_runtime(runtime, "simd", wasm, limits, tmp_path / "cache")


# Review findings: crafted input of every shape ends in one line ---------------------------


def _docker_archive(path: Path) -> Path:
    layer_buffer = io.BytesIO()
    with tarfile.open(fileobj=layer_buffer, mode="w", format=tarfile.PAX_FORMAT) as layer_tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        layer_tar.addfile(info, io.BytesIO(b"hello\n"))
    layer = layer_buffer.getvalue()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [digest(layer)]},
    }).encode()  # fmt: skip
    entry = {"Config": "config.json", "RepoTags": [], "Layers": ["layer.tar"]}
    return write_tar(path, [
        Member("manifest.json", json.dumps([entry]).encode()),
        Member("config.json", config), Member("layer.tar", layer),
    ])  # fmt: skip


def test_a_docker_archive_copies_to_a_registry(
    tmp_path: Path, syntra: Syntra, registry: str
) -> None:
    """Its manifest is Docker's schema 2 and is sent (and kept in a layout) as one."""
    archive = _docker_archive(tmp_path / "d.tar")
    reference = f"{registry}/untrusted/docker-archive:1"
    done = syntra(tmp_path, "copy", f"docker-archive:{archive}", reference, "--insecure")
    assert done.code == 0, done.err
    seen = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{reference}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(seen.stdout)["mediaType"] == (
        "application/vnd.docker.distribution.manifest.v2+json"
    )
    inspected = subprocess.run(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{reference}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(inspected.stdout)["Architecture"] == "amd64"
    out = tmp_path / "layout"
    assert syntra(tmp_path, "copy", f"docker-archive:{archive}", f"oci:{out}").code == 0
    (entry,) = json.loads((out / "index.json").read_text())["manifests"]
    assert entry["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"


class _Signed:
    """Attachments whose layers are what a test gives."""

    def __init__(self, layers: list[tuple[dict[str, Any], bytes]]) -> None:
        self.given = layers

    def layers(self, digest: str, suffix: str) -> list[tuple[dict[str, Any], bytes]]:
        return self.given


HOSTILE_PAYLOADS = [b"[1]", b'{"critical":"s"}', b'{"critical":{"image":[]}}', b"[" * 100000]


@pytest.mark.parametrize("payload", HOSTILE_PAYLOADS)
def test_a_hostile_signature_layer_is_a_malformed_one(payload: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from syntra.supply.attach import SIGNATURE_ANNOTATION, SIMPLE_SIGNING
    from syntra.supply.verify import _signed

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    signature = base64.b64encode(b"x").decode()
    layer = {"mediaType": SIMPLE_SIGNING, "annotations": {SIGNATURE_ANNOTATION: signature}}
    problems: list[str] = []
    assert not _signed(_Signed([(layer, payload)]), digest(b"x"), key, problems)  # type: ignore[arg-type]
    assert problems == ["a malformed signature layer"]


def _dsse(envelope: Any) -> bytes:
    return json.dumps(envelope).encode()


@pytest.mark.parametrize(
    "blob",
    [
        _dsse([1]),
        _dsse({"payload": 5, "signatures": []}),
        _dsse({"payload": "e30=", "signatures": ["x"]}),
        _dsse({"payload": "e30=", "signatures": [{"sig": 5}]}),
        _dsse({"payload": base64.b64encode(b"[1]").decode(), "signatures": []}),
        _dsse({"payload": base64.b64encode(b"[" * 100000).decode(), "signatures": []}),
        b"[" * 100000,
    ],
)
def test_a_hostile_attestation_is_a_malformed_one(blob: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from syntra.supply.attach import DSSE
    from syntra.supply.verify import _statements

    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    problems: list[str] = []
    found = _statements(_Signed([({"mediaType": DSSE}, blob)]), digest(b"x"), key, problems)  # type: ignore[arg-type]
    assert found == [] and problems == ["a malformed attestation"]


def test_a_statement_that_is_not_an_object_is_about_nothing() -> None:
    from syntra.supply.verify import _about

    assert not _about([1], digest(b"x"))
    assert not _about("s", digest(b"x"))


@pytest.mark.parametrize("shape", [{"annotations": "x"}, {"annotations": [1]}, {"platform": "x"}])
def test_a_descriptor_with_annotations_or_platform_not_an_object_is_malformed(
    tmp_path: Path, syntra: Syntra, shape: dict[str, Any]
) -> None:
    from syntra.oci import Document
    from syntra.oci.media import MalformedContent

    child = descriptor(manifest([b"layer"]), MANIFEST, **shape)
    with pytest.raises(MalformedContent, match="malformed descriptors"):
        Document(index([child]), INDEX).children()
    root = tmp_path / "layout"
    write_layout(root, [b"layer"], top=child)
    err = one_line(syntra(tmp_path, "copy", f"oci:{root}:1", f"oci:{tmp_path / 'out'}"), 3)
    assert "not an OCI image layout" in err and "malformed descriptors" in err, err


def test_verify_reads_an_index_through_its_checked_descriptors() -> None:
    from types import SimpleNamespace

    from syntra.oci import Document
    from syntra.oci.media import MalformedContent
    from syntra.supply.verify import Policy, verify

    body = index(["x"])  # type: ignore[list-item]
    found = SimpleNamespace(find_manifest=lambda path, reference: Document(body, INDEX))
    where = SimpleNamespace(registry=found, path="evil/app", identity="127.0.0.1:1/evil/app")

    class NoTrust:
        signer = "nobody"

        def examine(self, *_: Any) -> tuple[bool, set[str]]:
            return False, set()

    with pytest.raises(MalformedContent, match="malformed descriptors"):
        verify("app", where, digest(body), Policy(NoTrust()))  # type: ignore[arg-type]


def test_a_referrers_fallback_of_hostile_entries_is_one_line() -> None:
    from types import SimpleNamespace

    from syntra.oci import Document
    from syntra.oci.media import MalformedContent
    from syntra.supply.attach import Attachments

    body = index([{"digest": "sha256:" + "0" * 64, "size": "big"}])
    registry = SimpleNamespace(
        find_manifest=lambda path, reference: Document(body, INDEX),
        referrers=lambda path, digest: None,
    )
    with pytest.raises(MalformedContent, match="malformed descriptors"):
        Attachments(registry, "evil/app").referrers(digest(b"x"))  # type: ignore[arg-type]


def test_a_docker_archive_of_an_index_of_indexes_is_one_line(
    tmp_path: Path, syntra: Syntra
) -> None:
    """The platform chosen is itself an index: no image to save, and no KeyError."""
    root = tmp_path / "layout"
    image = write_layout(root, [b"layer"])
    inner = index([descriptor(image, MANIFEST)])
    outer = index([descriptor(inner, INDEX, platform={"os": "linux", "architecture": "amd64"})])
    for body in (inner, outer):
        (root / "blobs" / "sha256" / digest(body).split(":")[1]).write_bytes(body)
    entry = descriptor(outer, INDEX, annotations={"org.opencontainers.image.ref.name": "1"})
    (root / "index.json").write_text(index([entry]).decode())
    result = syntra(tmp_path, "copy", f"oci:{root}:1", f"docker-archive:{tmp_path / 'd.tar'}",
                    "--platform", "linux/amd64")  # fmt: skip
    assert result.code != 0 and "is an index" in result.err, result.err
    one_line(result, result.code)


def test_hostile_json_answers_are_one_line(tmp_path: Path, syntra: Syntra) -> None:
    """A tag list nested past the parser's depth, an error body whose `errors` is not a
    list, a token answer nested past the parser's depth."""
    deep = b"[" * 100000

    def answer(method: str, path: str, headers: dict[str, str]) -> Answer:
        if "/tags/list" in path:
            return 200, {"Content-Type": "application/json"}, deep
        if path.startswith("/token"):
            return 200, {"Content-Type": "application/json"}, deep
        if "/tokened/" in path:
            realm = f'Bearer realm="http://{headers["host"]}/token",service="evil"'
            return 401, {"WWW-Authenticate": realm}, b""
        return 400, {"Content-Type": "application/json"}, b'{"errors":{"code":"X"}}'

    with serve(answer) as server:
        host = f"127.0.0.1:{server.port}"
        tags = one_line(syntra(tmp_path, "tags", f"{host}/evil/app", "--insecure"), 4)
        assert "no JSON object" in tags, tags
        errors = one_line(syntra(tmp_path, "inspect", f"{host}/evil/app:1", "--insecure"), 4)
        assert "400" in errors or "errors" in errors, errors
        token = one_line(syntra(tmp_path, "inspect", f"{host}/tokened/app:1", "--insecure"), 4)
        assert "without a token" in token, token


def test_a_sparse_archive_member_is_refused(tmp_path: Path, syntra: Syntra) -> None:
    archive = tmp_path / "sparse.tar"
    with tarfile.open(archive, "w", format=tarfile.GNU_FORMAT) as out:
        info = tarfile.TarInfo("index.json")
        info.type = tarfile.GNUTYPE_SPARSE
        info.size = 0
        out.addfile(info)
    err = one_line(syntra(tmp_path, "copy", f"oci-archive:{archive}", f"oci:{tmp_path / 'o'}"), 3)
    assert "is sparse" in err, err


def test_a_web_bundle_record_holds_a_digest() -> None:
    from pydantic import ValidationError

    from syntra.records import WebBundle

    with pytest.raises(ValidationError):
        WebBundle(digest="../../evil", size=1, files=[])
    assert WebBundle(digest=digest(b"x"), size=1, files=[]).digest == digest(b"x")


def test_an_index_of_1024_entries_is_hashed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import syntra.oci.media as media

    hashed: list[bytes] = []
    real = media.digest_of

    def counted(data: bytes) -> str:
        hashed.append(data)
        return real(data)

    monkeypatch.setattr(media, "digest_of", counted)
    children = [descriptor(str(n).encode(), MANIFEST) for n in range(1024)]
    document = media.Document(index(children), INDEX)
    assert len(document.children()) == 1024
    assert document.is_index and len(hashed) == 1


def test_a_cached_blob_is_checked_in_the_read_that_loads_it(tmp_path: Path) -> None:
    from syntra.errors import Refused
    from syntra.oci.digest import read_named

    good = b"\0asm\1\0\0\0"
    blob = tmp_path / ("sha256-" + hashlib.sha256(good).hexdigest())
    blob.write_bytes(good)
    assert read_named(blob) == good
    blob.write_bytes(good[:-1] + b"\1")  # swapped after it was fetched and checked
    with pytest.raises(Refused, match="its bytes are not sha256:"):
        read_named(blob)


@pytest.mark.parametrize(
    "flag",
    ["-fuse-ld=/tmp/evil", "-fpass-plugin=/tmp/evil.so", "-fplugin=/tmp/evil.so", "-B/tmp",
     "-Xclang", "-mllvm", "-Wl,--export=x", "-Wa,-x", "-Wp,-x", "-I/etc", "-I../..", "-o",
     "--target=x86_64", "-fprofile-generate", "-save-temps", "--config=/tmp/x.cfg"],
)  # fmt: skip
def test_a_compiler_flag_off_the_allow_list_is_refused_by_name(
    tmp_path: Path, syntra: Syntra, flag: str
) -> None:
    (tmp_path / "syntra.yaml").write_text(
        "version: 1\nproject: {name: d}\nwasm:\n  g:\n    language: c\n    source: .\n"
        f'    cflags: ["-O2", "-DN=3", "-Iinclude", "-Wall", "-Werror", "-std=c11", "{flag}"]\n'
    )
    err = one_line(syntra(tmp_path, "validate"), 2)
    assert f"'{flag}' is not a flag a guest may give" in err, err
