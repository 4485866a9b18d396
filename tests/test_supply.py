"""Supply chain for real, key mode: syft SBOMs, cosign-format signatures that skopeo
accepts under a sigstoreSigned policy (and OpenSSL verifies byte for byte), provenance,
`syntra verify`, and tampering that all of them reject."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import (
    BestAvailableEncryption,
    Encoding,
    PrivateFormat,
    PublicFormat,
)
from google.protobuf import json_format
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement
from ruamel.yaml import YAML

from syntra.oci import INDEX, MANIFEST, Blob, Client, Document, platform_of
from syntra.paths import doit_state, record_path, records_dir
from syntra.registry.local import serve
from syntra.supply.attach import attachment_tag
from tests.conftest import REPO, commit, git, run, skopeo
from tests.support.oci import validate
from tests.support.projects import SHOWCASE, make_project
from tests.support.sboms import assert_valid
from tests.support.signing import PASSPHRASE, SIGNING, cosign

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, registry: str, base: str) -> Path:
    """A project with an image and a Swift guest, pushed, signed and attested once."""
    root = make_project(
        tmp_path_factory.mktemp("supply") / "repo", registry, base,
        "    repository: tests/secured\n    platforms: [linux/amd64, linux/arm64]\n"
        "    plugins: [fib]\n"
        "wasm:\n  fib:\n    language: swift\n    source: guest\n    repository: tests/fib\n"
        "    tests: [{call: fib, args: [10], expect: 55}]\n" + SIGNING,
    )  # fmt: skip
    (root / "guest").mkdir()
    (root / "guest" / "Fib.swift").write_text((SHOWCASE / "Swift" / "Fib.swift").read_text())
    commit(root, "guest")
    keygen = run(root, "syntra", "keygen", env=PASSPHRASE)
    assert keygen.returncode == 0, keygen.stderr
    done = run(root, "doit", env=PASSPHRASE)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


SKOPEO_SIGSTORE = REPO / ".cache" / "trixie" / "skopeo"


def _skopeo_accepts(
    registry: str, image: str, public: Path, tmp: Path, signed_as: str | None = None
) -> bool:
    """skopeo copies `image` only if a `sigstoreSigned` policy with our public key accepts
    its cosign signature (Debian 13's skopeo: Debian 12's has sigstore disabled). With
    `signed_as`, the signature must name that repository (a copy: `exactRepository`)."""
    assert SKOPEO_SIGSTORE.exists(), "run .ci/setup: it fetches skopeo with sigstore support"
    repository = re.split(r"[@:]", image, maxsplit=1)[0]
    identity: dict[str, str] = {"type": "matchRepository"}
    if signed_as:
        identity = {"type": "exactRepository", "dockerRepository": signed_as}
    requirement = {"type": "sigstoreSigned", "keyPath": str(public), "signedIdentity": identity}
    policy = {
        "default": [{"type": "reject"}],
        "transports": {"docker": {f"{registry}/{repository}": [requirement]}},
    }
    (tmp / "policy.json").write_text(json.dumps(policy))
    (tmp / "registries.d").mkdir(exist_ok=True)
    (tmp / "registries.d" / "local.yaml").write_text(
        f"docker:\n  {registry}:\n    use-sigstore-attachments: true\n"
    )
    shutil.rmtree(tmp / "copy", ignore_errors=True)
    done = subprocess.run(
        [str(SKOPEO_SIGSTORE), "--policy", str(tmp / "policy.json"), "--registries.d",
         str(tmp / "registries.d"), "copy", "--src-tls-verify=false",
         f"docker://{registry}/{image}", f"dir:{tmp / 'copy'}"],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        assert "Source image rejected" in done.stderr, done.stderr
    return done.returncode == 0


def _openssl_verifies(public: Path, payload: bytes, signature: bytes, tmp: Path) -> bool:
    """An independent check of the ECDSA signature bytes, for the index signatures that
    skopeo does not look at (it checks the platform image it copies)."""
    (tmp / "payload").write_bytes(payload)
    (tmp / "signature").write_bytes(signature)
    done = subprocess.run(
        ["openssl", "dgst", "-sha256", "-verify", str(public), "-signature",
         str(tmp / "signature"), str(tmp / "payload")],
        capture_output=True, text=True,
    )  # fmt: skip
    return done.returncode == 0 and done.stdout.strip() == "Verified OK"


def _independently_verified(
    client: Client, repository: str, ref_digest: str, public: Path, tmp: Path
) -> bool:
    """skopeo reads the signature manifest; openssl checks its signature; the payload must
    name this repository and the digest the reference points at."""
    sig = client.get_manifest(repository, attachment_tag(ref_digest, "sig")).json()
    for layer in sig["layers"]:
        payload = client.get_blob(repository, layer["digest"])
        claim = json.loads(payload)["critical"]
        signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
        if (
            claim["identity"]["docker-reference"] == f"{client.host}/{repository}"
            and claim["image"]["docker-manifest-digest"] == ref_digest
            and _openssl_verifies(public, payload, signature, tmp)
        ):
            return True
    return False


def _digest_of_tag(registry: str, repository: str, tag: str) -> str:
    raw = skopeo(
        "inspect", "--raw", "--tls-verify=false", f"docker://{registry}/{repository}:{tag}"
    )
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def test_key_is_encrypted(secured: Path) -> None:
    assert (
        (secured / "keys" / "cosign.key")
        .read_text()
        .startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY")
    )
    assert (secured / "keys" / "cosign.key").stat().st_mode & 0o777 == 0o600
    assert (secured / "keys" / "cosign.pub").read_text().startswith("-----BEGIN PUBLIC KEY")


def test_verify_all_is_green(secured: Path) -> None:
    done = run(secured, "syntra", "verify", "--all", "--json")
    assert done.returncode == 0, done.stdout
    checks = json.loads(done.stdout)
    assert [(c["artifact"], c["platform"]) for c in checks] == [
        ("app", None), ("app", "linux/amd64"), ("app", "linux/arm64"), ("fib", None),
    ]  # fmt: skip
    assert all(c["ok"] and c["signature"] for c in checks)
    assert [c["sbom"] for c in checks] == [None, True, True, True]
    assert [c["provenance"] for c in checks] == [True, None, None, True]


def test_signature_verifies_independently(secured: Path, registry: str, tmp_path: Path) -> None:
    client = Client(registry, insecure=True)
    public = secured / "keys" / "cosign.pub"
    digest = _digest_of_tag(registry, "tests/secured", "latest")
    assert _independently_verified(client, "tests/secured", digest, public, tmp_path)
    record = json.loads((record_path(secured, "app")).read_text())
    wasm = json.loads((record_path(secured, "fib")).read_text())
    for image in [
        "tests/secured:latest",
        *(f"tests/secured@{p['digest']}" for p in record["platforms"]),
        f"tests/fib@{wasm['digest']}",
    ]:
        assert _skopeo_accepts(registry, image, public, tmp_path), image


def test_skopeo_rejects_another_key(secured: Path, registry: str, tmp_path: Path) -> None:
    stranger = ec.generate_private_key(ec.SECP256R1()).public_key()
    (tmp_path / "stranger.pub").write_bytes(
        stranger.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    assert not _skopeo_accepts(
        registry, "tests/secured:latest", tmp_path / "stranger.pub", tmp_path
    )


def test_everything_we_wrote_is_valid_oci(secured: Path, registry: str) -> None:
    client = Client(registry, insecure=True)
    record = json.loads((record_path(secured, "app")).read_text())
    for digest in [record["digest"], *(p["digest"] for p in record["platforms"])]:
        for suffix in ("sig", "att"):
            manifest = client.get_manifest("tests/secured", attachment_tag(digest, suffix))
            if suffix == "att" and digest == record["digest"]:
                assert len(manifest.json()["layers"]) == 1  # provenance only
            validate(manifest.json(), "image-manifest-schema.json")
        referrers = client.get_manifest("tests/secured", attachment_tag(digest))
        assert referrers.media_type == INDEX
        validate(referrers.json(), "image-index-schema.json")
        for listed in referrers.json()["manifests"]:
            referrer = client.get_manifest("tests/secured", listed["digest"]).json()
            validate(referrer, "image-manifest-schema.json")
            assert referrer["subject"]["digest"] == digest
            assert referrer["mediaType"] == MANIFEST


def _sbom_blobs(client: Client, repository: str, digest: str) -> list[bytes]:
    manifest = client.get_manifest(repository, attachment_tag(digest, "att")).json()
    return [client.get_blob(repository, layer["digest"]) for layer in manifest["layers"]]


def test_sboms_are_byte_identical_across_runs(secured: Path, registry: str) -> None:
    client = Client(registry, insecure=True)
    record = json.loads((record_path(secured, "app")).read_text())
    child = record["platforms"][1]["digest"]
    before = _sbom_blobs(client, "tests/secured", child)
    envelope = json.loads(before[0])
    assert json.loads(base64.b64decode(envelope["payload"]))["predicateType"] in (
        "https://spdx.dev/Document", "https://cyclonedx.org/bom",
    )  # fmt: skip
    (doit_state(secured)).unlink()  # forget: the stage runs again
    again = run(secured, "doit", "supply:app", env=PASSPHRASE)
    assert again.returncode == 0, again.stdout
    assert _sbom_blobs(client, "tests/secured", child) == before


def test_tampering_is_caught_by_both_verifiers(
    secured: Path, registry: str, tmp_path: Path, base: str
) -> None:
    client = Client(registry, insecure=True)
    public = secured / "keys" / "cosign.pub"
    ref = f"{registry}/tests/secured:latest"
    original = client.get_manifest("tests/secured", "latest")
    # 1. The tag now points at another (unsigned) index.
    other = client.get_manifest("fixtures/busybox", "1.36")
    for child in other.json()["manifests"]:
        data = client.get_manifest("fixtures/busybox", child["digest"])
        for blob in [data.json()["config"], *data.json()["layers"]]:
            client.push_blob(
                "tests/secured", Blob.of(client.get_blob("fixtures/busybox", blob["digest"]))
            )
        client.put_manifest("tests/secured", child["digest"], data)
    client.put_manifest("tests/secured", "latest", other)
    assert run(secured, "syntra", "verify", ref).returncode == 1
    assert not _skopeo_accepts(registry, "tests/secured:latest", public, tmp_path)
    moved = _digest_of_tag(registry, "tests/secured", "latest")
    assert moved == other.digest
    assert client.head_manifest("tests/secured", attachment_tag(moved, "sig")) is None
    client.put_manifest("tests/secured", "latest", original)
    assert run(secured, "syntra", "verify", ref).returncode == 0
    # 2. A platform image's signature layer is replaced by one that does not verify
    #    (skopeo checks the signature of the platform image it copies).
    child = original.json()["manifests"][0]["digest"]
    sig_tag = attachment_tag(child, "sig")
    signed = client.get_manifest("tests/secured", sig_tag)
    forged = json.loads(signed.data)
    annotation = forged["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"]
    flipped = bytearray(base64.b64decode(annotation))
    flipped[-1] ^= 0x01
    forged["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"] = base64.b64encode(
        bytes(flipped)
    ).decode()
    client.put_manifest("tests/secured", sig_tag, Document(json.dumps(forged).encode(), MANIFEST))
    try:
        verdict = run(secured, "syntra", "verify", ref, "--json")
        assert verdict.returncode == 1
        (platform,) = [c for c in json.loads(verdict.stdout) if c["digest"] == child]
        assert "no valid signature by the key" in platform["problems"]
        assert not _independently_verified(client, "tests/secured", child, public, tmp_path)
        assert not _skopeo_accepts(registry, f"tests/secured@{child}", public, tmp_path)
    finally:
        client.put_manifest("tests/secured", sig_tag, signed)
    assert _skopeo_accepts(registry, f"tests/secured@{child}", public, tmp_path)


def test_key_errors_are_one_line(secured: Path) -> None:
    wrong = run(secured, "syntra", "keygen", env=PASSPHRASE)
    assert (
        wrong.returncode == 2
        and wrong.stderr == "keys/cosign.key exists; remove it first to make a new key\n"
    )
    (doit_state(secured)).unlink()
    bad = run(secured, "doit", "supply:fib", env={"SYNTRA_KEY_PASSPHRASE": "nope"})
    expected = "keys/cosign.key: cannot decrypt it with the passphrase in SYNTRA_KEY_PASSPHRASE"
    assert f"supply fib: {expected}" in bad.stdout
    assert "nope" not in bad.stdout.replace("supply", "")


def _subjects(secured: Path, registry: str) -> list[tuple[str, list[str]]]:
    """Every digest Syntra signed, with the cosign attestation types it must carry."""
    app = json.loads((record_path(secured, "app")).read_text())
    fib = json.loads((record_path(secured, "fib")).read_text())
    found = [(f"{registry}/tests/secured@{app['digest']}", ["slsaprovenance1"])]
    found += [
        (f"{registry}/tests/secured@{p['digest']}", ["spdxjson", "cyclonedx"])
        for p in app["platforms"]
    ]
    found.append(
        (f"{registry}/tests/fib@{fib['digest']}", ["spdxjson", "cyclonedx", "slsaprovenance1"])
    )
    return found


def test_cosign_verifies_every_signature_and_attestation(secured: Path, registry: str) -> None:
    key = str(secured / "keys" / "cosign.pub")
    flags = ["--key", key, "--insecure-ignore-tlog=true", "--allow-http-registry"]
    for reference, types in _subjects(secured, registry):
        signed = cosign("verify", *flags, reference)
        assert signed.returncode == 0, f"{reference}: {signed.stderr}"
        for kind in types:
            attested = cosign("verify-attestation", *flags, "--type", kind, reference)
            assert attested.returncode == 0, f"{reference} {kind}: {attested.stderr}"
            for line in attested.stdout.splitlines():  # one envelope per attestation
                statement = json.loads(base64.b64decode(json.loads(line)["payload"]))
                assert statement["subject"][0]["digest"]["sha256"] == reference.split(":")[-1]


def test_cosign_refuses_a_foreign_key(secured: Path, registry: str, tmp_path: Path) -> None:
    assert (
        cosign("generate-key-pair", "--output-key-prefix", str(tmp_path / "other")).returncode == 0
    )
    reference, _ = _subjects(secured, registry)[-1]
    refused = cosign("verify", "--key", str(tmp_path / "other.pub"),
                     "--insecure-ignore-tlog=true", "--allow-http-registry", reference)  # fmt: skip
    assert refused.returncode != 0


def test_syntra_verify_accepts_a_signature_cosign_made(
    secured: Path, registry: str, tmp_path: Path
) -> None:
    made = cosign("generate-key-pair", "--output-key-prefix", str(tmp_path / "cosign"))
    assert made.returncode == 0, made.stderr
    app = json.loads((record_path(secured, "app")).read_text())
    reference = f"{registry}/tests/secured@{app['digest']}"
    foreign = run(secured, "syntra", "verify", reference, "--key", str(tmp_path / "cosign.pub"))
    assert foreign.returncode == 1  # not signed by that key yet
    signed = cosign("sign", "--key", str(tmp_path / "cosign.key"), "--tlog-upload=false",
                    "--allow-http-registry", "--yes", reference)  # fmt: skip
    assert signed.returncode == 0, signed.stderr
    verdict = run(secured, "syntra", "verify", reference, "--key", str(tmp_path / "cosign.pub"),
                  "--json")  # fmt: skip
    check = json.loads(verdict.stdout)[0]
    assert check["digest"] == app["digest"] and check["signature"] is True, check
    assert run(secured, "syntra", "verify", reference).returncode == 0  # ours still holds


def test_keys_work_both_ways_with_cosign(tmp_path: Path) -> None:
    from syntra.supply import keys

    blob = tmp_path / "blob"
    blob.write_bytes(b"payload")
    os.environ.setdefault("SYNTRA_KEY_PASSPHRASE", PASSPHRASE["SYNTRA_KEY_PASSPHRASE"])
    # cosign's key, read by Syntra; Syntra's signature, checked by cosign.
    assert (
        cosign("generate-key-pair", "--output-key-prefix", str(tmp_path / "theirs")).returncode == 0
    )
    theirs = keys.load_private(tmp_path, "theirs.key", "SYNTRA_KEY_PASSPHRASE")
    (tmp_path / "blob.sig").write_bytes(base64.b64encode(keys.sign(theirs, b"payload")))
    signature = str(tmp_path / "blob.sig")
    checked = cosign("verify-blob", "--key", str(tmp_path / "theirs.pub"), "--signature",
                     signature, "--insecure-ignore-tlog=true", str(blob))  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    # Syntra's key, used by cosign; cosign's signature, checked by Syntra.
    keys.generate(tmp_path / "ours.key", "SYNTRA_KEY_PASSPHRASE")
    assert (tmp_path / "ours.key").read_text().startswith(f"-----BEGIN {keys.COSIGN_PEM}-----")
    made = cosign(
        "sign-blob", "--key", str(tmp_path / "ours.key"), "--tlog-upload=false", str(blob)
    )
    assert made.returncode == 0, made.stderr
    public = keys.load_public(tmp_path / "ours.pub")
    assert keys.verifies(public, b"payload", base64.b64decode(made.stdout.strip()))
    assert not keys.verifies(public, b"other", base64.b64decode(made.stdout.strip()))
    # A passphrase-encrypted PKCS#8 key (what earlier versions wrote) still loads.
    legacy = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8,
        BestAvailableEncryption(PASSPHRASE["SYNTRA_KEY_PASSPHRASE"].encode()),
    )  # fmt: skip
    (tmp_path / "legacy.key").write_bytes(legacy)
    assert keys.load_private(tmp_path, "legacy.key", "SYNTRA_KEY_PASSPHRASE")


def _predicates(client: Client, repository: str, digest: str) -> dict[str, dict[str, Any]]:
    """The statements attested about `digest`, by predicate type."""
    found = {}
    for blob in _sbom_blobs(client, repository, digest):
        statement = json.loads(base64.b64decode(json.loads(blob)["payload"]))
        found[statement["predicateType"]] = statement
    return found


def _spdx_and_cyclonedx_valid(statements: dict[str, dict[str, Any]], tmp: Path) -> None:
    spdx = statements["https://spdx.dev/Document"]["predicate"]
    assert_valid(spdx, statements["https://cyclonedx.org/bom"]["predicate"], tmp)


def _in_toto_valid(statement: dict[str, Any]) -> None:
    parsed = Statement.copy_from_pb(json_format.ParseDict(statement, statement_pb2.Statement()))
    parsed.validate()
    if statement["predicateType"] == "https://slsa.dev/provenance/v1":
        provenance = json_format.ParseDict(statement["predicate"], provenance_pb2.Provenance())
        for dependency in provenance.build_definition.resolved_dependencies:
            ResourceDescriptor.copy_from_pb(dependency).validate()
            if dependency.uri:
                parts = urlsplit(dependency.uri)
                assert parts.scheme and (parts.netloc or parts.path.startswith("/")), dependency


def test_sboms_and_statements_pass_the_fields_validators(
    secured: Path, registry: str, tmp_path: Path
) -> None:
    client = Client(registry, insecure=True)
    app = json.loads((record_path(secured, "app")).read_text())
    fib = json.loads((record_path(secured, "fib")).read_text())
    platform = _predicates(client, "tests/secured", app["platforms"][0]["digest"])
    _spdx_and_cyclonedx_valid(platform, tmp_path)
    wasm = _predicates(client, "tests/fib", fib["digest"])
    _spdx_and_cyclonedx_valid(wasm, tmp_path)
    for statement in [*platform.values(), *wasm.values(),
                      *_predicates(client, "tests/secured", app["digest"]).values()]:  # fmt: skip
        _in_toto_valid(statement)
    # The wasm SBOM describes the artifact, not a folder: its checksum, its compiler.
    bom = wasm["https://cyclonedx.org/bom"]["predicate"]
    root = bom["metadata"]["component"]
    assert root["hashes"] == [{"alg": "SHA-256", "content": fib["wasm_digest"].split(":")[1]}]
    assert root["purl"].startswith(f"pkg:oci/fib@{fib['digest']}")
    swift = subprocess.run(["/opt/swift/usr/bin/swiftc", "--version"], capture_output=True,
                           text=True, check=False).stdout  # fmt: skip
    version = re.search(r"Swift version (\S+)", swift)
    assert version is not None
    assert [c["purl"] for c in bom["components"]] == [f"pkg:generic/swift@{version.group(1)}"]
    document = wasm["https://spdx.dev/Document"]["predicate"]
    described = [p for p in document["packages"] if p["SPDXID"] in document["documentDescribes"]]
    assert described[0]["checksums"][0]["checksumValue"] == fib["wasm_digest"].split(":")[1]
    assert str(secured) not in json.dumps(wasm) and str(secured) not in json.dumps(platform)
    # The image's SBOM lists the plugin it bundles, with the same parts.
    image_bom = platform["https://cyclonedx.org/bom"]["predicate"]
    (plugin,) = [c for c in image_bom["components"] if c["name"] == "fib"]
    assert plugin["purl"] == root["purl"] and plugin["hashes"] == root["hashes"]
    assert [c["purl"] for c in plugin["components"]] == [c["purl"] for c in bom["components"]]
    image_spdx = platform["https://spdx.dev/Document"]["predicate"]
    assert "fib" in {p["name"] for p in image_spdx["packages"]}


def test_provenance_names_sources_bases_and_commands(secured: Path, registry: str) -> None:
    client = Client(registry, insecure=True)
    app = json.loads((record_path(secured, "app")).read_text())
    statement = _predicates(client, "tests/secured", app["digest"])[
        "https://slsa.dev/provenance/v1"
    ]
    definition = statement["predicate"]["buildDefinition"]
    assert re.fullmatch(r"doit( \S+)?", definition["externalParameters"]["command"])
    assert definition["internalParameters"]["builders"] == ["podman"]
    base = [d for d in definition["resolvedDependencies"] if d.get("uri", "").startswith("oci://")]
    busybox = client.head_manifest("fixtures/busybox", "1.36")
    assert base == [{"uri": f"oci://{registry}/fixtures/busybox@{busybox}",
                     "digest": {"sha256": str(busybox).split(":")[1]}}]  # fmt: skip


def test_base_annotation_names_a_manifest_the_registry_has(secured: Path, registry: str) -> None:
    client = Client(registry, insecure=True)
    app = json.loads((record_path(secured, "app")).read_text())
    base_index = client.get_manifest("fixtures/busybox", "1.36").json()
    for child in app["platforms"]:
        annotations = client.get_manifest("tests/secured", child["digest"]).json()["annotations"]
        digest = annotations["org.opencontainers.image.base.digest"]
        assert client.head_manifest("fixtures/busybox", digest) == digest
        (listed,) = [m for m in base_index["manifests"] if m["digest"] == digest]
        assert platform_of(listed) == child["platform"]


def test_verify_works_from_a_fresh_clone_and_by_name(secured: Path, tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(secured), str(clone))
    shutil.copytree(secured / "keys", clone / "keys", dirs_exist_ok=True)
    everything = run(clone, "syntra", "verify", "--all", "--json")
    assert everything.returncode == 0, everything.stdout
    assert {c["artifact"] for c in json.loads(everything.stdout)} == {"app", "fib"}
    by_name = run(clone, "syntra", "verify", "fib", "--json")
    assert by_name.returncode == 0 and json.loads(by_name.stdout)[0]["artifact"] == "fib"


def test_an_unreachable_registry_is_reported_as_such(secured: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    reference = f"127.0.0.1:{closed}/tests/secured:latest"
    done = run(secured, "syntra", "verify", reference, env={"SYNTRA_REGISTRY_TRIES": "1"})
    assert done.returncode != 0
    assert "not in the registry" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert re.search(r"cannot reach|unreachable|refused", done.stdout + done.stderr), done.stderr


def test_a_second_checkout_adds_nothing_to_the_registry(
    secured: Path, registry: str, tmp_path: Path
) -> None:
    """Two clones of one origin at different paths: the second one's build and supply
    find everything already there (same artifact, same SBOM bytes)."""
    client = Client(registry, insecure=True)
    attested = []
    for place in ("one/checkout", "elsewhere/deeper/checkout"):
        clone = tmp_path / place
        git(tmp_path, "clone", "-q", str(secured), str(clone))
        shutil.copytree(secured / "keys", clone / "keys", dirs_exist_ok=True)
        done = run(clone, "doit", "wasm:fib.publish", "supply:fib", env=PASSPHRASE)
        assert done.returncode == 0, done.stdout + done.stderr
        digest = json.loads((record_path(clone, "fib")).read_text())["digest"]
        att = client.get_manifest("tests/fib", attachment_tag(digest, "att"))
        attested.append((digest, att.digest, len(att.json()["layers"])))
    assert attested[0] == attested[1]


def test_the_ci_signing_steps_run_here(secured: Path, registry: str, tmp_path: Path) -> None:
    """The supply job of the generated workflow, its shell steps run as GitHub runs them:
    keys written from the repository variable and secret, then `syntra supply` and
    `syntra verify --all` in a fresh clone with the records the merge job hands over."""
    assert run(secured, "syntra", "ci").returncode == 0
    workflow = YAML(typ="safe").load((secured / ".github" / "workflows" / "docker.yml").read_text())
    steps = workflow["jobs"]["supply"]["steps"]
    clone = tmp_path / "runner"
    git(tmp_path, "clone", "-q", str(secured), str(clone))
    shutil.copytree(records_dir(secured), records_dir(clone))  # the artifacts
    env = {
        "PUBLIC_KEY": (secured / "keys" / "cosign.pub").read_text().strip(),
        "SIGNING_KEY": (secured / "keys" / "cosign.key").read_text().strip(),
        **PASSPHRASE,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    for step in [s for s in steps if "run" in s and s.get("name") != "Install Syntra"]:
        # The step's own env: as GitHub sets it, less the expressions only GitHub fills in
        # (the test's `env` stands in for those).
        literal = {k: str(v) for k, v in step.get("env", {}).items() if "${{" not in str(v)}
        done = subprocess.run(
            ["bash", "-e", "-c", step["run"]],
            cwd=clone,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, **literal, **env},
        )
        assert done.returncode == 0, f"{step['name']}: {done.stdout}{done.stderr}"
    assert (clone / "keys" / "cosign.key").stat().st_mode & 0o777 == 0o600
    assert (clone / "keys" / "cosign.pub").read_text() == (
        secured / "keys" / "cosign.pub"
    ).read_text()


# Registry commands, on what the pipeline pushed and signed ---------------------------


def _syntra_json(cwd: Path, *args: str) -> Any:
    done = run(cwd, "syntra", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_inspect_digest_and_tags_agree_with_skopeo(
    secured: Path, registry: str, tmp_path: Path
) -> None:
    app = json.loads((record_path(secured, "app")).read_text())
    tag = f"{registry}/tests/secured:{app['tags'][0]}"
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{tag}")
    assert _syntra_json(secured, "digest", tag)["digest"] == "sha256:" + hashlib.sha256(
        raw.encode()
    ).hexdigest() == app["digest"]  # fmt: skip
    found = _syntra_json(secured, "inspect", tag)
    assert [(p["platform"], p["digest"]) for p in found["platforms"]] == [
        (p["platform"], p["digest"]) for p in app["platforms"]
    ]
    arm = _syntra_json(secured, "inspect", tag, "--platform", "linux/arm64")["platforms"]
    assert [p["platform"] for p in arm] == ["linux/arm64"]
    assert arm[0]["labels"]["org.opencontainers.image.title"] == "app"
    outside = tmp_path / "anywhere"  # no syntra.yaml: a plain reference and --insecure
    outside.mkdir()
    tags = _syntra_json(outside, "tags", f"{registry}/tests/secured", "--insecure")
    assert set(app["tags"]) <= set(tags)
    wrong = run(outside, "syntra", "inspect", tag, "--platform", "linux/s390x", "--insecure")
    assert wrong.returncode == 2 and "has no linux/s390x (it has linux/amd64, linux/arm64)" in (
        wrong.stderr
    )


def test_tree_shows_signatures_attestations_and_referrers(secured: Path, registry: str) -> None:
    app = json.loads((record_path(secured, "app")).read_text())
    found = _syntra_json(secured, "tree", f"{registry}/tests/secured@{app['digest']}")
    assert found["signatures"]["layers"]
    assert "https://slsa.dev/provenance/v1" in found["attestations"]["predicateTypes"]
    for child in found["platforms"]:
        kinds = set(child["attestations"]["predicateTypes"])
        assert {"https://spdx.dev/Document", "https://cyclonedx.org/bom"} <= kinds
        assert {r["artifactType"] for r in child["referrers"]} == {"application/vnd.in-toto+json"}
    text = run(secured, "syntra", "tree", f"{registry}/tests/secured@{app['digest']}").stdout
    count = len(found["signatures"]["layers"])  # ours, and cosign's when that test ran first
    assert f"signatures ({attachment_tag(app['digest'], 'sig')}): {count}" in text
    assert text.startswith(f"{registry}/tests/secured@{app['digest']}\n")


def test_pull_writes_the_wasm_oras_pulls(secured: Path, registry: str, tmp_path: Path) -> None:
    fib = json.loads((record_path(secured, "fib")).read_text())
    reference = f"{registry}/tests/fib@{fib['digest']}"
    ours = _syntra_json(secured, "pull", reference, str(tmp_path / "ours"))
    assert Path(ours["file"]).name == "fib.wasm"
    data = Path(ours["file"]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == fib["wasm_digest"]
    oras = REPO / ".cache" / "trixie" / "oras"
    theirs = subprocess.run([str(oras), "pull", "--plain-http", reference, "-o",
                             str(tmp_path / "theirs")], capture_output=True, text=True)  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    assert (tmp_path / "theirs" / "fib.wasm").read_bytes() == data


def test_delete_refuses_a_tagged_manifest_unless_forced(secured: Path, registry: str) -> None:
    client = Client(registry, insecure=True)
    fib = json.loads((record_path(secured, "fib")).read_text())
    manifest = client.get_manifest("tests/fib", fib["digest"])
    for blob in manifest.children():
        client.push_blob("tests/doomed", Blob.of(client.get_blob("tests/fib", blob["digest"])))
    client.put_manifest("tests/doomed", "v1", manifest)
    doomed = f"{registry}/tests/doomed@{manifest.digest}"
    refused = run(secured, "syntra", "delete", doomed)
    assert refused.returncode == 2 and refused.stderr == (
        f"{registry}/tests/doomed@{manifest.digest} is still tagged (v1); "
        "delete the tags first, or --force\n"
    )
    untag = run(secured, "syntra", "delete", f"{registry}/tests/doomed:v1")
    assert untag.returncode == 4 and "does not allow deleting this tag" in untag.stderr  # 2.8
    forced = run(secured, "syntra", "delete", doomed, "--force")
    assert forced.returncode == 0, forced.stderr
    assert client.find_manifest("tests/doomed", manifest.digest) is None
    assert client.find_manifest("tests/fib", fib["digest"]) is not None


def test_copy_keeps_digests_and_signatures_across_registries_and_archives(
    secured: Path, registry: str, tmp_path: Path
) -> None:
    app = json.loads((record_path(secured, "app")).read_text())
    key = str(secured / "keys" / "cosign.pub")
    with serve() as second:
        source = f"{registry}/tests/secured@{app['digest']}"
        copied = _syntra_json(secured, "copy", source, f"{second}/mirror/app:1.0", "--referrers",
                              "--insecure")  # fmt: skip
        assert copied["digest"] == app["digest"]
        assert _syntra_json(secured, "digest", f"{second}/mirror/app:1.0", "--insecure")[
            "digest"
        ] == app["digest"]  # fmt: skip
        # cosign finds the signatures and attestations that came along (they name the
        # source repository, which cosign does not hold against the copy).
        flags = ["--key", key, "--insecure-ignore-tlog=true", "--allow-http-registry"]
        child = app["platforms"][0]["digest"]
        assert cosign("verify", *flags, f"{second}/mirror/app@{app['digest']}").returncode == 0
        attested = cosign("verify-attestation", *flags, "--type", "spdxjson",
                          f"{second}/mirror/app@{child}")  # fmt: skip
        assert attested.returncode == 0, attested.stderr
        # syntra verify at the destination; skopeo too, told where the copy came from.
        there = run(secured, "syntra", "verify", f"{second}/mirror/app@{app['digest']}",
                    "--insecure")  # fmt: skip
        assert there.returncode == 0, there.stdout
        assert _skopeo_accepts(second, f"mirror/app@{child}", Path(key), tmp_path,
                               signed_as=f"{registry}/tests/secured")  # fmt: skip
        # --all-tags: every tag, digests kept.
        _syntra_json(secured, "copy", f"{registry}/tests/secured:latest", f"{second}/every/app",
                     "--all-tags", "--insecure")  # fmt: skip
        mirrored = Client(second, insecure=True)
        for tag in app["tags"]:
            assert mirrored.head_manifest("every/app", tag) == app["digest"]
        # Through an OCI archive and back: the same index digest; skopeo reads the archive.
        archive = tmp_path / "app.tar"
        _syntra_json(secured, "copy", source, f"oci-archive:{archive}:1.0")
        raw = skopeo("inspect", "--raw", f"oci-archive:{archive}:1.0")
        assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == app["digest"]
        back = _syntra_json(secured, "copy", f"oci-archive:{archive}:1.0",
                            f"{second}/back/app:1.0", "--insecure")  # fmt: skip
        assert back["digest"] == app["digest"]
        again = tmp_path / "again.tar"
        _syntra_json(secured, "copy", source, f"oci-archive:{again}:1.0")
        assert again.read_bytes() == archive.read_bytes()  # same bytes every time
        # docker-archive: one platform (this host's); podman loads it with that image ID.
        saved = tmp_path / "docker.tar"
        _syntra_json(secured, "copy", source, f"docker-archive:{saved}")
        arm = tmp_path / "arm64.tar"
        _syntra_json(secured, "copy", source, f"docker-archive:{arm}", "--platform", "linux/arm64")
        assert arm.read_bytes() != saved.read_bytes()
        host = next(p for p in app["platforms"] if p["platform"] == "linux/amd64")
        config = json.loads(
            Client(registry, insecure=True).get_manifest("tests/secured", host["digest"]).data
        )["config"]["digest"]
        loaded = subprocess.run(["podman", "load", "-q", "-i", str(saved)], capture_output=True,
                                text=True, check=False)  # fmt: skip
        assert loaded.returncode == 0, loaded.stderr
        assert loaded.stdout.strip() == f"Loaded image: {config}", loaded.stdout  # the image ID


def test_sbom_comes_out_of_a_verified_attestation_only(
    secured: Path, registry: str, tmp_path: Path
) -> None:
    app = json.loads((record_path(secured, "app")).read_text())
    reference = f"{registry}/tests/secured@{app['digest']}"
    spdx = run(secured, "syntra", "sbom", reference, "--platform", "linux/arm64")
    assert spdx.returncode == 0, spdx.stderr
    assert json.loads(spdx.stdout)["spdxVersion"] == "SPDX-2.3"
    bom = run(secured, "syntra", "sbom", reference, "--platform", "linux/amd64",
              "--format", "cyclonedx-json")  # fmt: skip
    assert json.loads(bom.stdout)["bomFormat"] == "CycloneDX"
    which = run(secured, "syntra", "sbom", reference)
    assert which.returncode == 2 and "name one platform with --platform" in which.stderr
    assert cosign("generate-key-pair", "--output-key-prefix", str(tmp_path / "x")).returncode == 0
    foreign = run(secured, "syntra", "sbom", reference, "--platform", "linux/arm64", "--key",
                  str(tmp_path / "x.pub"))  # fmt: skip
    assert foreign.returncode == 1 and "no spdx-json SBOM attestation that verifies" in (
        foreign.stderr
    )


def test_promote_copies_signs_and_verifies_in_a_second_registry(
    secured: Path, registry: str, tmp_path: Path
) -> None:
    app = json.loads((record_path(secured, "app")).read_text())
    with serve() as second:
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", str(secured), str(clone))
        shutil.copytree(secured / "keys", clone / "keys", dirs_exist_ok=True)
        shutil.copytree(records_dir(secured), records_dir(clone))
        config = (clone / "syntra.yaml").read_text()
        (clone / "syntra.yaml").write_text(
            config.replace(
                "registries: {", f"registries: {{prod: {{url: '{second}', insecure: true}}, "
            )
            + "defaults: {registry: local}\n"
        )
        for name in ("app", "fib"):
            done = run(clone, "syntra", "promote", name, "--to", "prod", env=PASSPHRASE)
            assert done.returncode == 0, done.stdout + done.stderr
        there = Client(second, insecure=True)
        tags = [t for t in there.tags("tests/secured") if not t.startswith("sha256-")]
        assert tags and {there.head_manifest("tests/secured", t) for t in tags} == {app["digest"]}
        verified = run(clone, "syntra", "verify", f"{second}/tests/secured@{app['digest']}")
        assert verified.returncode == 0, verified.stdout
        public = clone / "keys" / "cosign.pub"
        child = app["platforms"][0]["digest"]
        assert _skopeo_accepts(second, f"tests/secured@{child}", public, tmp_path)  # its own name
        signatures = there.get_manifest("tests/secured", attachment_tag(app["digest"], "sig"))
        again = run(clone, "syntra", "promote", "app", "--to", "prod", env=PASSPHRASE)
        assert again.returncode == 0, again.stderr
        after = there.get_manifest("tests/secured", attachment_tag(app["digest"], "sig"))
        assert after.digest == signatures.digest  # a re-run changes nothing
        assert (
            cosign("generate-key-pair", "--output-key-prefix", str(tmp_path / "x")).returncode == 0
        )
        shutil.copy(tmp_path / "x.pub", public)  # the source no longer verifies
        refused = run(clone, "syntra", "promote", "fib", "--to", "prod", env=PASSPHRASE)
        assert refused.returncode == 1 and "the source does not verify" in refused.stderr


def test_two_registries_get_the_same_digests_each_signed_for_its_own_name(
    tmp_path: Path, registry: str, base: str
) -> None:
    """`registry: [private, local]`: built once, pushed to the private (htpasswd) registry,
    the same digests copied to the second; signatures and attestations in each name
    that repository; `verify --all` checks both; skopeo and oras read the second."""
    htpasswd = tmp_path / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(htpasswd), "ci", "pa55word"], check=True,
                   capture_output=True)  # fmt: skip
    with serve(htpasswd=htpasswd) as private:
        root = make_project(
            tmp_path / "repo", registry, base,
            "    repository: tests/mirrored\n    platforms: [linux/amd64]\n"
            "    registry: [private, local]\n"
            "wasm:\n  fib:\n    language: swift\n    source: guest\n"
            "    repository: tests/mirrored-fib\n    registry: [private, local]\n" + SIGNING,
        )  # fmt: skip
        credentials = "credentials: {username_env: REG_USER, password_env: REG_PASS}"
        config = (root / "syntra.yaml").read_text()
        entry = f"private: {{url: '{private}', insecure: true, {credentials}}}"
        (root / "syntra.yaml").write_text(
            config.replace("registries: {", f"registries: {{{entry}, ")
        )
        (root / "guest").mkdir()
        (root / "guest" / "Fib.swift").write_text((SHOWCASE / "Swift" / "Fib.swift").read_text())
        commit(root, "two registries")
        env = {**PASSPHRASE, "REG_USER": "ci", "REG_PASS": "pa55word"}
        assert run(root, "syntra", "keygen", env=env).returncode == 0
        done = run(root, "doit", env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        app = json.loads((record_path(root, "app")).read_text())
        fib = json.loads((record_path(root, "fib")).read_text())
        mirror = Client(registry, insecure=True)
        for tag in app["tags"]:
            assert mirror.head_manifest("tests/mirrored", tag) == app["digest"]
        checks = json.loads(run(root, "syntra", "verify", "--all", "--json", env=env).stdout)
        assert {(c["artifact"], c["reference"].split("/")[0]) for c in checks} == {
            (name, host) for name in ("app", "fib") for host in (private, registry)
        }
        assert all(c["ok"] for c in checks), checks
        public = root / "keys" / "cosign.pub"
        child = app["platforms"][0]["digest"]
        assert _skopeo_accepts(registry, f"tests/mirrored@{child}", public, tmp_path)
        oras = REPO / ".cache" / "trixie" / "oras"
        copied = f"{registry}/tests/mirrored-fib@{fib['digest']}"
        pulled = subprocess.run(
            [str(oras), "pull", "--plain-http", copied, "-o", str(tmp_path / "pulled")],
            capture_output=True, text=True,
        )  # fmt: skip
        assert pulled.returncode == 0, pulled.stderr
        data = (tmp_path / "pulled" / "fib.wasm").read_bytes()
        assert "sha256:" + hashlib.sha256(data).hexdigest() == fib["wasm_digest"]
