"""`syntra promote NAME|REF --to REGISTRY[/REPOSITORY]`: a tested digest moved from one
registry to another without rebuilding. The source must verify; the index, its children
and their signatures, attestations and referrers are copied with the artifact's tags;
the destination then gets its own signatures and attestations (they name its
repository), and must verify there. Running it again changes nothing."""

from __future__ import annotations

from pathlib import Path

from syntra.config import Loaded
from syntra.errors import Refused, SyntraError, did_you_mean
from syntra.image.publish import Pushed, image_record, index_children
from syntra.oci.locate import Registries, Where, digest_in, pushed_digest
from syntra.plan import Destination, Plan
from syntra.plugins.binary import kind_of
from syntra.records import Record, WasmRecord, find_record, shared_fields
from syntra.registry.transfer import CopyOptions, gather, present_in, scratch, write_content
from syntra.supply.verify import policy_for, problems_of, verify
from syntra.supplychain.secure import secure


def promote(
    loaded: Loaded,
    registries: Registries,
    plan: Plan,
    source: str,
    to: str,
    tags: list[str] | None = None,
) -> list[str]:
    """Lines saying what was done; Refused when the source or the copy does not verify.
    The copy gets `tags`, by default the artifact's tags in this checkout."""
    destinations = {output.name: output.destinations[0] for output in plan.outputs()}
    name, where, digest = _source(loaded.root, registries, destinations, source)
    policy = policy_for(loaded)
    problems = problems_of(verify(name, where, digest, policy))
    if problems:
        raise Refused(f"{where.identity}@{digest}: refused, the source does not verify: {problems}")
    target = _target(loaded, destinations[name], to, tags)
    there = registries.locate(target)
    with scratch() as folder:
        present = present_in(registries, there.identity, there.registry.insecure)
        options = CopyOptions(referrers=True, insecure=where.registry.insecure)
        content = gather(registries, f"{where.identity}@{digest}", folder, present, options)
        content.tags |= dict.fromkeys(target.tags, content.top)
        write_content(registries, there.identity, content, there.registry.insecure)
    record = _record(loaded, plan, name, where, digest)
    lines = [f"copied {digest} to {there.identity} ({', '.join(target.tags)})"]
    lines += secure(loaded, registries, plan, record, target)
    problems = problems_of(verify(name, there, digest, policy))
    if problems:
        raise Refused(f"{there.identity}@{digest}: the promoted copy does not verify: {problems}")
    return [*lines, f"verified {there.identity}@{digest}"]


def _source(
    root: Path, registries: Registries, destinations: dict[str, Destination], source: str
) -> tuple[str, Where, str]:
    """The artifact of syntra.yaml that `source` (its name, or a reference to it) is."""
    if source in destinations:
        where = registries.locate(destinations[source])
        return source, where, pushed_digest(root, source, where, destinations[source])
    where, version = registries.for_ref(source)
    for name, destination in destinations.items():
        if registries.locate(destination).identity == where.identity:
            resolved = digest_in(where, version)
            if resolved is None:
                raise SyntraError(f"{source} is not in the registry")
            return name, where, resolved
    hint = did_you_mean(source, list(destinations))
    raise SyntraError(f"{source} is not an image or guest of syntra.yaml{hint}")


def _target(loaded: Loaded, source: Destination, to: str, tags: list[str] | None) -> Destination:
    registry, _, repository = to.partition("/")
    entry = loaded.config.registries.get(registry)
    if entry is None:
        hint = did_you_mean(registry, list(loaded.config.registries))
        raise SyntraError(f"--to {to}: '{registry}' is not a registry of syntra.yaml{hint}")
    repository = repository or source.repository
    chosen = tags or source.tags
    return Destination(
        registry=entry.url,
        insecure=entry.insecure,
        repository=repository,
        tags=chosen,
        refs=[f"{entry.url}/{repository}:{tag}" for tag in chosen],
    )


def _record(loaded: Loaded, plan: Plan, name: str, where: Where, digest: str) -> Record:
    """What signing needs to know of the artifact: this checkout's record when it names
    this digest, else read from the registry."""
    record = find_record(loaded.root, name)
    if record is not None and record.digest == digest:
        return record
    images = {image.name: image for image in plan.images}
    if name in images:
        children, _ = index_children(where, digest)
        return image_record(plan, images[name], Pushed(digest, children))
    guest = plan.guest(name)
    manifest = where.registry.get_manifest(where.path, digest)
    layer = manifest.json()["layers"][0]
    head = where.registry.get_blob(where.path, layer["digest"])
    return WasmRecord(
        **shared_fields(plan, name, guest.destination, digest, 0),
        media_type=manifest.media_type,
        artifact_type=str(manifest.json()["config"]["mediaType"]),
        wasm_digest=layer["digest"],
        wasm_bytes=layer["size"],
        wasm_kind=kind_of(head[:8]),
    )
