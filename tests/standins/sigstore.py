"""A stand-in for the three services keyless signing talks to, for contract tests:
GitHub's OIDC token endpoint, Fulcio (`/api/v2/signingCert`) and Rekor v1
(`/api/v1/log/entries`), on one loopback port.

Nothing here is trusted by the client on faith: sigstore-python checks the SCT in
every certificate against the CT key, and `syntra verify` checks the certificate chain,
the Merkle inclusion proof, the signed checkpoint and the signed entry timestamp
against the trust root this stand-in writes (`trust_config`), exactly as it does for
the public-good instance. Every request is recorded in `requests` for the tests'
assertions on its shape.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
REQUEST_TOKEN = "request-token-for-the-job"
SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
FULCIO_ISSUER = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
FULCIO_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
FULCIO_SOURCE_REPOSITORY = ObjectIdentifier("1.3.6.1.4.1.57264.1.12")


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _spki(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _log_id(key: ec.EllipticCurvePrivateKey) -> bytes:
    return hashlib.sha256(_spki(key)).digest()


def _der_utf8(text: str) -> bytes:
    data = text.encode()
    assert len(data) < 128
    return bytes([0x0C, len(data)]) + data


def _der_octets(data: bytes) -> bytes:
    if len(data) < 128:
        return bytes([0x04, len(data)]) + data
    size = len(data).to_bytes((len(data).bit_length() + 7) // 8, "big")
    return bytes([0x04, 0x80 | len(size)]) + size + data


def _leaf(body: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + body).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two below `size` (RFC 6962, section 2.1)."""
    return 1 << ((size - 1).bit_length() - 1)


def _root(leaves: list[bytes]) -> bytes:
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return _node(_root(leaves[:k]), _root(leaves[k:]))


def _path(index: int, leaves: list[bytes]) -> list[bytes]:
    """The audit path of leaf `index`, leaf end first (RFC 6962, section 2.1.1)."""
    if len(leaves) == 1:
        return []
    k = _split(len(leaves))
    if index < k:
        return [*_path(index, leaves[:k]), _root(leaves[k:])]
    return [*_path(index - k, leaves[k:]), _root(leaves[:k])]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


