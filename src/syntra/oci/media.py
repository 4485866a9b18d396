"""Media types and content addressing shared by everything that reads or writes OCI data."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from oras import defaults

from syntra.errors import RegistryError

INDEX = defaults.default_index_media_type
MANIFEST = defaults.default_manifest_media_type
DOCKER_LIST = defaults.docker_manifest_list_media_type
DOCKER_MANIFEST = defaults.docker_manifest_media_type
ACCEPT = ", ".join((INDEX, MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
INDEX_TYPES = (INDEX, DOCKER_LIST)
TITLE = defaults.annotation_title


class MalformedContent(RegistryError, ValueError):
    """A manifest or index that is not what it claims: one line for the user (exit 4), and
    a ValueError to callers that treat it as a value they could not read."""


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def platform_of(descriptor: dict[str, Any]) -> str:
    """`os/architecture[/variant]` of an index entry ('' when it names none)."""
    described = descriptor.get("platform") or {}
    keys = ("os", "architecture", "variant")
    return "/".join(str(described[key]) for key in keys if described.get(key))


def layout_blob(layout: Path, digest: str) -> Path:
    """Where an OCI image layout keeps the blob `digest`."""
    algorithm, _, hexdigest = digest.partition(":")
    return layout / "blobs" / algorithm / hexdigest


def is_digest(reference: str) -> bool:
    return reference.startswith("sha256:")


@dataclass(frozen=True)
class Document:
    """A manifest or index as exact bytes: never re-serialised, so its digest stays ours."""

    data: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return digest_of(self.data)

    def json(self) -> dict[str, Any]:
        """The parsed body; MalformedContent (a ValueError) when it is not a JSON object."""
        try:
            parsed = json.loads(self.data)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise MalformedContent(f"{self.digest} is not a JSON object")
        return parsed

    def children(self) -> list[dict[str, Any]]:
        """Descriptors of what this document points at: an index's manifests, or a
        manifest's config and layers (MalformedContent when malformed)."""
        body = self.json()
        if self.media_type in INDEX_TYPES or "manifests" in body:
            listed = body.get("manifests", [])
        else:
            layers = body.get("layers", [])
            listed = [body.get("config"), *layers] if isinstance(layers, list) else None
        if not isinstance(listed, list) or not all(
            isinstance(d, dict) and isinstance(d.get("digest"), str) for d in listed
        ):
            raise MalformedContent(f"{self.digest} has malformed descriptors")
        return listed
