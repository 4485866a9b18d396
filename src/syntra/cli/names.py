"""Guest names where a command takes a registry reference: `syntra run`, `inspect`,
`digest`, `tree`, `sbom` and `pull` all read `NAME` as the guest of that name in
syntra.yaml, at the digest this checkout published (else its tags in the registry); a
bare word that names no guest is refused, never looked up on Docker Hub."""

from __future__ import annotations

from typing import TYPE_CHECKING

from syntra.errors import SyntraError, did_you_mean

if TYPE_CHECKING:
    from syntra.config import Loaded
    from syntra.oci.locate import Registries
    from syntra.plan import GuestPlan


def named(
    loaded: Loaded | None, registries: Registries, target: str
) -> tuple[str, GuestPlan | None]:
    """`target` as a registry reference, and the guest it names (None: a reference)."""
    if loaded is None or any(mark in target for mark in "/:@"):
        return target, None  # a reference: a guest's name has none of these
    from syntra.oci.locate import pushed_digest
    from syntra.plan import build_plan

    guests = build_plan(loaded).guests
    guest = next((g for g in guests if g.name == target), None)
    if guest is None:
        names = [g.name for g in guests]
        raise SyntraError(f"no guest '{target}' in syntra.yaml{did_you_mean(target, names)}")
    if not guest.destination.registry:
        raise SyntraError(f"wasm.{target} is not pushed to a registry: nothing to pull")
    where = registries.locate(guest.destination)
    digest = pushed_digest(loaded.root, target, where, guest.destination)
    return f"{where.identity}@{digest}", guest
