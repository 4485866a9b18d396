"""The one digest type: `algorithm:hex` with the algorithm's exact length, parsed once.

A digest becomes a path (`blobs/sha256/<hex>`), a URL (`/v2/…/blobs/<digest>`) and a file
name, so text that came from a file or a registry is never used as a digest before
`parse` has accepted it: only `sha256:` with 64 and `sha512:` with 128 lowercase hex
digits. Anything else is one line, exit 4 when a registry said it, 3 when a file did.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, NewType

from syntra.errors import Refused, RegistryError, SyntraError, ToolError, one_line
from syntra.refs import DIGEST

if TYPE_CHECKING:
    from hashlib import _Hash

Digest = NewType("Digest", str)
"""Text `parse` accepted: safe as a path part, a URL part and a file name."""

LENGTHS = {"sha256": 64, "sha512": 128}
PATTERN = DIGEST
"""A digest, whole: `PATTERN.fullmatch(text)`."""


class BadDigest(RegistryError, ValueError):
    """A registry named something that is not a digest: exit 4 (a ValueError to callers
    that treat it as content they could not read)."""


class BadLocalDigest(ToolError, ValueError):
    """A local file (a layout, an archive, a record) named something that is not a
    digest: exit 3."""


def parse(text: object, where: str = "", local: bool = False) -> Digest:
    """`text` as a Digest, or one line naming `where` it came from."""
    if isinstance(text, str) and PATTERN.fullmatch(text):
        return Digest(text)
    shown = one_line(repr(text) if not isinstance(text, str) else f"'{text}'")[:160]
    prefix = f"{where}: " if where else ""
    error: type[SyntraError] = BadLocalDigest if local else BadDigest
    raise error(f"{prefix}{shown} is not a digest (sha256:<64 hex> or sha512:<128 hex>)")


def is_digest(text: str) -> bool:
    """Whether `text` is a digest (else a tag, for references that may be either)."""
    return bool(PATTERN.fullmatch(text))


def of(data: bytes) -> Digest:
    """The sha256 digest of `data`."""
    return Digest("sha256:" + hashlib.sha256(data).hexdigest())


def hasher(digest: Digest) -> _Hash:
    """A fresh hash object of `digest`'s algorithm."""
    return hashlib.new(algorithm(digest))


def algorithm(digest: Digest) -> str:
    return digest.split(":", 1)[0]


def hexdigest(digest: Digest) -> str:
    return digest.split(":", 1)[1]


def file_name(digest: Digest) -> str:
    """`sha256-<hex>`: a file name for the blob."""
    return digest.replace(":", "-")


class Damaged(Refused):
    """A file named by its digest whose bytes are something else (exit 1)."""


def read_named(path: Path) -> bytes:
    """The bytes of `path`, read once; when its name is a digest (`file_name`: a cached
    blob), hashed in that same read and refused (Damaged) unless they are that digest, so
    what was checked is what is used."""
    data = path.read_bytes()
    named = path.name.replace("-", ":", 1)
    if is_digest(named):
        check = hasher(Digest(named))
        check.update(data)
        if check.hexdigest() != hexdigest(Digest(named)):
            raise Damaged(f"{path}: its bytes are not {named}")
    return data
