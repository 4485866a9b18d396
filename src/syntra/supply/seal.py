"""Two ways to sign what was pushed, behind one narrow interface.

- `KeySeal` (mode `key`): cosign's key-based layout: a simple-signing payload in
  `sha256-<hex>.sig`, DSSE attestations in `sha256-<hex>.att` and as OCI referrers.
- `BundleSeal` (mode `keyless`): every statement, the signature included, becomes a
  Sigstore bundle stored as an OCI referrer (cosign's bundle layout).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Protocol

from syntra.config import Loaded
from syntra.formats import canonical_json
from syntra.oci import digest_of
from syntra.supply import keys
from syntra.supply.attach import (
    DSSE,
    IN_TOTO,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING,
    Attachments,
    Layer,
    Signer,
    attachment_tag,
    envelope,
    simple_signing,
    statement,
)

TITLE = "org.opencontainers.image.title"


@dataclass(frozen=True)
class Subject:
    digest: str
    media_type: str
    size: int
    platform: str | None = None
    top: bool = False

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


class Seal(Protocol):
    def sign(self, subject: Subject) -> None: ...

    def attest(self, subject: Subject, predicate_type: str, predicate: Any) -> None: ...


@dataclass(frozen=True)
class KeySeal:
    attachments: Attachments
    identity: str
    sign_bytes: Signer

    def sign(self, subject: Subject) -> None:
        payload = simple_signing(self.identity, subject.digest)
        signature = base64.b64encode(self.sign_bytes(payload)).decode()
        layer = Layer(payload, SIMPLE_SIGNING, {SIGNATURE_ANNOTATION: signature})
        self.attachments.add(subject.digest, "sig", layer)

    def attest(self, subject: Subject, predicate_type: str, predicate: Any) -> None:
        claim = statement(self.identity, subject.digest, predicate_type, predicate)
        # cosign's own `.att` layers carry an empty signature annotation (the signature
        # is inside the envelope); `cosign verify-attestation` refuses layers without it.
        annotations = {"predicateType": predicate_type, SIGNATURE_ANNOTATION: ""}
        layer = Layer(envelope(claim, self.sign_bytes), DSSE, annotations)
        self.attachments.add(subject.digest, "att", layer)
        self.attachments.refer(subject.descriptor(), [layer], IN_TOTO)


@dataclass(frozen=True)
class BundleSeal:
    attachments: Attachments
    identity: str
    sign_statement: Signer

    def sign(self, subject: Subject) -> None:
        from syntra.supply.keyless import SIGNATURE_PREDICATE

        # What the signature is about, as cosign's simple signing says it (in-toto
        # validators refuse an empty predicate).
        about = {
            "identity": {"docker-reference": self.identity},
            "image": {"docker-manifest-digest": subject.digest},
        }
        self.attest(subject, SIGNATURE_PREDICATE, about)

    def attest(self, subject: Subject, predicate_type: str, predicate: Any) -> None:
        from syntra.supply.keyless import BUNDLE

        claim = statement(self.identity, subject.digest, predicate_type, predicate)
        bundle = self.sign_statement(canonical_json(claim))
        title = f"{attachment_tag(digest_of(bundle))}.sigstore.json"
        self.attachments.refer(
            subject.descriptor(),
            [Layer(bundle, BUNDLE, {TITLE: title})],
            BUNDLE,
            {
                "dev.sigstore.bundle.content": "dsse-envelope",
                "dev.sigstore.bundle.predicateType": predicate_type,
            },
        )


def seal_for(loaded: Loaded, attachments: Attachments, identity: str) -> Seal:
    """The configured seal; keyless mode imports sigstore only when it is used."""
    signing = loaded.config.supply_chain.signing
    if signing.mode == "keyless":
        from syntra.supply.keyless import statement_signer

        return BundleSeal(attachments, identity, statement_signer(loaded.root, signing))
    assert signing.key is not None
    key = keys.load_private(loaded.root, signing.key, signing.passphrase_env)
    return KeySeal(attachments, identity, lambda data: keys.sign(key, data))
