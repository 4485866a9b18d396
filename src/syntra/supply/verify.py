"""`syntra verify`: what is in the registry, checked against the public key (mode
`key`) or the Sigstore trust root and the signer's identity (mode `keyless`).

For a digest: a signature about this digest (it names this repository, or the one a
`syntra copy --referrers` came from: the digest is what is bound); for every
platform image or wasm artifact, signed SBOM attestations in each configured format
about this digest; for the top-level digest, signed SLSA provenance. Nothing is taken
from local records but the list of digests.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric import ec

from syntra.config import Loaded
from syntra.config.model import Signing
from syntra.errors import SyntraError, TooLarge
from syntra.oci import platform_of
from syntra.oci.locate import Where
from syntra.oci.media import MAX_ATTESTATION
from syntra.supply import keys
from syntra.supply.attach import (
    DSSE,
    IN_TOTO,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING,
    WEB_BUNDLE,
    Attachments,
    pae,
)
from syntra.supply.predicates import PROVENANCE
from syntra.supply.sbom import FORMATS


@dataclass
class Check:
    artifact: str
    reference: str
    digest: str
    platform: str | None
    signature: bool
    sbom: bool | None
    provenance: bool | None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.signature and self.sbom is not False and self.provenance is not False

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


class Trust(Protocol):
    """What one signing mode accepts: (signed, predicate types attested) for a digest."""

    @property
    def signer(self) -> str: ...

    def examine(
        self, attachments: Attachments, digest: str, problems: list[str]
    ) -> tuple[bool, set[str]]: ...

    def statements(self, attachments: Attachments, digest: str) -> list[dict[str, Any]]:
        """The statements about `digest` whose signatures verify."""
        ...


NOTHING_TO_VERIFY = "nothing to verify against: set supply_chain.signing (mode key or keyless)"


def trust_in(key: Path | None, keyless: Signing | None, root: Path, missing: str) -> Trust:
    """The one trust factory: signatures by the public `key`, else Sigstore bundles for
    the `keyless` identity (`root` holds its trust material), else one line, `missing`."""
    if key is not None:
        return KeyTrust(keys.load_public(key))
    if keyless is not None:
        return KeylessTrust(root, keyless)
    raise SyntraError(missing)


@dataclass(frozen=True)
class Policy:
    """What an artifact must carry to verify: signatures `trust` accepts, a signed SBOM
    attestation in each of `formats`, and signed provenance when `provenance` is set."""

    trust: Trust
    formats: Sequence[str] = ()
    provenance: bool | None = False


def policy_for(loaded: Loaded, trust: Trust | None = None) -> Policy:
    """syntra.yaml's policy: its supply chain's formats and provenance, checked against
    `trust`, by default the one its signing mode names (`trust_of`)."""
    chain = loaded.config.supply_chain
    return Policy(trust or trust_of(loaded), chain.sbom, chain.provenance)


def problems_of(checks: list[Check]) -> str:
    """What did not verify across `checks`, each problem once, as one line ("" when all
    verified)."""
    return "; ".join(sorted({p for check in checks if not check.ok for p in check.problems}))


def trust_of(
    loaded: Loaded | None, key: Path | None = None, missing: str = NOTHING_TO_VERIFY
) -> Trust:
    """What signatures must verify against: the public `key` given, else what syntra.yaml's
    signing mode names (its key's public half, or its keyless identity); `missing` is
    the line when there is neither."""
    signing = loaded.config.supply_chain.signing if loaded is not None and key is None else None
    if loaded is not None and signing is not None and signing.mode == "key" and signing.key:
        key = keys.public_path(loaded.root / signing.key)
    keyless = signing if signing is not None and signing.mode == "keyless" else None
    return trust_in(key, keyless, loaded.root if loaded is not None else Path.cwd(), missing)


def verify(artifact: str, where: Where, digest: str, policy: Policy) -> list[Check]:
    """Checks for `digest` and, for an index, each of its platform manifests."""
    registry, path, identity = where.registry, where.path, where.identity
    try:
        found = registry.find_manifest(path, digest)
        problem = None if found is not None else "not in the registry"
    except SyntraError as exc:  # unreachable, refused, or content that is not what it claims
        found, problem = None, str(exc)
    if found is None:
        return [Check(artifact, identity, digest, None, False, False, False, [str(problem)])]
    top = found
    is_index = top.is_index
    attachments = Attachments(registry, path)
    checks = [
        _check(
            artifact,
            attachments,
            identity,
            digest,
            None,
            replace(policy, formats=()) if is_index else policy,
        )
    ]
    for child in top.children() if is_index else []:  # descriptors checked
        platform = platform_of(child)
        child_digest = child["digest"]
        checks.append(
            _check(
                artifact,
                attachments,
                identity,
                child_digest,
                platform,
                replace(policy, provenance=None),
            )
        )
    for listed in [] if is_index else attachments.referrers(digest):
        if listed.get("artifactType") == WEB_BUNDLE:  # a guest's web bundle: its own subject
            web = f"{artifact} (web)"
            bundle = str(listed["digest"])
            checks.append(_check(web, attachments, identity, bundle, None, policy))
    return checks


def _check(
    artifact: str, attachments: Attachments, identity: str, digest: str, platform: str | None,
    policy: Policy,
) -> Check:  # fmt: skip
    trust, formats, provenance = policy.trust, policy.formats, policy.provenance
    problems: list[str] = []
    signed, attested = trust.examine(attachments, digest, problems)
    sbom = all(FORMATS[fmt] in attested for fmt in formats) if formats else None
    if sbom is False:
        missing = [fmt for fmt in formats if FORMATS[fmt] not in attested]
        problems.append(f"no signed SBOM attestation ({', '.join(missing)})")
    proven = (PROVENANCE in attested) if provenance else None
    if proven is False:
        problems.append("no signed provenance")
    if not signed:
        problems.append(f"no valid signature by {trust.signer}")
    return Check(artifact, identity, digest, platform, signed, sbom, proven, problems)


@dataclass(frozen=True)
class KeyTrust:
    key: ec.EllipticCurvePublicKey
    signer: str = "the key"

    def examine(
        self, attachments: Attachments, digest: str, problems: list[str]
    ) -> tuple[bool, set[str]]:
        return (
            _signed(attachments, digest, self.key, problems),
            _attested(attachments, digest, self.key, problems),
        )

    def statements(self, attachments: Attachments, digest: str) -> list[dict[str, Any]]:
        return _statements(attachments, digest, self.key, [])


class KeylessTrust:
    """Sigstore bundles among the digest's referrers, each verified in full."""

    def __init__(self, root: Path, signing: Signing) -> None:
        from syntra.supply.keyless import BundleVerifier

        self.bundles = BundleVerifier(root, signing)
        self.signer = f"an identity matching /{signing.identity}/ from {signing.issuer}"

    def examine(
        self, attachments: Attachments, digest: str, problems: list[str]
    ) -> tuple[bool, set[str]]:
        from syntra.supply.keyless import SIGNATURE_PREDICATE

        found = self._verified(attachments, digest, problems)
        kinds = {str(statement.get("predicateType")) for statement in found}
        return SIGNATURE_PREDICATE in kinds, kinds - {SIGNATURE_PREDICATE}

    def statements(self, attachments: Attachments, digest: str) -> list[dict[str, Any]]:
        return self._verified(attachments, digest, [])

    def _verified(
        self, attachments: Attachments, digest: str, problems: list[str]
    ) -> list[dict[str, Any]]:
        """The statements of bundles among the referrers that verify in full."""
        from syntra.supply.keyless import BUNDLE

        found = []
        registry, repository = attachments.registry, attachments.repository
        for listed in attachments.referrers(digest):
            if listed.get("artifactType") != BUNDLE:
                continue
            try:
                manifest = registry.get_manifest(repository, listed["digest"])
                if manifest.is_index:
                    raise ValueError(f"{manifest.digest} is an index, not a bundle's manifest")
                layer = manifest.children()[1]  # the config, then the bundle: both checked
                blob = registry.get_blob(
                    repository, layer["digest"], layer["size"], MAX_ATTESTATION
                )
                statement = self.bundles.statement(blob)
            except TooLarge:
                raise
            except (SyntraError, ValueError, KeyError, IndexError, TypeError) as exc:
                problems.append(f"a bundle that does not verify: {exc}")
                continue
            if _about(statement, digest):
                found.append(statement)
        return found


def _about(statement: Any, digest: str) -> bool:
    """The statement has exactly one subject, this digest. The repository it names may be
    another one (a copy made with `syntra copy --referrers`), as cosign accepts too: the
    digest is what the signature binds; `promote` signs under the new name."""
    if not isinstance(statement, dict):
        return False
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        return False
    algorithm, _, value = digest.partition(":")
    return subjects[0].get("digest") == {algorithm: value}


_HOSTILE = (KeyError, IndexError, ValueError, TypeError, AttributeError, RecursionError)
"""What reading a signature layer or an attestation of the wrong shape raises
(binascii.Error is a ValueError)."""


def _signed(
    attachments: Attachments, digest: str, key: ec.EllipticCurvePublicKey, problems: list[str]
) -> bool:
    """A simple-signing signature of `digest` that verifies with `key`; the identity it
    names may be the repository a copy came from, so only the digest is bound."""
    for descriptor, payload in attachments.layers(digest, "sig"):
        if descriptor.get("mediaType") != SIMPLE_SIGNING:
            continue
        try:
            claim = json.loads(payload)["critical"]
            signature = base64.b64decode(descriptor["annotations"][SIGNATURE_ANNOTATION])
            # The digest is bound; the repository named may be the one a copy came from.
            points = claim["image"]["docker-manifest-digest"] == digest
        except _HOSTILE:  # a payload or annotation of another shape, or nested past parsing
            problems.append("a malformed signature layer")
            continue
        if points and keys.verifies(key, payload, signature):
            return True
    return False


def _attested(
    attachments: Attachments, digest: str, key: ec.EllipticCurvePublicKey,
    problems: list[str],
) -> set[str]:  # fmt: skip
    """Predicate types of attestations about `digest` whose DSSE signature verifies."""
    found = _statements(attachments, digest, key, problems)
    return {str(statement.get("predicateType")) for statement in found}


def _statements(
    attachments: Attachments, digest: str, key: ec.EllipticCurvePublicKey,
    problems: list[str],
) -> list[dict[str, Any]]:  # fmt: skip
    """The in-toto statements about `digest` whose DSSE signature verifies with `key`."""
    found: list[dict[str, Any]] = []
    for descriptor, blob in attachments.layers(digest, "att"):
        if descriptor.get("mediaType") != DSSE:
            continue
        try:
            envelope = json.loads(blob)
            payload = base64.b64decode(envelope["payload"])
            signatures = [base64.b64decode(s["sig"]) for s in envelope["signatures"]]
            statement = json.loads(payload)
            if not isinstance(statement, dict):
                raise TypeError("the statement is not a JSON object")
        except _HOSTILE:  # an envelope or statement of another shape, or nested past parsing
            problems.append("a malformed attestation")
            continue
        if envelope.get("payloadType") != IN_TOTO:
            continue
        verified = any(keys.verifies(key, pae(IN_TOTO, payload), sig) for sig in signatures)
        if _about(statement, digest) and verified:
            found.append(statement)
    return found
