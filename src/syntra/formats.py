"""The encodings Syntra's bytes depend on, written once: the same input gives the same
bytes, so digests and signatures reproduce."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def canonical_json(data: Any) -> bytes:
    """Sorted keys, no spaces: what manifests, configs, statements and digests of
    inputs are made of."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True, default=str).encode()


def rfc3339(epoch: int) -> str:
    """`2023-11-14T22:13:20Z`: UTC, whole seconds."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
