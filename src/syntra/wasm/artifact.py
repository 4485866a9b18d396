"""Guests as OCI artifacts, in the CNCF TAG Runtime layout for WebAssembly.

One layer, `application/wasm`, titled `<guest>.wasm`; a config of media type
`application/vnd.wasm.config.v0+json` naming the layer and, for components, the
world's exports and imports. Everything derives from the wasm bytes and
SOURCE_DATE_EPOCH, so the same guest gives the same artifact digest. The blobs, the
manifest (as exact bytes) and then the tags go up through Syntra's one push path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from syntra.errors import SyntraError
from syntra.formats import canonical_json, rfc3339
from syntra.oci import MANIFEST, Blob, Document, digest_of, push
from syntra.oci.locate import Registries
from syntra.paths import wasm_tools
from syntra.plan import GuestPlan, Plan
from syntra.plugins.binary import kind_of_file
from syntra.records import WasmRecord, shared_fields, write_record
from syntra.wasm.compile import recorded_toolchain

CONFIG_MEDIA_TYPE = "application/vnd.wasm.config.v0+json"
LAYER_MEDIA_TYPE = "application/wasm"


def world_of(wasm: Path, cache: Path) -> dict[str, list[str]]:
    """A component's exports and imports (from the compile cache, so no recompiling)."""
    from syntra.plugins.calls import engine as make_engine
    from syntra.plugins.codecache import compiled

    engine = make_engine(False)
    component = compiled(engine, wasm.read_bytes(), "component", cache, False).code
    return {
        "exports": sorted(component.type.exports(engine)),
        "imports": sorted(component.type.imports(engine)),
    }


def artifact(guest: GuestPlan, plan: Plan, wasm: Path, cache: Path) -> tuple[bytes, bytes, bytes]:
    """(config, manifest, layer) bytes of the guest's artifact."""
    layer = wasm.read_bytes()
    kind = kind_of_file(wasm)
    created = rfc3339(guest.source_date_epoch)
    config: dict[str, Any] = {
        "created": created,
        "architecture": "wasm",
        "os": "wasip2" if kind == "component" else "wasip1",
        "layerDigests": [digest_of(layer)],
    }
    if kind == "component":
        config["component"] = world_of(wasm, cache)
    config_bytes = canonical_json(config)
    annotations = {
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.version": plan.version,
        "org.opencontainers.image.revision": str(plan.git.get("commit") or ""),
        "org.opencontainers.image.title": guest.name,
    }
    if plan.git.get("remote"):
        annotations["org.opencontainers.image.source"] = str(plan.git["remote"])
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": CONFIG_MEDIA_TYPE,
            "digest": digest_of(config_bytes),
            "size": len(config_bytes),
        },
        "layers": [
            {
                "mediaType": LAYER_MEDIA_TYPE,
                "digest": digest_of(layer),
                "size": len(layer),
                "annotations": {"org.opencontainers.image.title": f"{guest.name}.wasm"},
            }
        ],
        "annotations": annotations,
    }
    return config_bytes, canonical_json(manifest), layer


def inputs_tag(guest: GuestPlan, wasm: Path) -> str:
    """`inputs-<sha256>` of what the artifact is made of (its wasm and name): the tag that
    finds an artifact already pushed from these bytes, whichever commit pushed it."""
    made_of = {"wasm": digest_of(wasm.read_bytes()), "name": guest.name}
    return "inputs-" + hashlib.sha256(canonical_json(made_of)).hexdigest()


def published_digest(
    registries: Registries | None, guest: GuestPlan, plan: Plan, wasm: Path, cache: Path
) -> str:
    """The digest the artifact has in its registry: the one already pushed from these
    bytes, else the one `publish` will push (also when the registry cannot be asked, or
    `registries` is None: a build that pushes nothing asks no registry)."""
    found = None
    if registries is not None:
        try:
            where = registries.locate(guest.destination)
            found = where.registry.find_manifest(where.path, inputs_tag(guest, wasm))
        except SyntraError:
            found = None
    return found.digest if found else digest_of(artifact(guest, plan, wasm, cache)[1])


def publish_artifact(
    registries: Registries, guest: GuestPlan, plan: Plan, wasm: Path, root: Path, cache: Path
) -> WasmRecord:
    """Push the artifact: blobs, manifest by digest, then the tags; write the record. An
    artifact already pushed from the same bytes only gets this commit's tags."""
    where = registries.locate(guest.destination)
    config_bytes, manifest_bytes, layer = artifact(guest, plan, wasm, cache)
    reused = where.registry.find_manifest(where.path, inputs_tag(guest, wasm))
    manifest = reused or Document(manifest_bytes, MANIFEST)
    tags = dict.fromkeys(guest.destination.tags, manifest)
    if reused is None:
        uploaded = push(
            where.registry,
            where.path,
            blobs=[Blob.of(config_bytes), Blob(digest_of(layer), len(layer), path=wasm)],
            manifests=[manifest],
            tags={**tags, inputs_tag(guest, wasm): manifest},
        )
    else:
        uploaded = push(where.registry, where.path, tags=tags)
    record = WasmRecord(
        **shared_fields(plan, guest.name, guest.destination, manifest.digest, uploaded),
        media_type=MANIFEST,
        artifact_type=CONFIG_MEDIA_TYPE,
        wasm_digest=digest_of(layer),
        wasm_bytes=len(layer),
        wasm_kind=kind_of_file(wasm),
        built_with=recorded_toolchain(wasm_tools(root, guest.name)),
    )
    write_record(root, record)
    if guest.mirrors:  # the same artifact in every further registry
        from syntra.registry.transfer import mirror

        mirror(registries, where, record.digest, guest.mirrors)
    return record