class Sigstore:
    """The services, their keys and the trust root that names them."""

    def __init__(self, identity: str, repository: str) -> None:
        self.identity = identity
        self.repository = repository
        self.oidc_key, self.ca_key, self.ct_key, self.rekor_key = (_key() for _ in range(4))
        self.requests: list[Recorded] = []
        self.refuse_certificates = False  # Fulcio answers 401, as for a token it rejects
        self.leaves: list[bytes] = []
        self.lock = threading.Lock()
        now = datetime.datetime.now(datetime.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stand-in sigstore")])
        ski = x509.SubjectKeyIdentifier.from_public_key(self.ca_key.public_key())
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .add_extension(_usage(key_cert_sign=True), critical=True)
            .add_extension(ski, critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski),
                critical=False,
            )
            .sign(self.ca_key, hashes.SHA256())
        )
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def github_env(self) -> dict[str, str]:
        """What a GitHub Actions job with `id-token: write` has in its environment."""
        return {
            "GITHUB_ACTIONS": "true",
            "ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/oidc/token?api-version=2.0",
            "ACTIONS_ID_TOKEN_REQUEST_TOKEN": REQUEST_TOKEN,
        }

    def trust_config(self) -> dict[str, Any]:
        """A sigstore ClientTrustConfig: this instance's keys and URLs."""
        start = {"start": "2020-01-01T00:00:00Z"}

        def log(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
            return {
                "baseUrl": self.url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": base64.b64encode(_spki(key)).decode(),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": start,
                },
                "logId": {"keyId": base64.b64encode(_log_id(key)).decode()},
            }

        def service(url: str) -> dict[str, Any]:
            return {"url": url, "majorApiVersion": 1, "validFor": start, "operator": "stand-in"}

        ca_der = self.ca.public_bytes(serialization.Encoding.DER)
        return {
            "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
            "trustedRoot": {
                "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                "tlogs": [log(self.rekor_key)],
                "certificateAuthorities": [
                    {
                        "subject": {"organization": "stand-in", "commonName": "stand-in"},
                        "uri": self.url,
                        "certChain": {
                            "certificates": [{"rawBytes": base64.b64encode(ca_der).decode()}]
                        },
                        "validFor": start,
                    }
                ],
                "ctlogs": [log(self.ct_key)],
                "timestampAuthorities": [],
            },
            "signingConfig": {
                "mediaType": "application/vnd.dev.sigstore.signingconfig.v0.2+json",
                "caUrls": [service(self.url)],
                "oidcUrls": [],
                "rekorTlogUrls": [service(self.url)],
                "tsaUrls": [],
                "rekorTlogConfig": {"selector": "ANY"},
                "tsaConfig": {"selector": "ANY"},
            },
        }

    def token(self) -> str:
        """A GitHub Actions ID token for `identity`, signed by the stand-in issuer."""
        now = int(time.time())
        workflow_ref = self.identity.removeprefix("https://github.com/")
        claims = {
            "iss": GITHUB_ISSUER,
            "aud": "sigstore",
            "sub": f"repo:{self.repository}:ref:refs/heads/main",
            "repository": self.repository,
            "job_workflow_ref": workflow_ref,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        return jwt.encode(claims, self.oidc_key, algorithm="ES256")

    def certificate(self, authorization: str, csr_pem: bytes) -> list[str] | None:
        """Fulcio: a 10-minute code-signing certificate for the token's workflow,
        with an embedded SCT; None when the token or the CSR does not check out."""
        try:
            claims = jwt.decode(
                authorization.removeprefix("Bearer "),
                self.oidc_key.public_key(),
                algorithms=["ES256"],
                audience="sigstore",
                issuer=GITHUB_ISSUER,
            )
        except jwt.PyJWTError:
            return None
        csr = x509.load_pem_x509_csr(csr_pem)
        if not csr.is_signature_valid:
            return None
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.ca.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(seconds=30))
            .not_valid_after(now + datetime.timedelta(minutes=10))
            .add_extension(_usage(digital_signature=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), False)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(csr.public_key()), critical=False
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.ca_key.public_key()),
                critical=False,
            )
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.UniformResourceIdentifier(
                            f"https://github.com/{claims['job_workflow_ref']}"
                        )
                    ]
                ),
                critical=True,
            )
            .add_extension(x509.UnrecognizedExtension(FULCIO_ISSUER, claims["iss"].encode()), False)
            .add_extension(
                x509.UnrecognizedExtension(FULCIO_ISSUER_V2, _der_utf8(claims["iss"])), False
            )
            .add_extension(
                x509.UnrecognizedExtension(
                    FULCIO_SOURCE_REPOSITORY,
                    _der_utf8(f"https://github.com/{claims['repository']}"),
                ),
                False,
            )
        )
        # The SCT signs the certificate without its SCT list, so build it once with a
        # placeholder list, sign that "precertificate", then build it with the real list.
        placeholder = builder.add_extension(
            x509.UnrecognizedExtension(SCT_LIST, _der_octets(b"\x00\x00")), False
        ).sign(self.ca_key, hashes.SHA256())
        tbs = placeholder.tbs_precertificate_bytes
        millis = int(time.time() * 1000)
        signed = struct.pack(
            f"!BBQH32sBBB{len(tbs)}sH",
            0, 0, millis, 1, _log_id(self.ca_key), *len(tbs).to_bytes(3, "big"), tbs, 0,
        )  # fmt: skip
        signature = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        sct = (
            bytes([0])
            + _log_id(self.ct_key)
            + struct.pack("!QH", millis, 0)
            + struct.pack("!BBH", 4, 3, len(signature))
            + signature
        )
        listed = struct.pack("!H", len(sct)) + sct
        sct_list = struct.pack("!H", len(listed)) + listed
        cert = builder.add_extension(
            x509.UnrecognizedExtension(SCT_LIST, _der_octets(sct_list)), False
        ).sign(self.ca_key, hashes.SHA256())
        return [c.public_bytes(serialization.Encoding.PEM).decode() for c in (cert, self.ca)]

    def integrate(self, proposed: dict[str, Any]) -> dict[str, Any]:
        """Rekor v1: log a DSSE entry, and answer with its inclusion proof, a signed
        checkpoint and a signed entry timestamp."""
        content = proposed["spec"]["proposedContent"]
        envelope = json.loads(content["envelope"])
        payload = base64.b64decode(envelope["payload"])
        body = rfc8785.dumps(
            {
                "apiVersion": "0.0.1",
                "kind": "dsse",
                "spec": {
                    "envelopeHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(content["envelope"].encode()).hexdigest(),
                    },
                    "payloadHash": {
                        "algorithm": "sha256",
                        "value": hashlib.sha256(payload).hexdigest(),
                    },
                    "signatures": [
                        {"signature": s["sig"], "verifier": content["verifiers"][0]}
                        for s in envelope["signatures"]
                    ],
                },
            }
        )
        with self.lock:
            self.leaves.append(_leaf(body))
            index, leaves = len(self.leaves) - 1, list(self.leaves)
        root = _root(leaves)
        log_id = _log_id(self.rekor_key)
        note = f"stand-in rekor - 1\n{len(leaves)}\n{base64.b64encode(root).decode()}\n"
        note_signature = self.rekor_key.sign(note.encode(), ec.ECDSA(hashes.SHA256()))
        signed_note = base64.b64encode(log_id[:4] + note_signature).decode()
        integrated = int(time.time())
        encoded_body = base64.b64encode(body).decode()
        promise = rfc8785.dumps(
            {
                "body": encoded_body,
                "integratedTime": integrated,
                "logID": log_id.hex(),
                "logIndex": index,
            }
        )
        entry_timestamp = self.rekor_key.sign(promise, ec.ECDSA(hashes.SHA256()))
        return {
            hashlib.sha256(body).hexdigest(): {
                "body": encoded_body,
                "integratedTime": integrated,
                "logID": log_id.hex(),
                "logIndex": index,
                "verification": {
                    "inclusionProof": {
                        "checkpoint": f"{note}\n\u2014 stand-in-rekor {signed_note}\n",
                        "hashes": [h.hex() for h in _path(index, leaves)],
                        "logIndex": index,
                        "rootHash": root.hex(),
                        "treeSize": len(leaves),
                    },
                    "signedEntryTimestamp": base64.b64encode(entry_timestamp).decode(),
                },
            }
        }


