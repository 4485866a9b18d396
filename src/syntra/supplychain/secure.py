"""Securing what was pushed: for every digest in a record, a signature; for every
platform image and wasm artifact, signed SBOM attestations; for the top-level digest,
signed SLSA provenance."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from packageurl import PackageURL

from syntra.config import Loaded
from syntra.errors import SyntraError
from syntra.oci import MANIFEST, digest_of
from syntra.oci.locate import Registries, Where
from syntra.oci.media import MAX_DOCUMENT, TITLE
from syntra.paths import plugin_file, source_files, wasm_tools
from syntra.plan import Destination, GuestPlan, Plan
from syntra.records import ImageRecord, Record, WasmRecord, find_record
from syntra.supply import keys
from syntra.supply.attach import Attachments
from syntra.supply.contents import Component, artifact_purl
from syntra.supply.notes import note_supply
from syntra.supply.predicates import BUILD_TYPE, PROVENANCE
from syntra.supply.sbom import FORMATS, describe, normalise, scan, with_plugins
from syntra.supply.seal import Subject, seal_for
from syntra.wasm.compile import recorded_toolchain
from syntra.wasm.languages import language


def subjects(record: Record, where: Where) -> list[Subject]:
    """The record's top-level digest, then each platform manifest of an image, or a
    guest's web bundle: its own subject, signed, with its SBOM and provenance (where the
    registry has it: a mirror holds only what was copied there)."""
    top = where.registry.get_manifest(where.path, record.digest)
    found = [Subject(record.digest, top.media_type, len(top.data), top=True)]
    for child in record.platforms if isinstance(record, ImageRecord) else []:
        found.append(Subject(child.digest, child.media_type, child.size, child.platform))
    web = record.web if isinstance(record, WasmRecord) else None
    if web is not None and where.registry.find_manifest(where.path, web.digest) is not None:
        found.append(Subject(web.digest, MANIFEST, web.size, top=True))
    return found


def secure(
    loaded: Loaded, registries: Registries, plan: Plan, record: Record, destination: Destination
) -> list[str]:
    """Attach everything to the digests of `record`; returns one line per attachment.

    Every claim is prepared (SBOMs scanned) before the first signature, so a keyless
    certificate is only needed for the signing itself."""
    keys.check_signing(loaded)
    chain = loaded.config.supply_chain
    where = registries.locate(destination)
    claims: list[tuple[Subject, str | None, Any, str]] = []  # no predicate: a signature
    bundled = (  # every platform bundles the same plugins: their parts are read once
        [_plugin(loaded, registries, plan, name) for name in plan.image(record.name).plugins]
        if isinstance(record, ImageRecord) and chain.sbom
        else []
    )
    for subject in subjects(record, where):
        claims.append((subject, None, None, f"signed {subject.digest}"))
        if subject.platform is not None or (isinstance(record, WasmRecord) and subject.top):
            found = _sboms(loaded, plan, record, where, subject, bundled)
            for fmt, predicate in found.items():
                claims.append(
                    (subject, FORMATS[fmt], predicate, f"{fmt} SBOM for {subject.digest}")
                )
        if subject.top and chain.provenance:
            predicate = provenance(loaded, plan, record)
            claims.append((subject, PROVENANCE, predicate, f"provenance for {subject.digest}"))
    attachments = Attachments(where.registry, where.path)
    seal = seal_for(loaded, attachments, where.identity)
    lines = []
    for subject, predicate_type, predicate, line in claims:
        if predicate_type is None:
            seal.sign(subject)
        elif predicate_type == PROVENANCE and _proven(loaded, attachments, where, subject):
            # The digest was built once; a later run that only retagged it (or another
            # checkout) did not build it, and says nothing new about how it was built.
            line = f"provenance for {subject.digest}: already attested"
        else:
            seal.attest(subject, predicate_type, predicate)
        lines.append(line)
    note_supply(loaded.root, record.name, where.identity, claims)
    return lines


def _proven(loaded: Loaded, attachments: Attachments, where: Where, subject: Subject) -> bool:
    """Whether `subject` already has provenance that verifies with this signing setup."""
    from syntra.supply.verify import trust_of

    _, attested = trust_of(loaded).examine(attachments, subject.digest, [])
    return PROVENANCE in attested


def _sboms(
    loaded: Loaded, plan: Plan, record: Record, where: Where, subject: Subject,
    bundled: list[Component],
) -> dict[str, dict[str, Any]]:  # fmt: skip
    """Each configured format's SBOM of `subject`, normalised: syft's for an image (with
    the plugins it bundles), the artifact's own parts for a wasm guest."""
    formats: Sequence[str] = loaded.config.supply_chain.sbom
    if not formats:  # `sbom: []`: nothing to scan
        return {}
    if isinstance(record, WasmRecord) and record.web and subject.digest == record.web.digest:
        guest = plan.guest(record.name)
        bundle = _web_part(loaded, plan, record, where, guest)
        documents = {fmt: describe(fmt, bundle) for fmt in formats}
        plugins: list[Component] = []
        created = guest.source_date_epoch
    elif isinstance(record, WasmRecord):
        guest = plan.guest(record.name)
        wasm = _wasm_bytes(loaded, record, where)
        purl = artifact_purl(record.name, record.digest, where.identity)
        version = _version_of(where, record.digest)
        artifact = _wasm_part(loaded, guest, wasm, record.built_with, purl, version)
        documents = {fmt: describe(fmt, artifact) for fmt in formats}
        plugins, created = [], guest.source_date_epoch
    else:
        found = where.registry.login
        login = (where.registry.host, found.username, found.password) if found else None
        source = f"registry:{where.identity}@{subject.digest}"
        documents = scan(
            source, where.identity, subject.digest, formats, where.registry.insecure, login
        )
        plugins = bundled
        created = _created(where, subject.digest) or plan.source_date_epoch
    # Dates and versions are the subject's own, not this run's: an artifact that a later
    # commit only retagged gets the same SBOM bytes again, so nothing new is attested.
    return {
        fmt: with_plugins(fmt, normalise(fmt, document, subject.digest, created), plugins)
        for fmt, document in documents.items()
    }


