"""Securing what was pushed: for every digest in a record, a signature; for every
platform image and wasm artifact, signed SBOM attestations; for the top-level digest,
signed SLSA provenance."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from syntra import preflight
from syntra.config import Loaded
from syntra.layout import source_files
from syntra.plan import Destination, Plan
from syntra.publish import Where, locate
from syntra.records import ImageRecord, Record, WasmRecord
from syntra.supply.attach import Attachments
from syntra.supply.sbom import FORMATS, normalise, scan
from syntra.supply.seal import Subject, seal_for

PROVENANCE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "https://syntra.dev/build/v1"


def subjects(record: Record, where: Where) -> list[Subject]:
    """The record's top-level digest, then each platform manifest of an image."""
    top = where.registry.get_manifest(where.path, record.digest)
    found = [Subject(record.digest, top.media_type, len(top.data), top=True)]
    for child in record.platforms if isinstance(record, ImageRecord) else []:
        found.append(Subject(child.digest, child.media_type, child.size, child.platform))
    return found


def secure(loaded: Loaded, plan: Plan, record: Record, destination: Destination) -> list[str]:
    """Attach everything to the digests of `record`; returns one line per attachment.

    Every claim is prepared (SBOMs scanned) before the first signature, so a keyless
    certificate is only needed for the signing itself."""
    preflight.signing(loaded)
    chain = loaded.config.supply_chain
    where = locate(loaded.config, destination)
    claims: list[tuple[Subject, str | None, Any, str]] = []  # no predicate: a signature
    for subject in subjects(record, where):
        claims.append((subject, None, None, f"signed {subject.digest}"))
        if subject.platform is not None or (isinstance(record, WasmRecord) and subject.top):
            for fmt, document in _sboms(loaded, plan, record, where, subject, chain.sbom).items():
                predicate = normalise(fmt, document, subject.digest, plan.source_date_epoch)
                claims.append(
                    (subject, FORMATS[fmt], predicate, f"{fmt} SBOM for {subject.digest}")
                )
        if subject.top and chain.provenance:
            predicate = provenance(loaded, plan, record)
            claims.append((subject, PROVENANCE, predicate, f"provenance for {subject.digest}"))
    attachments = Attachments(where.registry, where.path)
    seal = seal_for(loaded, attachments, where.identity)
    for subject, predicate_type, predicate, _ in claims:
        if predicate_type is None:
            seal.sign(subject)
        else:
            seal.attest(subject, predicate_type, predicate)
    return [line for *_, line in claims]


def _sboms(
    loaded: Loaded, plan: Plan, record: Record, where: Where, subject: Subject,
    formats: Sequence[str],
) -> dict[str, bytes]:  # fmt: skip
    name = where.identity
    if isinstance(record, WasmRecord):
        guest = next(g for g in plan.guests if g.name == record.name)
        source = f"dir:{loaded.root / guest.source}"
    else:
        source = f"registry:{name}@{subject.digest}"
    found = where.registry.login
    login = (where.registry.host, found.username, found.password) if found else None
    return scan(source, name, subject.digest, formats, where.registry.insecure, login)


def provenance(loaded: Loaded, plan: Plan, record: Record) -> dict[str, Any]:
    """SLSA v1: what was built from what, by which command, deterministically."""
    dependencies: list[dict[str, Any]] = []
    commit = plan.git.get("commit")
    if commit:
        remote = plan.git.get("remote") or "unknown"
        dependencies.append({"uri": f"git+{remote}@{commit}", "digest": {"gitCommit": commit}})
    if isinstance(record, ImageRecord):
        if record.base:  # pinned when the image was built, not resolved again now
            name, _, digest = record.base.partition("@")
            dependencies.append(
                {"uri": f"oci://{name}", "digest": {"sha256": digest.split(":")[1]}}
            )
        command = f"doit docker:{record.name}"
    else:
        guest = next(g for g in plan.guests if g.name == record.name)
        tree = hashlib.sha256()
        for path in source_files(loaded.root / guest.source):
            tree.update(str(path.relative_to(loaded.root)).encode() + b"\0")
            tree.update(hashlib.sha256(path.read_bytes()).digest())
        dependencies.append({"uri": guest.source, "digest": {"sha256": tree.hexdigest()}})
        command = f"doit wasm:{record.name}.publish"
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": {
                "config": {
                    "path": "syntra.yaml",
                    "digest": {"sha256": loaded.digest.split(":")[1]},
                },
                "command": command,
                "artifact": record.name,
            },
            "internalParameters": {
                "version": plan.version,
                "sourceDateEpoch": plan.source_date_epoch,
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": "https://syntra.dev/builder/syntra"},
            "metadata": {"invocationId": f"{record.name}@{record.digest}"},
        },
    }
