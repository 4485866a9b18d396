"""Running `syntra verify` and showing its findings (a rich table, or JSON)."""

from __future__ import annotations

import json
import sys

from rich.console import Console
from rich.table import Table

from syntra.config import Loaded
from syntra.errors import SyntraError
from syntra.plan import build_plan
from syntra.publish import locate, registry_for_ref
from syntra.records import read_record
from syntra.supply.verify import Check, trust_for, verify


def run_verify(loaded: Loaded, ref: str | None, as_json: bool) -> int:
    chain = loaded.config.supply_chain
    trust = trust_for(loaded)
    checks: list[Check] = []
    if ref:
        where, version = registry_for_ref(loaded.config, ref)
        if version.startswith("sha256:"):
            digest: str | None = version
        else:
            digest = where.registry.head_manifest(where.path, version)
        if digest is None:
            raise SyntraError(f"{ref} is not in the registry")
        checks = verify(ref, where, digest, trust, chain.sbom, chain.provenance)
    else:
        plan = build_plan(loaded)
        artifacts = [(i.name, i.destination) for i in plan.images] + [
            (g.name, g.destination) for g in plan.guests if g.destination.registry
        ]
        for name, destination in artifacts:
            try:
                record = read_record(loaded.root, name)
            except SyntraError as exc:
                checks.append(Check(name, "", "", None, False, False, False, [str(exc)]))
                continue
            where = locate(loaded.config, destination)
            found = verify(name, where, record.digest, trust, chain.sbom, chain.provenance)
            checks.extend(found)
    if as_json:
        print(json.dumps([check.to_json() for check in checks], indent=2))
    else:
        _table(checks)
    return 0 if checks and all(check.ok for check in checks) else 1


def _table(checks: list[Check]) -> None:
    def mark(value: bool | None) -> str:
        return "-" if value is None else ("[green]ok[/]" if value else "[red]MISSING[/]")

    table = Table(title="syntra verify")
    for column in ("artifact", "platform", "digest", "signature", "sbom", "provenance", "problems"):
        table.add_column(column, overflow="fold")
    for check in checks:
        table.add_row(
            check.artifact, check.platform or "", check.digest, mark(check.signature),
            mark(check.sbom), mark(check.provenance), "; ".join(check.problems),
        )  # fmt: skip
    Console(width=max(Console().width, 160), file=sys.stdout).print(table)