def _usage(*, digital_signature: bool = False, key_cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=key_cert_sign,
        crl_sign=key_cert_sign, encipher_only=False, decipher_only=False,
    )  # fmt: skip


def _handler(sigstore: Sigstore) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _record(self, body: Any) -> Recorded:
            url = urllib.parse.urlsplit(self.path)
            recorded = Recorded(
                self.command, url.path, urllib.parse.parse_qs(url.query),
                {k.lower(): v for k, v in self.headers.items()}, body,
            )  # fmt: skip
            sigstore.requests.append(recorded)
            return recorded

        def do_GET(self) -> None:
            asked = self._record(None)
            if asked.path != "/oidc/token":
                return self._answer(404, {"message": "not found"})
            if asked.headers.get("authorization") != f"bearer {REQUEST_TOKEN}":
                return self._answer(401, {"message": "bad request token"})
            self._answer(200, {"value": sigstore.token()})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            asked = self._record(json.loads(self.rfile.read(length)))
            if asked.path == "/api/v2/signingCert":
                csr = base64.b64decode(asked.body["certificateSigningRequest"])
                chain = None
                if not sigstore.refuse_certificates:
                    chain = sigstore.certificate(asked.headers.get("authorization", ""), csr)
                if chain is None:
                    return self._answer(401, {"code": 401, "message": "unauthenticated"})
                return self._answer(
                    201, {"signedCertificateEmbeddedSct": {"chain": {"certificates": chain}}}
                )
            if asked.path == "/api/v1/log/entries" and asked.body.get("kind") == "dsse":
                return self._answer(201, sigstore.integrate(asked.body))
            self._answer(400, {"code": 400, "message": "unsupported entry"})

    return Handler


def write_trust_config(sigstore: Sigstore, path: Path) -> Path:
    path.write_text(json.dumps(sigstore.trust_config(), indent=2))
    return path
