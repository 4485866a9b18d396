"""Signatures and attestations stored the ways verifiers look for them.

- cosign: `sha256-<hex>.sig` holds simple-signing payloads, one layer each, with the
  signature in the `dev.cosignproject.cosign/signature` annotation (skopeo and podman
  read these with `use-sigstore-attachments`); `sha256-<hex>.att` holds DSSE envelopes.
- OCI 1.1: each attestation is also a manifest whose `subject` is the signed digest,
  listed in the referrers fallback tag `sha256-<hex>` (distribution 2.8 has no
  referrers API).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from syntra.registry import INDEX, MANIFEST, Registry, digest_of

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
EMPTY = "application/vnd.oci.empty.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
ZERO_TIME = "0001-01-01T00:00:00Z"

Signer = Callable[[bytes], bytes]


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()


def attachment_tag(digest: str, suffix: str = "") -> str:
    algorithm, _, hexdigest = digest.partition(":")
    return f"{algorithm}-{hexdigest}" + (f".{suffix}" if suffix else "")


def simple_signing(identity: str, digest: str) -> bytes:
    """cosign's payload: exactly these critical fields, and `optional`."""
    return encode(
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
    payload = encode(statement)
    signature = signer(pae(IN_TOTO, payload))
    return encode(
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

    def __init__(self, registry: Registry, repository: str) -> None:
        self.registry = registry
        self.repository = repository

    def layers(self, digest: str, suffix: str) -> list[tuple[dict[str, Any], bytes]]:
        """(descriptor, blob) of each layer at `sha256-<hex>.<suffix>`; [] when absent."""
        tag = attachment_tag(digest, suffix)
        if self.registry.head_manifest(self.repository, tag) is None:
            return []
        manifest = self.registry.get_manifest(self.repository, tag).json()
        return [
            (layer, self.registry.get_blob(self.repository, layer["digest"]))
            for layer in manifest.get("layers", [])
        ]

    def add(self, digest: str, suffix: str, layer: Layer) -> None:
        """Append `layer` to the cosign-style attachment, unless it is already there."""
        existing = [descriptor for descriptor, _ in self.layers(digest, suffix)]
        new = layer.descriptor()
        if new in existing:
            return
        self.registry.push_bytes(self.repository, layer.data)
        layers = [*existing, new]
        config = encode(
            {
                "architecture": "",
                "created": ZERO_TIME,
                "history": [{"created": ZERO_TIME}],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layers]},
                "config": {},
            }
        )
        self.registry.push_bytes(self.repository, config)
        manifest = encode(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "config": {"mediaType": CONFIG, "digest": digest_of(config), "size": len(config)},
                "layers": layers,
            }
        )
        self.registry.put_manifest(
            self.repository, attachment_tag(digest, suffix), manifest, MANIFEST
        )

    def refer(
        self, subject: dict[str, Any], layer: Layer, artifact_type: str,
        annotations: dict[str, str] | None = None,
    ) -> None:  # fmt: skip
        """An OCI 1.1 referrer of `subject`, listed under the referrers fallback tag with
        `annotations` (default: the layer's)."""
        annotations = layer.annotations if annotations is None else annotations
        empty = b"{}"
        self.registry.push_bytes(self.repository, empty)
        self.registry.push_bytes(self.repository, layer.data)
        manifest = encode(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "artifactType": artifact_type,
                "config": {"mediaType": EMPTY, "digest": digest_of(empty), "size": len(empty)},
                "layers": [layer.descriptor()],
                "subject": subject,
                "annotations": annotations,
            }
        )
        digest = self.registry.put_manifest(
            self.repository, digest_of(manifest), manifest, MANIFEST
        )
        listed = {
            "mediaType": MANIFEST,
            "digest": digest,
            "size": len(manifest),
            "artifactType": artifact_type,
            "annotations": annotations,
        }
        referrers = self.referrers(subject["digest"])
        if listed in referrers:
            return
        index = encode({"schemaVersion": 2, "mediaType": INDEX, "manifests": [*referrers, listed]})
        self.registry.put_manifest(self.repository, attachment_tag(subject["digest"]), index, INDEX)

    def referrers(self, digest: str) -> list[dict[str, Any]]:
        """The descriptors listed under the referrers fallback tag (entries that are not
        descriptors are left out)."""
        tag = attachment_tag(digest)
        if self.registry.head_manifest(self.repository, tag) is None:
            return []
        listed = self.registry.get_manifest(self.repository, tag).json()
        manifests = listed.get("manifests") if isinstance(listed, dict) else None
        return [m for m in manifests if isinstance(m, dict)] if isinstance(manifests, list) else []
