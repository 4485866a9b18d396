"""Keyless signing with Sigstore, through sigstore-python.

In CI the job's OIDC identity (GitHub Actions: `permissions: id-token: write`) buys a
short-lived Fulcio certificate (one per supply task); every statement is signed as a
DSSE envelope and logged in Rekor, and the resulting Sigstore bundle is stored as an OCI
referrer of the digest it is about, as cosign lays bundles out. A signature is a
statement with cosign's signing predicate (`https://sigstore.dev/cosign/sign/v1`); SBOMs
and provenance are statements with their own predicates.

Verification needs no key: the bundle's certificate must chain to the trust root, be
logged (inclusion proof, signed checkpoint and entry timestamp) and name the configured
issuer and an identity matching the configured pattern.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
from cryptography.x509 import (
    Certificate,
    RFC822Name,
    SubjectAlternativeName,
    UniformResourceIdentifier,
)
from sigstore._internal.fulcio.client import ExpiredCertificate, FulcioClientError
from sigstore._internal.rekor import RekorClientError
from sigstore._internal.timestamp import TimestampError
from sigstore.dsse import Statement
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError
from sigstore.models import Bundle, ClientTrustConfig
from sigstore.oidc import ExpiredIdentity, IdentityError, IdentityToken, detect_credential
from sigstore.sign import Signer as CertifiedSigner
from sigstore.sign import SigningContext
from sigstore.verify import Verifier
from sigstore.verify.policy import AllOf, OIDCIssuerV2

from syntra.config.model import Signing
from syntra.errors import SyntraError
from syntra.supply.attach import Signer

BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json"
SIGSTORE_FAILURES = (
    SigstoreError,  # trust root, TUF, network, identity, bundles
    ExpiredIdentity,
    ExpiredCertificate,
    FulcioClientError,
    RekorClientError,
    TimestampError,
    requests.RequestException,
    ValueError,  # a certificate or response that does not parse
    OSError,
)
"""What Fulcio, Rekor, the timestamp authority and the trust root fail with."""
SIGNATURE_PREDICATE = "https://sigstore.dev/cosign/sign/v1"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def trust_config(root: Path, signing: Signing) -> ClientTrustConfig:
    """The configured trust root and services, or Sigstore's public-good instance."""
    try:
        if signing.trust_config:
            return ClientTrustConfig.from_json((root / signing.trust_config).read_text())
        return ClientTrustConfig.production()
    except (OSError, ValueError, SigstoreError) as exc:
        where = signing.trust_config or "the public-good instance (TUF)"
        raise SyntraError(f"Sigstore trust root from {where}: {_one_line(exc)}") from None


def identity_token() -> IdentityToken:
    """The ambient OIDC token of the CI job; never printed."""
    try:
        raw = detect_credential()
        if raw is None:
            raise SyntraError(
                "keyless signing needs an OIDC identity (GitHub Actions with "
                "`permissions: id-token: write`); none is available here"
            )
        return IdentityToken(raw)
    except IdentityError as exc:
        raise SyntraError(f"keyless signing: {_one_line(exc)}") from None


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """Fulcio, Rekor and the trust root fail in many shapes (sigstore's own errors, HTTP
    errors, an expired certificate or token): each becomes one line."""
    try:
        yield
    except SIGSTORE_FAILURES as exc:
        raise SyntraError(f"keyless signing: {_one_line(exc)}") from None


def statement_signer(root: Path, signing: Signing) -> Signer:
    """Signs in-toto statements (JSON bytes) into Sigstore bundles (JSON bytes).

    One certificate serves the whole supply task, so callers prepare every statement
    first (SBOM scans can be slow; the certificate lives ten minutes). The identity
    comes first so that, outside CI, the answer is about the missing identity rather
    than the network."""
    token = identity_token()
    config = trust_config(root, signing)
    with _one_line_errors():
        signer = CertifiedSigner(token, SigningContext.from_trust_config(config))

    def sign(statement: bytes) -> bytes:
        with _one_line_errors():
            return signer.sign_dsse(Statement(statement)).to_json().encode()

    return sign


class IdentityPattern:
    """Like cosign's `--certificate-identity-regexp`: a SAN must match in full."""

    def __init__(self, pattern: str) -> None:
        self.pattern = re.compile(pattern)

    def verify(self, cert: Certificate) -> None:
        names = cert.extensions.get_extension_for_class(SubjectAlternativeName).value
        found = [
            *names.get_values_for_type(UniformResourceIdentifier),
            *names.get_values_for_type(RFC822Name),
        ]
        if not any(self.pattern.fullmatch(name) for name in found):
            raise VerificationError(
                f"signed by {', '.join(found) or 'nobody'}, not by /{self.pattern.pattern}/"
            )


class BundleVerifier:
    """Opens bundles: the statement inside, once everything about it verifies."""

    def __init__(self, root: Path, signing: Signing) -> None:
        assert signing.identity is not None
        self.verifier = Verifier(trusted_root=trust_config(root, signing).trusted_root)
        self.policy = AllOf([OIDCIssuerV2(signing.issuer), IdentityPattern(signing.identity)])

    def statement(self, blob: bytes) -> dict[str, Any]:
        """The verified in-toto statement of a bundle; raises ValueError otherwise."""
        try:
            bundle = Bundle.from_json(blob)
            payload_type, payload = self.verifier.verify_dsse(bundle, self.policy)
            if payload_type != "application/vnd.in-toto+json":
                raise ValueError(f"payload type {payload_type}")
            statement = json.loads(payload)
            if not isinstance(statement, dict):
                raise ValueError("the statement is not an object")
            return statement
        except (SigstoreError, ValueError, KeyError) as exc:
            raise ValueError(_one_line(exc)) from None
