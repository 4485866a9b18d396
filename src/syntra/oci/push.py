"""The one write path: blobs (concurrently), then manifests by digest, then tags.

Whatever Syntra puts in a registry — image platforms and indexes, wasm artifacts,
signatures, attestations, referrers, release tags — goes through `push`, so a tag never
points at content that is not all there, and an interrupted push re-run completes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

from syntra.errors import SyntraError
from syntra.oci.client import Blob, Client
from syntra.oci.media import Document

CONCURRENCY_ENV = "SYNTRA_REGISTRY_CONCURRENCY"


def concurrency() -> int:
    text = os.environ.get(CONCURRENCY_ENV, "4")
    if not text.isdigit() or int(text) < 1:
        raise SyntraError(f"${CONCURRENCY_ENV} is '{text}', not a whole number of at least 1")
    return int(text)


def push(
    client: Client,
    repository: str,
    *,
    blobs: Sequence[Blob] = (),
    manifests: Sequence[Document] = (),
    tags: Mapping[str, Document] | None = None,
) -> None:
    """Blobs first (each digest once, a bounded pool), then `manifests` by digest in the
    order given (children before the index that lists them), then `tags`."""
    unique = list({blob.digest: blob for blob in blobs}.values())
    if len(unique) == 1:
        client.push_blob(repository, unique[0])
    elif unique:
        pool = ThreadPoolExecutor(max_workers=min(concurrency(), len(unique)))
        futures = [pool.submit(client.push_blob, repository, blob) for blob in unique]
        try:
            done, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()  # the first failure, at once: the others are cancelled
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    for document in manifests:
        client.put_manifest(repository, document.digest, document)
    for tag, document in (tags or {}).items():
        client.put_manifest(repository, tag, document)
