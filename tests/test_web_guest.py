"""The Swift guest's web bundle end to end: built by `doit` (swiftc, wasm-opt), loaded in
headless chromium and compared with `syntra run`, the same bytes from a second clone,
attached to the signed artifact as a referrer that oras discovers and pulls and cosign
verifies, with its own SBOM and provenance."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from syntra.paths import record_path, wasm_cache
from syntra.plugins.sandbox import Sandbox
from syntra.supply.attach import WEB_BUNDLE
from syntra.wasm import web
from tests.conftest import REPO, commit, git, run
from tests.support.browser import chromium, visit
from tests.support.projects import SHOWCASE
from tests.support.signing import PASSPHRASE, SIGNING, cosign

pytestmark = pytest.mark.e2e

ORAS = REPO / ".cache" / "trixie" / "oras"
FILES = ["_wasi.js", "fib.d.ts", "fib.js", "fib.wasm", "index.html"]


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, registry: str) -> Path:
    """A project with the showcase's Swift guest, `web: true`, pushed and signed once."""
    root = tmp_path_factory.mktemp("web") / "repo"
    (root / "guest").mkdir(parents=True)
    (root / "guest" / "Fib.swift").write_text((SHOWCASE / "Swift" / "Fib.swift").read_text())
    (root / ".gitignore").write_text(".syntra/\ndist/\n")
    (root / "syntra.yaml").write_text(
        "version: 1\nproject: {name: webdemo, version: 1.0.0}\n"
        f"registries: {{local: {{url: '{registry}', insecure: true}}}}\n"
        "defaults: {tags: ['{{ version }}']}\n"
        "wasm:\n  fib:\n    language: swift\n    source: guest\n    mode: embedded\n"
        "    repository: tests/webfib\n    web: {title: Fibonacci in the browser}\n"
        "    tests: [{call: fib, args: [24], expect: 46368}, {call: fib, args: [1], expect: 1}]\n"
        + SIGNING
    )
    git(root, "init", "-q", "-b", "main")
    commit(root, "guest")
    keygen = run(root, "syntra", "keygen", env=PASSPHRASE)
    assert keygen.returncode == 0, keygen.stderr
    done = run(root, "doit", env=PASSPHRASE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ".  wasm:fib.web" in done.stdout
    assert f"fib: web bundle dist/web/fib/: {', '.join(FILES)}" in done.stdout
    return root


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def _bundle(root: Path) -> dict[str, Any]:
    web_record: dict[str, Any] = json.loads(record_path(root, "fib").read_text())["web"]
    return web_record


def test_the_swift_guest_in_chromium_gives_syntra_run_s_results(
    published: Path, browser: Browser, screenshot: Path
) -> None:
    folder = published / "dist" / "web" / "fib"
    own: list[tuple[str, list[Any]]] = [("fib", [n]) for n in (0, 2, 10, 30, 46)]
    seen = visit(browser, folder, "fib.js", screenshot, own)
    ran = run(published, "syntra", "run", "fib", "fib", "24", "--json")
    assert ran.returncode == 0, ran.stderr
    assert [(r["call"], r["args"], r["value"], r["ok"]) for r in seen.results] == [
        ("fib", [24], json.loads(ran.stdout)["value"], True),
        ("fib", [1], 1, True),
    ]
    sandbox = Sandbox("fib", folder / "fib.wasm", {"max_mem": 16 << 20, "max_ms": 1000},
                      wasm_cache(published))  # fmt: skip
    assert [call["value"] for call in seen.calls] == [
        sandbox.call(name, args).value for name, args in own
    ]
    assert seen.calls[3] == {"value": 832040}
    assert not [line for line in seen.console if line.startswith("error")] and not seen.errors
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    typings = (folder / "fib.d.ts").read_text()
    assert "export function fib(a0: number): number;" in typings
    assert "<title>Fibonacci in the browser</title>" in (folder / "index.html").read_text()


def test_a_second_clone_writes_the_same_bundle(published: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(published), str(clone))
    built = run(clone, "doit", "wasm:fib.web", env={"SYNTRA_SNAPSHOT": "1"})
    assert built.returncode == 0, built.stdout + built.stderr
    ours = web.bundle_files(published / "dist" / "web" / "fib")
    assert sorted(ours) == FILES
    assert web.bundle_files(clone / "dist" / "web" / "fib") == ours


def test_the_plan_lists_the_bundle(published: Path) -> None:
    shown = run(published, "syntra", "plan", "--json")
    assert shown.returncode == 0, shown.stderr
    guest = json.loads(shown.stdout)["guests"][0]
    assert guest["web"] == {"dir": "dist/web/fib", "title": "Fibonacci in the browser",
                            "publish": True}  # fmt: skip
    text = run(published, "syntra", "plan").stdout
    assert "  web        dist/web/fib/  (attached to the artifact)" in text


def test_oras_discovers_and_pulls_the_bundle_and_cosign_verifies_it(
    published: Path, registry: str, tmp_path: Path
) -> None:
    fib = json.loads(record_path(published, "fib").read_text())
    bundle = _bundle(published)
    artifact = f"{registry}/tests/webfib@{fib['digest']}"
    found = subprocess.run(
        [str(ORAS), "discover", "--plain-http", "--format", "json", artifact],
        capture_output=True, text=True,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr
    listed = json.loads(found.stdout)
    referrers = listed.get("referrers") or listed.get("manifests") or []
    webs = [r for r in referrers if r["artifactType"] == WEB_BUNDLE]
    assert [r["digest"] for r in webs] == [bundle["digest"]]
    reference = f"{registry}/tests/webfib@{bundle['digest']}"
    pulled = subprocess.run(
        [str(ORAS), "pull", "--plain-http", reference, "-o", str(tmp_path / "oras")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    local = web.bundle_files(published / "dist" / "web" / "fib")
    assert web.bundle_files(tmp_path / "oras") == local
    ours = run(published, "syntra", "pull", artifact, str(tmp_path / "ours"), "--web", "--json")
    assert ours.returncode == 0, ours.stderr
    assert json.loads(ours.stdout)["bundle"] == reference
    assert web.bundle_files(tmp_path / "ours") == local
    key = str(published / "keys" / "cosign.pub")
    flags = ["--key", key, "--insecure-ignore-tlog=true", "--allow-http-registry"]
    signed = cosign("verify", *flags, reference)
    assert signed.returncode == 0, signed.stderr
    for kind in ("spdxjson", "cyclonedx", "slsaprovenance1"):
        attested = cosign("verify-attestation", *flags, "--type", kind, reference)
        assert attested.returncode == 0, f"{kind}: {attested.stderr}"


def test_verify_checks_the_bundle_as_its_own_subject(published: Path) -> None:
    verdict = run(published, "syntra", "verify", "fib", "--json")
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    checks = {check["artifact"]: check for check in json.loads(verdict.stdout)}
    assert set(checks) == {"fib", "fib (web)"}
    assert checks["fib (web)"]["digest"] == _bundle(published)["digest"]
    assert all(checks["fib (web)"][k] is True for k in ("signature", "sbom", "provenance"))
    sbom = run(published, "syntra", "sbom", f"{checks['fib']['reference']}@"
               f"{checks['fib (web)']['digest']}", "--format", "cyclonedx-json")  # fmt: skip
    assert sbom.returncode == 0, sbom.stderr
    document = json.loads(sbom.stdout)
    assert document["metadata"]["component"]["name"] == "fib-web"
    names = sorted(component["name"] for component in document["components"])
    assert names == sorted(["_wasi.js", "fib.d.ts", "fib.js", "fib", "index.html"])


def test_a_warm_run_rebuilds_and_attaches_nothing(published: Path) -> None:
    before = _bundle(published)
    again = run(published, "doit", env=PASSPHRASE)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "-- wasm:fib.web" in again.stdout and "-- wasm:fib.publish" in again.stdout
    assert _bundle(published) == before
