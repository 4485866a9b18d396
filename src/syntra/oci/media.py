"""Media types and content addressing shared by everything that reads or writes OCI data."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from oras import defaults

import syntra.oci.digest as digests
from syntra.errors import RegistryError, SyntraError, ToolError
from syntra.oci.digest import Digest

INDEX = defaults.default_index_media_type
MANIFEST = defaults.default_manifest_media_type
DOCKER_LIST = defaults.docker_manifest_list_media_type
DOCKER_MANIFEST = defaults.docker_manifest_media_type
ACCEPT = ", ".join((INDEX, MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))
INDEX_TYPES = (INDEX, DOCKER_LIST)
TITLE = defaults.annotation_title

FILE_MEDIA_TYPES = {
    ".wasm": "application/wasm",
    ".js": "text/javascript",
    ".ts": "application/typescript",
    ".html": "text/html",
    ".json": "application/json",
}
"""The media type of a file layer by its name's suffix (web bundles, wasm artifacts)."""
WASM_MAGIC = b"\0asm"

MAX_DOCUMENT = 4 << 20
"""The most a manifest, an index or any JSON answer may weigh (distribution's default)."""
MAX_ARTIFACT = 1 << 30
"""The most a downloaded artifact blob (a wasm module, a web bundle's file) may declare:
refused before any request, so a size a registry makes up cannot stretch the exchange's
deadline or fill the disk."""
MAX_LAYER = 1 << 40
"""The most a layer `syntra copy` streams may weigh (1 TiB): images carry layers past an
artifact's bound, but not a size only a hostile registry would declare."""
MAX_ATTESTATION = 64 << 20
"""The most an attestation layer or a keyless bundle may weigh: an in-toto statement can
carry a whole SBOM (a Debian root filesystem's runs to 10 MiB), unlike a signature."""
MAX_CHILDREN = 1024
"""The most descriptors one manifest or index may list."""
MAX_DEPTH = 8
"""The most indexes nested in one another (an index of indexes is 2)."""


class MalformedContent(RegistryError, ValueError):
    """A manifest or index that is not what it claims: one line for the user (exit 4), and
    a ValueError to callers that treat it as a value they could not read."""


class MalformedFile(ToolError, ValueError):
    """The same, read from a local file (a layout, an archive): exit 3."""


digest_of = digests.of
is_digest = digests.is_digest


def json_object(data: bytes) -> dict[str, Any] | None:
    """`data` as a JSON object; None when it is not JSON, is nested past the parser's
    depth, or is another type (a list, a string): the one reader of untrusted JSON bodies."""
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        return None
    return parsed if isinstance(parsed, dict) else None


def platform_of(descriptor: dict[str, Any]) -> str:
    """`os/architecture[/variant]` of an index entry ('' when it names none)."""
    described = descriptor.get("platform") or {}
    keys = ("os", "architecture", "variant")
    return "/".join(str(described[key]) for key in keys if described.get(key))


def layout_blob(layout: Path, digest: Digest) -> Path:
    """Where an OCI image layout keeps the blob `digest`."""
    return layout / "blobs" / digests.algorithm(digest) / digests.hexdigest(digest)


@dataclass(frozen=True)
class Document:
    """A manifest or index as exact bytes: never re-serialised, so its digest stays ours."""

    data: bytes
    media_type: str
    local: bool = field(default=False, compare=False)
    """Read from a local file: what is wrong with it is exit 3, not a registry's 4."""

    @cached_property
    def digest(self) -> Digest:
        """Hashed once per document (an index's every descriptor error names it)."""
        return digest_of(self.data)

    def malformed(self, message: str) -> SyntraError:
        return (MalformedFile if self.local else MalformedContent)(f"{self.digest} {message}")

    def json(self) -> dict[str, Any]:
        """The parsed body; MalformedContent (a ValueError) when it is not a JSON object."""
        if len(self.data) > MAX_DOCUMENT:
            raise self.malformed(f"is larger than {MAX_DOCUMENT >> 20} MiB")
        parsed = json_object(self.data)
        if parsed is None:
            raise self.malformed("is not a JSON object")
        return parsed

    @property
    def is_index(self) -> bool:
        """An index (OCI's, or Docker's manifest list), by its media type or its body: the
        one place that decides."""
        return self._indexes(self.json())

    def _indexes(self, body: dict[str, Any]) -> bool:
        return self.media_type in INDEX_TYPES or "manifests" in body

    def children(self) -> list[dict[str, Any]]:
        """Descriptors of what this document points at: an index's manifests, or a
        manifest's config and layers, each with a digest and a size (MalformedContent
        when malformed, or when there are more than MAX_CHILDREN)."""
        body = self.json()  # parsed once; the digest (in messages) hashed once
        if self._indexes(body):
            listed = body.get("manifests", [])
        else:
            layers = body.get("layers", [])
            listed = [body.get("config"), *layers] if isinstance(layers, list) else None
        if isinstance(listed, list) and len(listed) > MAX_CHILDREN:
            raise self.malformed(f"lists {len(listed)} descriptors, more than {MAX_CHILDREN}")
        if not isinstance(listed, list) or not all(_described(d) for d in listed):
            raise self.malformed("has malformed descriptors")
        for descriptor in listed:
            digests.parse(descriptor["digest"], f"{self.digest}: a descriptor", self.local)
        return listed


def _described(descriptor: Any) -> bool:
    """A descriptor: a digest (checked by the caller), a whole size of at least 0, and
    `annotations` and `platform` objects where it has them (readers take them as such)."""
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
        return False
    for key in ("annotations", "platform"):
        if descriptor.get(key) is not None and not isinstance(descriptor[key], dict):
            return False
    size = descriptor.get("size")
    return isinstance(size, int) and not isinstance(size, bool) and size >= 0


def descriptor_digest(descriptor: dict[str, Any]) -> Digest:
    """The digest of a descriptor `Document.children` returned (already checked)."""
    return Digest(descriptor["digest"])
