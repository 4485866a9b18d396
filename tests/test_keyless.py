"""Keyless signing, contract-tested: GitHub's OIDC endpoint, Fulcio and Rekor are a
stand-in (tests/standins/sigstore.py) because this machine reaches none of them.
Everything else is real: sigstore-python signs and verifies (certificate chain, SCT,
inclusion proof, checkpoint, entry timestamp, identity), the registry stores the
bundles, and `syntra verify` reads them back."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest

from syntra.oci import INDEX, Blob, Client, Document, digest_of
from syntra.paths import doit_state, record_path
from syntra.supply.attach import Attachments, Layer, attachment_tag
from syntra.supply.keyless import BUNDLE, SIGNATURE_PREDICATE
from tests.conftest import run
from tests.standins.sigstore import REQUEST_TOKEN, Sigstore, write_trust_config
from tests.support.oci import validate
from tests.support.projects import SHOWCASE, make_project

pytestmark = pytest.mark.e2e

IDENTITY = "https://github.com/acme/app/.github/workflows/docker.yml@refs/heads/main"
PATTERN = r"https://github\.com/acme/app/\.github/workflows/docker\.yml@refs/heads/.*"


def _keyless(identity: str = PATTERN) -> str:
    return (
        "supply_chain:\n  sbom: [spdx-json]\n"
        f"  signing: {{mode: keyless, identity: '{identity}', trust_config: sigstore.json}}\n"
    )


@pytest.fixture(scope="module")
def sigstore() -> Iterator[Sigstore]:
    services = Sigstore(IDENTITY, "acme/app")
    yield services
    services.close()


@pytest.fixture(scope="module")
def signed(
    tmp_path_factory: pytest.TempPathFactory, registry: str, base: str, sigstore: Sigstore
) -> tuple[Path, str]:
    """A project with an image and a Swift guest, pushed, then signed keyless in a
    "GitHub Actions job"; returns the root and everything `doit` printed."""
    root = make_project(
        tmp_path_factory.mktemp("keyless") / "repo", registry, base,
        "    repository: tests/keyless\n    platforms: [linux/amd64]\n"
        "wasm:\n  fib:\n    language: swift\n    source: guest\n    repository: tests/keyless-fib\n"
        + _keyless(),
    )  # fmt: skip
    (root / "guest").mkdir()
    (root / "guest" / "Fib.swift").write_text((SHOWCASE / "Swift" / "Fib.swift").read_text())
    write_trust_config(sigstore, root / "sigstore.json")
    done = run(root, "doit", env=sigstore.github_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return root, done.stdout + done.stderr


def _bundles(client: Client, repository: str, digest: str) -> list[dict[str, object]]:
    index = client.get_manifest(repository, attachment_tag(digest))
    assert index.media_type == INDEX
    validate(index.json(), "image-index-schema.json")
    return [m for m in index.json()["manifests"] if m["artifactType"] == BUNDLE]


def test_verify_all_is_green(signed: tuple[Path, str]) -> None:
    root, _ = signed
    done = run(root, "syntra", "verify", "--all", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = json.loads(done.stdout)
    assert [(c["artifact"], c["platform"]) for c in checks] == [
        ("app", None), ("app", "linux/amd64"), ("fib", None),
    ]  # fmt: skip
    assert all(c["ok"] and c["signature"] for c in checks)
    assert [c["sbom"] for c in checks] == [None, True, True]
    assert [c["provenance"] for c in checks] == [True, None, True]


def test_requests_match_the_contract(signed: tuple[Path, str], sigstore: Sigstore) -> None:
    """Per supply task: one OIDC token for audience `sigstore`, one certificate for it,
    then one DSSE entry in Rekor per bundle; no token ever reaches the output."""
    _, output = signed
    asked = [(r.method, r.path) for r in sigstore.requests]
    tasks = 2  # supply:app, supply:fib
    assert asked[:2] == [("GET", "/oidc/token"), ("POST", "/api/v2/signingCert")]
    assert asked.count(("GET", "/oidc/token")) == tasks
    assert asked.count(("POST", "/api/v2/signingCert")) == tasks
    tokens = [r for r in sigstore.requests if r.path == "/oidc/token"]
    assert all(r.query["audience"] == ["sigstore"] for r in tokens)
    assert all(r.headers["authorization"] == f"bearer {REQUEST_TOKEN}" for r in tokens)
    for request in (r for r in sigstore.requests if r.path == "/api/v2/signingCert"):
        assert list(request.body) == ["certificateSigningRequest"]
        token = request.headers["authorization"].removeprefix("Bearer ")
        claims = jwt.decode(token, options={"verify_signature": False})
        assert claims["aud"] == "sigstore"
        assert token not in output
    entries = [r.body for r in sigstore.requests if r.path == "/api/v1/log/entries"]
    assert {(e["kind"], e["apiVersion"]) for e in entries} == {("dsse", "0.0.1")}
    # app: signature + provenance on the index, signature + SBOM on the platform image;
    # fib: signature + SBOM + provenance.
    assert len(entries) == 7
    assert REQUEST_TOKEN not in output


def test_bundles_are_stored_as_cosign_lays_them_out(
    signed: tuple[Path, str], registry: str
) -> None:
    root, _ = signed
    client = Client(registry, insecure=True)
    record = json.loads((record_path(root, "fib")).read_text())
    listed = _bundles(client, "tests/keyless-fib", record["digest"])
    predicates = {str(m["annotations"]["dev.sigstore.bundle.predicateType"]) for m in listed}  # type: ignore[index]
    assert predicates == {
        "https://slsa.dev/provenance/v1", "https://spdx.dev/Document", SIGNATURE_PREDICATE,
    }  # fmt: skip
    for entry in listed:
        manifest = client.get_manifest("tests/keyless-fib", str(entry["digest"])).json()
        validate(manifest, "image-manifest-schema.json")
        assert manifest["artifactType"] == BUNDLE
        assert manifest["subject"]["digest"] == record["digest"]
        assert manifest["annotations"]["dev.sigstore.bundle.content"] == "dsse-envelope"
        (layer,) = manifest["layers"]
        assert layer["mediaType"] == BUNDLE
        assert layer["annotations"]["org.opencontainers.image.title"].endswith(".sigstore.json")
        bundle = json.loads(client.get_blob("tests/keyless-fib", layer["digest"]))
        assert bundle["mediaType"] == BUNDLE
        assert bundle["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["kind"] == "dsse"


def test_another_identity_is_refused(signed: tuple[Path, str]) -> None:
    root, _ = signed
    other = root / "other.yaml"
    other.write_text(
        (root / "syntra.yaml").read_text().replace(PATTERN, r"https://github\.com/acme/other/.*")
    )
    done = run(root, "syntra", "-f", "other.yaml", "verify", "--all", "--json")
    assert done.returncode == 1
    problems = {p for check in json.loads(done.stdout) for p in check["problems"]}
    assert any("not by /https://github\\.com/acme/other/.*/" in p for p in problems), problems


def test_a_tampered_bundle_is_refused(signed: tuple[Path, str], registry: str) -> None:
    """The fib artifact's referrers are replaced by one bundle whose statement was
    edited after signing; verify names it and finds no signature."""
    root, _ = signed
    client = Client(registry, insecure=True)
    repository = "tests/keyless-fib"
    digest = json.loads((record_path(root, "fib")).read_text())["digest"]
    fallback = attachment_tag(digest)
    original = client.get_manifest(repository, fallback)
    entry = next(
        m for m in _bundles(client, repository, digest)
        if m["annotations"]["dev.sigstore.bundle.predicateType"] == SIGNATURE_PREDICATE  # type: ignore[index]
    )  # fmt: skip
    manifest = client.get_manifest(repository, str(entry["digest"])).json()
    bundle = json.loads(client.get_blob(repository, manifest["layers"][0]["digest"]))
    claim = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    claim["subject"][0]["name"] = "127.0.0.1/somewhere/else"
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(claim).encode()).decode()
    blob = json.dumps(bundle).encode()
    client.push_blob(repository, Blob.of(blob))
    blob_digest = digest_of(blob)
    manifest["layers"][0].update(digest=blob_digest, size=len(blob))
    data = json.dumps(manifest).encode()
    tampered = client.put_manifest(
        repository, digest_of(data), Document(data, manifest["mediaType"])
    )
    index = {**original.json(), "manifests": [{**entry, "digest": tampered, "size": len(data)}]}
    client.put_manifest(repository, fallback, Document(json.dumps(index).encode(), INDEX))
    try:
        done = run(root, "syntra", "verify", "--all", "--json")
    finally:
        client.put_manifest(repository, fallback, Document(original.data, INDEX))
    assert done.returncode == 1
    (fib,) = [c for c in json.loads(done.stdout) if c["artifact"] == "fib"]
    assert not fib["signature"]
    assert any(p.startswith("a bundle that does not verify: ") for p in fib["problems"])


def test_a_valid_bundle_about_another_artifact_does_not_count(
    signed: tuple[Path, str], registry: str
) -> None:
    """fib's signature bundle, listed as the only referrer of app's index: it verifies,
    but it is not about app, so app's index counts as unsigned."""
    root, _ = signed
    client = Client(registry, insecure=True)
    fib = json.loads((record_path(root, "fib")).read_text())["digest"]
    app = json.loads((record_path(root, "app")).read_text())["digest"]
    entry = next(
        m for m in _bundles(client, "tests/keyless-fib", fib)
        if m["annotations"]["dev.sigstore.bundle.predicateType"] == SIGNATURE_PREDICATE  # type: ignore[index]
    )  # fmt: skip
    manifest = client.get_manifest("tests/keyless-fib", str(entry["digest"])).json()
    blob = client.get_blob("tests/keyless-fib", manifest["layers"][0]["digest"])
    fallback = attachment_tag(app)
    original = client.get_manifest("tests/keyless", fallback)
    client.put_manifest(
        "tests/keyless",
        fallback,
        Document(json.dumps({**original.json(), "manifests": []}).encode(), INDEX),
    )
    subject = {"mediaType": INDEX, "digest": app, "size": 1}
    Attachments(client, "tests/keyless").refer(subject, [Layer(blob, BUNDLE, {})], BUNDLE)
    try:
        done = run(root, "syntra", "verify", "--all", "--json")
    finally:
        client.put_manifest("tests/keyless", fallback, Document(original.data, INDEX))
    assert done.returncode == 1
    top = next(c for c in json.loads(done.stdout) if c["digest"] == app)
    assert not top["signature"] and not top["provenance"]
    assert not any("does not verify" in p for p in top["problems"])