def _version_of(where: Where, digest: str) -> str:
    """The version annotation of a pushed manifest (the commit that built it)."""
    annotations = where.registry.get_manifest(where.path, digest).json().get("annotations")
    found = (annotations or {}).get("org.opencontainers.image.version")
    return str(found) if found else digest


def _created(where: Where, digest: str) -> int | None:
    """When an image was built: its config's `created` (SOURCE_DATE_EPOCH of its build)."""
    try:
        manifest = where.registry.get_manifest(where.path, digest).json()
        described = manifest["config"]
        config = json.loads(
            where.registry.get_blob(
                where.path, described["digest"], described["size"], MAX_DOCUMENT
            )
        )
        return int(datetime.fromisoformat(config["created"].replace("Z", "+00:00")).timestamp())
    except (KeyError, TypeError, ValueError):
        return None


def _wasm_bytes(loaded: Loaded, record: WasmRecord, where: Where) -> bytes:
    """The artifact's wasm: the local build when it is the pushed one, else the registry's."""
    local = plugin_file(loaded.root, record.name)
    if local.is_file() and digest_of(data := local.read_bytes()) == record.wasm_digest:
        return data
    return where.registry.get_blob(where.path, record.wasm_digest)


def _wasm_part(
    loaded: Loaded, guest: GuestPlan, wasm: bytes, built_with: dict[str, str], purl: str,
    version: str,
) -> Component:  # fmt: skip
    parts = language(guest.language).components(wasm, loaded.root / guest.source, built_with)
    sha256 = digest_of(wasm).split(":")[1]
    return Component(guest.name, version, purl, "application", sha256, tuple(parts))


def _web_part(
    loaded: Loaded, plan: Plan, record: WasmRecord, where: Where, guest: GuestPlan
) -> Component:
    """A web bundle: each file as it was pushed (from the registry), the module as the
    guest artifact's parts."""
    assert record.web is not None
    manifest = where.registry.get_manifest(where.path, record.web.digest).json()
    version = _version_of(where, record.digest)
    module = artifact_purl(record.name, record.digest, where.identity)
    files: list[Component] = []
    for layer in [item for item in manifest.get("layers", []) if isinstance(item, dict)]:
        title = str((layer.get("annotations") or {}).get(TITLE, ""))
        sha256 = str(layer.get("digest", "")).partition(":")[2]
        if title.endswith(".wasm"):
            wasm = where.registry.get_blob(where.path, str(layer["digest"]))
            files.append(_wasm_part(loaded, guest, wasm, record.built_with, module, version))
        else:
            purl = PackageURL(type="generic", name=title, version=f"sha256:{sha256}").to_string()
            files.append(Component(title, f"sha256:{sha256}", purl, "file", sha256))
    purl = artifact_purl(f"{record.name}-web", record.web.digest, where.identity)
    return Component(f"{record.name}-web", version, purl, "application", None, tuple(files))


