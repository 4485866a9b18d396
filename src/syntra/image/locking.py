"""`syntra lock`: resolve every reference syntra.yaml builds from or runs to its digests,
write `syntra.lock`, show what `--update` changed, and `--check` it against the
registries without writing (the format and the agreement rules: `syntra.lockfile`)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from syntra import lockfile
from syntra.config import Loaded
from syntra.errors import Refused, SyntraError
from syntra.lockfile import Lock, Locked, Use
from syntra.oci import platform_of
from syntra.oci.locate import Registries, Where, digest_in
from syntra.paths import LOCK_FILE
from syntra.plan import Plan


@dataclass(frozen=True)
class Repository:
    """What `syntra lock` works on: the loaded config, its plan, where it lives, and the
    run's registry clients."""

    loaded: Loaded
    plan: Plan
    registries: Registries

    @property
    def root(self) -> Path:
        return self.loaded.root


def wanted(repo: Repository) -> dict[str, Use]:
    """Every reference to lock, the `FROM`s of the specs as syntra.yaml renders them now
    (not as last written: a new stage is locked before `doit render` writes it)."""
    from syntra.image.render import render_image

    specs = {
        image.name: [spec.text for spec in render_image(image, repo.root, repo.plan.project)]
        for image in repo.plan.images
    }
    return lockfile.uses(repo.loaded, repo.plan, specs)


def resolve(repo: Repository, use: Use) -> Locked:
    """`use`'s reference as its registry has it now: the digest its tag points at and the
    manifest of each platform built from it, signed when `supply_chain.base_key` says."""
    where, version = repo.registries.for_ref(use.reference)
    digest = digest_in(where, version)
    if digest is None:
        raise SyntraError(f"{use.reference} ({use.where[0]}): not in its registry")
    document = where.registry.get_manifest(where.path, digest)
    if document.is_index:
        children = {platform_of(d): str(d["digest"]) for d in document.children()}
        missing = [p for p in use.platforms if p not in children]
        if use.required and missing:
            raise SyntraError(
                f"{use.reference} ({use.where[0]}): has no {missing[0]} image "
                f"(it has {', '.join(sorted(children)) or 'none'})"
            )
        platforms = {p: children[p] for p in use.platforms if p in children}
    else:
        platforms = dict.fromkeys(use.platforms, str(digest))
    _verify(repo, use, where, str(digest))
    return Locked(use.reference, str(digest), platforms)


def _verify(repo: Repository, use: Use, where: Where, digest: str) -> None:
    """With `supply_chain.base_key`, an image that is not signed with it is refused."""
    key = repo.loaded.config.supply_chain.base_key
    if not key or not use.required:
        return
    from syntra.supply.verify import Policy, problems_of, trust_of, verify

    trust = trust_of(None, repo.root / key, "no base key")
    problems = problems_of(verify(use.reference, where, digest, Policy(trust)))
    if problems:
        raise Refused(f"{use.reference}@{digest} ({use.where[0]}): {problems}; not locked")


def lock(repo: Repository, update: list[str] | None = None) -> Iterator[str]:
    """Write `syntra.lock`: entries still used are kept, new references resolved, unused
    ones dropped. `update` re-resolves the references named (by reference, or by the
    image or service that uses them; empty: every one). Yields old → new for each
    reference resolved."""
    uses = wanted(repo)
    try:
        known = lockfile.read(repo.root) or Lock()
    except SyntraError as exc:  # damaged: this is the command that writes it anew
        yield f"{exc}; resolving every image again"
        known = Lock()
    chosen = _chosen(uses, update) if update is not None else set()
    images: dict[str, Locked] = {}
    for reference, use in sorted(uses.items()):
        old = known.images.get(reference)
        if old is not None and reference not in chosen and _covers(old, use):
            images[reference] = old
        else:
            images[reference] = resolve(repo, use)
            yield from changes(old, images[reference])
    for reference in sorted(set(known.images) - set(uses)):
        yield f"{reference}: no longer used, removed"
    written = lockfile.write(repo.root, Lock(images))
    yield f"wrote {LOCK_FILE} ({len(images)} image(s))" if written else f"{LOCK_FILE} up to date"


def _covers(locked: Locked, use: Use) -> bool:
    return not use.required or all(p in locked.platforms for p in use.platforms)


_OWNER = re.compile(r"^(?:images|services)\.([^.: ]+)")
"""The image or service a use belongs to (`images.server.base` → `server`)."""


def _chosen(uses: dict[str, Use], names: list[str]) -> set[str]:
    """The references `names` stand for; every one when none are named."""
    if not names:
        return set(uses)
    chosen: set[str] = set()
    for name in names:
        found = {
            ref
            for ref, use in uses.items()
            if name == ref or name in {m[1] for w in use.where if (m := _OWNER.match(w))}
        }
        if not found:
            shown = ", ".join(sorted(uses)) or "none"
            raise SyntraError(f"lock --update: nothing named '{name}' is locked (locked: {shown})")
        chosen |= found
    return chosen


def changes(old: Locked | None, new: Locked) -> Iterator[str]:
    """`reference: old → new` and a line per platform that changed, or `unchanged`."""
    if old is None:
        yield f"{new.reference}: locked {new.digest}"
        return
    if old == new:
        yield f"{new.reference}: unchanged ({new.digest})"
        return
    yield f"{new.reference}: {old.digest} → {new.digest}"
    for platform in sorted({*old.platforms, *new.platforms}):
        before, after = old.platforms.get(platform), new.platforms.get(platform)
        if before != after:
            yield f"  {platform}: {before or 'none'} → {after or 'none'}"


def check(repo: Repository, offline: bool = False) -> Iterator[str]:
    """Compare the lock with syntra.yaml and, unless `offline`, with the registries:
    raises `Refused` (exit 1) when an entry is missing, unused, moved or gone. Writes
    nothing."""
    found = lockfile.read(repo.root)
    if found is None:
        raise Refused(f"no {LOCK_FILE}; {lockfile.RUN_LOCK}")
    uses = wanted(repo)
    problem = lockfile.disagreement(found, uses)
    if problem:
        raise Refused(problem)
    if offline:
        yield f"{LOCK_FILE} matches syntra.yaml ({len(uses)} image(s))"
        return
    stale: list[str] = []
    for reference, use in sorted(uses.items()):
        locked = found.images[reference]
        where, _ = repo.registries.for_ref(reference)
        if where.registry.head_manifest(where.path, locked.digest) is None:
            stale.append(f"{reference}: locked {locked.digest} is no longer in its registry")
            continue
        now = resolve(repo, use)
        if now != locked:
            stale += [line.strip() for line in changes(locked, now)]
    yield from stale
    if stale:
        raise Refused(f"{LOCK_FILE} is stale; `syntra lock --update` refreshes it")
    yield f"{LOCK_FILE} is current ({len(uses)} image(s))"
