"""Signatures and attestations stored the ways verifiers look for them.

- cosign: `sha256-<hex>.sig` holds simple-signing payloads, one layer each, with the
  signature in the `dev.cosignproject.cosign/signature` annotation (skopeo and podman
  read these with `use-sigstore-attachments`); `sha256-<hex>.att` holds DSSE envelopes.
- OCI 1.1: each attestation is also a manifest whose `subject` is the signed digest,
  listed by the registry's Referrers API where it has one, and in the referrers fallback
  tag `sha256-<hex>` (distribution 2.8 has no Referrers API), deduplicated and sorted.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from syntra.formats import canonical_json
from syntra.oci import INDEX, MANIFEST, Blob, Client, Document, digest_of, push
from syntra.oci.media import MAX_ATTESTATION, MAX_DOCUMENT

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
EMPTY = "application/vnd.oci.empty.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
ZERO_TIME = "0001-01-01T00:00:00Z"
WEB_BUNDLE = "application/vnd.syntra.web-bundle.v1+json"
"""A guest's browser bundle (`wasm.<guest>.web`), attached to its artifact."""

Signer = Callable[[bytes], bytes]


def attachment_tag(digest: str, suffix: str = "") -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}" + (f".{suffix}" if suffix else "")


def simple_signing(identity: str, digest: str) -> bytes:
    """cosign's payload: exactly these critical fields, and `optional`."""
    return canonical_json(
        {
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding: what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def envelope(statement: dict[str, Any], signer: Signer) -> bytes:
    payload = canonical_json(statement)
    signature = signer(pae(IN_TOTO, payload))
    return canonical_json(
        {
            "payloadType": IN_TOTO,
            "payload": base64.b64encode(payload).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
        }
    )


def statement(
    subject_name: str, digest: str, predicate_type: str, predicate: Any
) -> dict[str, Any]:
    algorithm, _, hexdigest = digest.partition(":")
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": subject_name, "digest": {algorithm: hexdigest}}],
        "predicateType": predicate_type,
        "predicate": predicate,
    }


@dataclass(frozen=True)
class Layer:
    data: bytes
    media_type: str
    annotations: dict[str, str]

    def descriptor(self) -> dict[str, Any]:
        return {
            "mediaType": self.media_type,
            "digest": digest_of(self.data),
            "size": len(self.data),
            "annotations": self.annotations,
        }


class Attachments:
    """Reads and writes the attachments of digests in one repository."""

    def __init__(self, registry: Client, repository: str) -> None:
        self.registry = registry
        self.repository = repository

    def layers(self, digest: str, suffix: str) -> list[tuple[dict[str, Any], bytes]]:
        """(descriptor, blob) of each layer at `sha256-<hex>.<suffix>`; [] when absent."""
        manifest = self.registry.find_manifest(self.repository, attachment_tag(digest, suffix))
        if manifest is None or manifest.is_index:
            return []
        layers = manifest.children()[1:]  # the config, then layers: digests and sizes checked
        bound = MAX_ATTESTATION if suffix == "att" else MAX_DOCUMENT  # DSSE: SBOMs inside
        return [
            (layer, self.registry.get_blob(self.repository, layer["digest"], layer["size"], bound))
            for layer in layers
        ]

    def add(self, digest: str, suffix: str, layer: Layer) -> None:
        """Append `layer` to the cosign-style attachment, unless it is already there."""
        existing = [descriptor for descriptor, _ in self.layers(digest, suffix)]
        new = layer.descriptor()
        if new in existing:
            return
        layers = [*existing, new]
        config = canonical_json(
            {
                "architecture": "",
                "created": ZERO_TIME,
                "history": [{"created": ZERO_TIME}],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layers]},
                "config": {},
            }
        )
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": digest_of(config), "size": len(config)},
                "layers": layers,
            }
        )
        push(
            self.registry,
            self.repository,
            blobs=[Blob.of(layer.data), Blob.of(config)],
            tags={attachment_tag(digest, suffix): Document(manifest, MANIFEST)},
        )

    def refer(
        self, subject: dict[str, Any], layers: Sequence[Layer], artifact_type: str,
        annotations: dict[str, str] | None = None,
    ) -> Document:  # fmt: skip
        """An OCI 1.1 referrer of `subject` with `layers`, listed under the referrers
        fallback tag with `annotations` (default: the first layer's)."""
        annotations = layers[0].annotations if annotations is None else annotations
        empty = b"{}"
        manifest = canonical_json(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "artifactType": artifact_type,
                "config": {"mediaType": EMPTY, "digest": digest_of(empty), "size": len(empty)},
                "layers": [layer.descriptor() for layer in layers],
                "subject": subject,
                "annotations": annotations,
            }
        )
        referrer = Document(manifest, MANIFEST)
        listed = {
            "mediaType": MANIFEST,
            "digest": referrer.digest,
            "size": len(manifest),
            "artifactType": artifact_type,
            "annotations": annotations,
        }
        fallback = self._fallback(subject["digest"])
        api = self.registry.referrers(self.repository, subject["digest"])
        if listed in fallback and (api is None or listed["digest"] in _digests(api)):
            return referrer
        manifests = sorted_referrers([*fallback, listed])
        index = Document(
            canonical_json({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}), INDEX
        )
        push(
            self.registry,
            self.repository,
            blobs=[Blob.of(empty), *(Blob.of(layer.data) for layer in layers)],
            manifests=[referrer],
            tags={attachment_tag(subject["digest"]): index},
        )
        return referrer

    def _fallback(self, digest: str) -> list[dict[str, Any]]:
        """The descriptors listed under the referrers fallback tag ([] when it holds no
        index; MalformedContent when its entries are not descriptors)."""
        listed = self.registry.find_manifest(self.repository, attachment_tag(digest))
        return listed.children() if listed is not None and listed.is_index else []

    def referrers(self, digest: str) -> list[dict[str, Any]]:
        """The referrers of `digest`: the Referrers API's and the fallback tag's, each
        digest once, sorted."""
        api = self.registry.referrers(self.repository, digest) or []
        return sorted_referrers([*api, *self._fallback(digest)])


def _digests(descriptors: list[dict[str, Any]]) -> set[str]:
    return {str(d.get("digest")) for d in descriptors}


def sorted_referrers(descriptors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each digest once (the first listing wins), ordered by artifact type, then digest."""
    unique: dict[str, dict[str, Any]] = {}
    for descriptor in descriptors:
        unique.setdefault(str(descriptor.get("digest")), descriptor)
    return sorted(unique.values(), key=lambda d: (str(d.get("artifactType", "")), d["digest"]))