def test_service_failures_are_one_line(signed: tuple[Path, str], sigstore: Sigstore) -> None:
    root, _ = signed
    (doit_state(root)).unlink()  # forget: the stage runs again
    sigstore.refuse_certificates = True
    try:
        refused = run(root, "doit", "supply:fib", env=sigstore.github_env())
    finally:
        sigstore.refuse_certificates = False
    assert refused.returncode != 0
    assert "supply fib: keyless signing: " in refused.stdout
    assert "Traceback" not in refused.stdout + refused.stderr
    wrong = {**sigstore.github_env(), "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "not-the-job-token"}
    denied = run(root, "doit", "supply:fib", env=wrong)
    assert (
        "supply fib: keyless signing: GitHub: OIDC token request failed (code=401" in denied.stdout
    )
    assert "Traceback" not in denied.stdout + denied.stderr
    assert "not-the-job-token" not in denied.stdout + denied.stderr


def test_outside_ci_is_one_clear_line(tmp_path: Path, registry: str, base: str) -> None:
    root = make_project(tmp_path / "repo", registry, base, _keyless())
    (root / "sigstore.json").write_text("{}")
    done = run(
        root, "doit", "supply", env={"GITHUB_ACTIONS": "", "ACTIONS_ID_TOKEN_REQUEST_URL": ""}
    )
    assert (
        "supply app: keyless signing needs an OIDC identity (GitHub Actions with "
        "`permissions: id-token: write`); none is available here"
    ) in done.stdout


def test_unreachable_trust_root_is_one_clear_line(tmp_path: Path, registry: str, base: str) -> None:
    """Without trust_config, keyless verification needs the public-good trust root
    through TUF; unreachable, that is one line and exit 2."""
    root = make_project(
        tmp_path / "repo", registry, base, _keyless().replace(", trust_config: sigstore.json", "")
    )
    closed = "http://127.0.0.1:9"
    done = run(
        root, "syntra", "verify", "--all",
        env={"HTTPS_PROXY": closed, "https_proxy": closed, "XDG_CACHE_HOME": str(tmp_path),
             "XDG_DATA_HOME": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip().splitlines() == [
        "Sigstore trust root from the public-good instance (TUF): Failed to refresh TUF metadata"
    ]
