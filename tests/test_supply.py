"""Supply chain for real, key mode: syft SBOMs, cosign-format signatures that skopeo
accepts under a sigstoreSigned policy (and OpenSSL verifies byte for byte), provenance,
`syntra verify`, and tampering that all of them reject."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from syntra.oci import INDEX, MANIFEST, Blob, Client, Document
from syntra.supply.attach import attachment_tag
from tests.conftest import REPO, run, skopeo
from tests.oci import validate
from tests.test_images import make_project
from tests.test_wasm import SHOWCASE

PASSPHRASE = {"SYNTRA_KEY_PASSPHRASE": "correct horse battery staple"}
SIGNING = (
    "supply_chain:\n  sbom: [spdx-json, cyclonedx-json]\n"
    "  signing: {mode: key, key: keys/cosign.key}\n"
)


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, registry: str, base: str) -> Path:
    """A project with an image and a Swift guest, pushed, signed and attested once."""
    root = make_project(
        tmp_path_factory.mktemp("supply") / "repo", registry, base,
        "    repository: tests/secured\n    platforms: [linux/amd64, linux/arm64]\n"
        "wasm:\n  fib:\n    language: swift\n    source: guest\n    repository: tests/fib\n"
        "    tests: [{call: fib, args: [10], expect: 55}]\n" + SIGNING,
    )  # fmt: skip
    (root / "guest").mkdir()
    (root / "guest" / "Fib.swift").write_text((SHOWCASE / "Swift" / "Fib.swift").read_text())
    keygen = run(root, "syntra", "keygen", env=PASSPHRASE)
    assert keygen.returncode == 0, keygen.stderr
    done = run(root, "doit", env=PASSPHRASE)
    assert done.returncode == 0, done.stdout + done.stderr
    return root


SKOPEO_SIGSTORE = REPO / ".cache" / "trixie" / "skopeo"


def _skopeo_accepts(registry: str, image: str, public: Path, tmp: Path) -> bool:
    """skopeo copies `image` only if a `sigstoreSigned` policy with our public key accepts
    its cosign signature (Debian 13's skopeo: Debian 12's has sigstore disabled)."""
    assert SKOPEO_SIGSTORE.exists(), "run .ci/setup: it fetches skopeo with sigstore support"
    repository = re.split(r"[@:]", image, maxsplit=1)[0]
    requirement = {
        "type": "sigstoreSigned",
        "keyPath": str(public),
        "signedIdentity": {"type": "matchRepository"},
    }
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
        (secured / "keys" / "cosign.key").read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY")
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
    record = json.loads((secured / ".syntra" / "out" / "app.json").read_text())
    wasm = json.loads((secured / ".syntra" / "out" / "fib.json").read_text())
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
    record = json.loads((secured / ".syntra" / "out" / "app.json").read_text())
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
    record = json.loads((secured / ".syntra" / "out" / "app.json").read_text())
    child = record["platforms"][1]["digest"]
    before = _sbom_blobs(client, "tests/secured", child)
    envelope = json.loads(before[0])
    assert json.loads(base64.b64decode(envelope["payload"]))["predicateType"] in (
        "https://spdx.dev/Document", "https://cyclonedx.org/bom",
    )  # fmt: skip
    (secured / ".syntra" / "doit.json").unlink()  # forget: the stage runs again
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
    (secured / ".syntra" / "doit.json").unlink()
    bad = run(secured, "doit", "supply:fib", env={"SYNTRA_KEY_PASSPHRASE": "nope"})
    expected = "keys/cosign.key: cannot decrypt it with the passphrase in SYNTRA_KEY_PASSPHRASE"
    assert f"supply fib: {expected}" in bad.stdout
    assert "nope" not in bad.stdout.replace("supply", "")
