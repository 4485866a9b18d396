"""What `supply` attached, kept per artifact and registry for the build report: which
digests are signed, which have provenance, and how many packages each SBOM lists."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from syntra.fsutil import write_atomic
from syntra.paths import supply_note
from syntra.supply.predicates import PROVENANCE

_SBOM_FORMATS = {
    "https://spdx.dev/Document": ("spdx-json", "packages"),
    "https://cyclonedx.org/bom": ("cyclonedx-json", "components"),
}


class Attached(BaseModel):
    """What `supply` attached to one digest in one registry."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    digest: str
    platform: str | None
    signed: bool
    sbom_packages: dict[str, int]
    """Package count of each SBOM format attested."""
    provenance: bool


class SupplyNote(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    destinations: dict[str, list[Attached]]


def read_supply(root: Path, name: str) -> SupplyNote | None:
    try:
        return SupplyNote.model_validate_json(supply_note(root, name).read_bytes())
    except (OSError, ValidationError):
        return None


def note_supply(root: Path, name: str, where: str, claims: Sequence[tuple[Any, ...]]) -> None:
    """Keep what `supply` attached for `name` in registry `where`: `claims` are its
    (subject, predicate type or None for a signature, predicate, line) tuples."""
    found: dict[str, Attached] = {}
    for subject, predicate_type, predicate, _ in claims:
        known = found.get(subject.digest) or Attached(
            digest=subject.digest,
            platform=subject.platform,
            signed=False,
            sbom_packages={},
            provenance=False,
        )
        if predicate_type is None:
            known = known.model_copy(update={"signed": True})
        elif predicate_type == PROVENANCE:
            known = known.model_copy(update={"provenance": True})
        elif predicate_type in _SBOM_FORMATS:
            fmt, key = _SBOM_FORMATS[predicate_type]
            count = len(predicate.get(key) or []) if isinstance(predicate, dict) else 0
            known = known.model_copy(update={"sbom_packages": {**known.sbom_packages, fmt: count}})
        found[subject.digest] = known
    earlier = read_supply(root, name)
    destinations = {**(earlier.destinations if earlier else {}), where: list(found.values())}
    note = SupplyNote(destinations=destinations)
    write_atomic(supply_note(root, name), (note.model_dump_json(indent=2) + "\n").encode())
