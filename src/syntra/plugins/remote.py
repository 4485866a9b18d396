"""Wasm artifacts from a registry: resolved to a digest, their signature verified, then
the wasm blob pulled into a cache keyed by its digest (and checked again on every use),
so nothing unverified is ever compiled."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from syntra import progress, telemetry
from syntra.errors import Refused, SyntraError
from syntra.oci import digest as digests
from syntra.oci.digest import Digest
from syntra.oci.locate import Where, digest_in
from syntra.supply.attach import Attachments
from syntra.supply.verify import Trust

WASM_LAYER = "application/wasm"


@dataclass(frozen=True)
class Pulled:
    reference: str
    """`host/repository@sha256:…` of the artifact manifest."""
    wasm: Path
    title: str
    pull_ms: float
    verify_ms: float
    cached: bool
    """The blob was already in the cache (and its bytes still hash to its digest)."""


def pull(where: Where, version: str, trust: Trust | None, cache: Path) -> Pulled:
    """The wasm of the artifact at `version` (a tag or digest), verified against `trust`
    before a byte of it is fetched; `trust` None means the caller opted out."""
    started = time.perf_counter()
    digest = digest_in(where, version)
    if digest is None:
        raise SyntraError(f"{where.identity}:{version} is not in the registry")
    reference = f"{where.identity}@{digest}"
    document = where.registry.get_manifest(where.path, digest)
    layers = [layer for layer in document.children() if layer.get("mediaType") == WASM_LAYER]
    if len(layers) != 1 or document.is_index:
        raise SyntraError(f"{reference}: not a wasm artifact (no single {WASM_LAYER} layer)")
    resolved = time.perf_counter()
    if trust is not None:
        problems: list[str] = []
        attachments = Attachments(where.registry, where.path)
        signed, _ = trust.examine(attachments, digest, problems)
        if not signed:
            said = f" ({'; '.join(problems)})" if problems else ""
            raise Refused(
                f"{reference}: refused: no valid signature by {trust.signer}{said}; nothing was run"
            )
    verified = time.perf_counter()
    blob = Digest(layers[0]["digest"])  # parsed by children()
    target = cache / "blobs" / digests.file_name(blob)
    cached = target.is_file() and not target.is_symlink()  # hashed as it is loaded
    if not cached:
        pulled = {"syntra.digest": blob, "server.address": where.registry.host}
        with telemetry.span(f"pull {where.path}", pulled), progress.activity(f"pull {reference}"):
            where.registry.download_blob(where.path, blob, target, layers[0]["size"])
    title = str((layers[0].get("annotations") or {}).get("org.opencontainers.image.title", ""))
    return Pulled(
        reference,
        target,
        title or f"{where.path.rsplit('/', 1)[-1]}.wasm",
        pull_ms=((resolved - started) + (time.perf_counter() - verified)) * 1000,
        verify_ms=(verified - resolved) * 1000,
        cached=cached,
    )
