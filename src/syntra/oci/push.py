"""The one write path: blobs (concurrently), then manifests by digest, then tags.

Whatever Syntra puts in a registry — image platforms and indexes, wasm artifacts,
signatures, attestations, referrers, release tags — goes through `push`, so a tag never
points at content that is not all there, and an interrupted push re-run completes.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import IO, Any

from syntra import progress, telemetry
from syntra.errors import SyntraError
from syntra.oci.client import Blob, Client, Transfer
from syntra.oci.media import Document

CONCURRENCY_ENV = "SYNTRA_REGISTRY_CONCURRENCY"


def concurrency() -> int:
    text = os.environ.get(CONCURRENCY_ENV, "4")
    if not text.isdigit() or int(text) < 1:
        raise SyntraError(f"${CONCURRENCY_ENV} is '{text}', not a whole number of at least 1")
    return int(text)


class _Counted:
    """A blob's file as requests reads it, each read counted."""

    def __init__(self, handle: IO[bytes], seen: Callable[[int], None]) -> None:
        self._handle, self._seen = handle, seen

    def read(self, size: int = -1) -> bytes:
        data = self._handle.read(size)
        self._seen(len(data))
        return data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


@dataclass(frozen=True)
class _Watched(Blob):
    """A blob whose upload moves a progress row; a retry starts the row over."""

    progress: Any = None
    row: Any = None

    def body(self) -> Any:
        given = super().body()
        inner = given if callable(given) else partial(io.BytesIO, given or b"")
        progress, row = self.progress, self.row

        def opened() -> IO[bytes]:
            progress.update(row, completed=0, state="uploading")
            counted = _Counted(inner(), lambda n: progress.advance(row, n))
            return counted  # type: ignore[return-value]

        return opened


def _wrap(watch: progress.Upload, blob: Blob) -> Blob:
    row = watch.row(blob)
    if row is None:
        return blob
    return _Watched(blob.digest, blob.size, blob.path, blob.data, blob.verify,
                    progress=watch.progress, row=row)  # fmt: skip


def push(
    client: Client,
    repository: str,
    *,
    blobs: Sequence[Blob] = (),
    manifests: Sequence[Document] = (),
    tags: Mapping[str, Document] | None = None,
) -> int:
    """Blobs first (each digest once, a bounded pool), then `manifests` by digest in the
    order given (children before the index that lists them), then `tags`. Returns the
    bytes of blobs this push sent: none for those the repository had or mounted (counted
    here, not from the client's totals, which other pushes may share)."""
    unique = list({blob.digest: blob for blob in blobs}.values())
    moved = _counts(client.transfer)
    with (
        telemetry.span(f"push {repository}", _where(client, repository)) as traced,
        progress.upload(f"push {repository}") as watch,
    ):
        sent = _blobs(client, repository, [_wrap(watch, blob) for blob in unique], watch)
        for document in manifests:
            client.put_manifest(repository, document.digest, document)
        for tag, document in (tags or {}).items():
            client.put_manifest(repository, tag, document)
        traced.set(_transferred(client, moved, unique))
    return sent


def _blobs(client: Client, repository: str, unique: Sequence[Blob], watch: progress.Upload) -> int:
    """The blobs pushed; the bytes sent."""

    def one(blob: Blob) -> int:
        sent = client.push_blob(repository, blob)
        watch.done(blob)
        return sent

    if len(unique) <= 1:
        return sum(one(blob) for blob in unique)
    pool = ThreadPoolExecutor(max_workers=min(concurrency(), len(unique)))
    futures = [pool.submit(one, blob) for blob in unique]
    try:
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        return sum(future.result() for future in done)  # the first failure, at once
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _where(client: Client, repository: str) -> dict[str, str]:
    return {"server.address": client.host, "syntra.repository": repository}


def _counts(transfer: Transfer) -> dict[str, int]:
    with transfer.lock:
        return {
            "uploaded_bytes": transfer.uploaded_bytes,
            "uploaded_blobs": transfer.uploaded_blobs,
            "mounted_blobs": transfer.mounted_blobs,
            "skipped_blobs": transfer.skipped_blobs,
        }


def _transferred(client: Client, before: dict[str, int], blobs: Sequence[Blob]) -> dict[str, int]:
    """What this push moved (the client's counts since `before`), as span attributes and
    metrics: bytes sent, and the blobs uploaded, mounted from another repository, or
    skipped because the repository had them."""
    after = _counts(client.transfer)
    moved = {name: after[name] - before[name] for name in after}
    sent = moved["uploaded_bytes"]
    attributes = {
        "syntra.bytes.pushed": sent,
        "syntra.bytes.reused": max(0, sum(blob.size for blob in blobs) - sent),
        "syntra.blobs.pushed": moved["uploaded_blobs"],
        "syntra.blobs.mounted": moved["mounted_blobs"],
        "syntra.blobs.skipped": moved["skipped_blobs"],
    }
    telemetry.record("syntra.transfer.bytes", sent, {"server.address": client.host})
    for outcome in ("pushed", "mounted", "skipped"):
        counted = {"server.address": client.host, "syntra.outcome": outcome}
        telemetry.record("syntra.transfer.blobs", attributes[f"syntra.blobs.{outcome}"], counted)
    return attributes