def _plugin(loaded: Loaded, registries: Registries, plan: Plan, name: str) -> Component:
    """A plugin as its image bundles it (the file at /opt/plugins), with its parts; from
    the registry when this checkout has only the guest's record (a CI signing job)."""
    guest = plan.guest(name)
    record = find_record(loaded.root, name)
    path = plugin_file(loaded.root, name)
    if path.is_file():
        wasm = path.read_bytes()
    elif isinstance(record, WasmRecord):
        where = registries.locate(guest.destination)
        wasm = where.registry.get_blob(where.path, record.wasm_digest)
    else:
        raise SyntraError(f"plugin {name}: {path} is missing; build it first (`doit wasm`)")
    if isinstance(record, WasmRecord) and record.wasm_digest == digest_of(wasm):
        where = registries.locate(guest.destination)
        purl = artifact_purl(name, record.digest, where.identity)
        built_with, version = record.built_with, _version_of(where, record.digest)
    else:  # not published: named by its bytes, which is what the image holds
        version = digest_of(wasm)
        purl = PackageURL(type="generic", name=name, version=version).to_string()
        built_with = recorded_toolchain(wasm_tools(loaded.root, name))
    return _wasm_part(loaded, guest, wasm, built_with, purl, version)


def provenance(loaded: Loaded, plan: Plan, record: Record) -> dict[str, Any]:
    """SLSA v1: what was built from what, by which command, deterministically. Builders
    and commands are the ones recorded when the build ran, not this process's."""
    dependencies: list[dict[str, Any]] = []
    commit = plan.git.get("commit")
    if commit:
        dependencies.append({**_source(plan), "digest": {"gitCommit": commit}})
    if isinstance(record, ImageRecord):
        if record.base:  # pinned when the image was built, not resolved again now
            algorithm, _, hexdigest = record.base.partition("@")[2].partition(":")
            dependencies.append({"uri": f"oci://{record.base}", "digest": {algorithm: hexdigest}})
        commands = sorted({p.command for p in record.platforms if p.command} or {record.command})
        builders = sorted({p.builder for p in record.platforms if p.builder})
        inputs = {p.platform: p.inputs for p in record.platforms if p.inputs}
    else:
        guest = plan.guest(record.name)
        tree = hashlib.sha256()
        for path in source_files(loaded.root / guest.source):
            tree.update(str(path.relative_to(loaded.root)).encode() + b"\0")
            tree.update(hashlib.sha256(path.read_bytes()).digest())
        dependencies.append({**_source(plan, guest.source), "digest": {"sha256": tree.hexdigest()}})
        commands, builders, inputs = [record.command], sorted(record.built_with), {}
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "config": {
                    "path": "syntra.yaml",
                    "digest": {"sha256": loaded.digest.split(":")[1]},
                },
                "command": commands[0] if len(commands) == 1 else commands,
                "artifact": record.name,
            },
            "internalParameters": {
                "version": plan.version,
                "sourceDateEpoch": plan.source_date_epoch,
                "builders": builders,
                **({"inputs": inputs} if inputs else {}),
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": "https://syntra.dev/builder/syntra"},
            "metadata": {"invocationId": f"{record.name}@{record.digest}"},
        },
    }


def _source(plan: Plan, path: str | None = None) -> dict[str, str]:
    """Where the sources are: `git+<origin>@<commit>[#<path>]` (SPDX's download-location
    form, a valid URI); without an origin, only the path's name, never the checkout's
    location (two clones of a commit attest the same)."""
    commit, origin = plan.git.get("commit"), plan.git.get("remote")
    if not (commit and origin):
        return {"name": path or "source"}
    return {"uri": f"git+{origin}@{commit}" + (f"#{quote(path)}" if path else "")}
