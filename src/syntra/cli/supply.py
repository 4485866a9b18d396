"""Running `syntra verify` and showing its findings (a rich table, or JSON)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from syntra.config import Loaded
from syntra.errors import SyntraError
from syntra.oci.locate import Registries, pushed_digest, resolve_tags
from syntra.plan import build_plan
from syntra.supply.verify import Check, policy_for, trust_of, verify


def run_verify(
    loaded: Loaded, ref: str | None, as_json: bool, key: Path | None = None,
    insecure: bool = False,
) -> int:  # fmt: skip
    """Check `ref` (a reference, or an image or guest name from syntra.yaml), or every
    artifact syntra.yaml pushes. Digests come from this checkout's records when it has
    them, otherwise from the plan's tags in the registry, so a fresh clone can verify."""
    missing = "nothing to verify against: set supply_chain.signing (mode key or keyless)"
    policy = policy_for(loaded, trust_of(loaded, key, missing))
    plan = build_plan(loaded)
    for line in plan.warnings:
        print(line, file=sys.stderr)
    artifacts = {output.name: output.destinations for output in plan.outputs()}
    checks: list[Check] = []
    registries = Registries(loaded.config.registries)
    if ref and ref not in artifacts:
        where, version = registries.for_ref(ref, insecure)
        digest = resolve_tags(where, [version])  # a digest is itself
        checks = verify(ref, where, digest, policy)
    else:
        for name, each in artifacts.items():
            if ref and name != ref:
                continue
            for destination in each:  # every registry the artifact goes to
                where = registries.locate(destination)
                try:
                    digest = pushed_digest(loaded.root, name, where, destination)
                except SyntraError as exc:
                    failed = Check(name, where.identity, "", None, False, False, False, [str(exc)])
                    checks.append(failed)
                    continue
                checks.extend(verify(name, where, digest, policy))
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
