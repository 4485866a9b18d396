"""`syntra run`: pull a wasm artifact by digest, verify its signature, compile it
through the compile cache and call one function under limits."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from syntra.config import Loaded
from syntra.oci.locate import Registries
from syntra.plugins import Limits, Source, default_cache, limits_of, load_reference
from syntra.supply.verify import Trust, trust_of


@dataclass(frozen=True)
class RunRequest:
    target: str
    """A guest name from syntra.yaml, or a registry reference."""
    function: str
    args: list[str]
    """Each a JSON value; anything that is not JSON is taken as a string."""
    max_mem: int | None = None
    max_ms: int | None = None
    fuel: int | None = None
    runtime: str = "wasmtime"
    key: Path | None = None
    insecure_skip_verify: bool = False
    insecure: bool = False
    """Plain HTTP to a registry syntra.yaml does not declare."""
    as_json: bool = False


def run(loaded: Loaded | None, request: RunRequest) -> int:
    registries = Registries(loaded.config.registries if loaded else None)
    reference, limits = _target(loaded, registries, request.target)
    limits = Limits(
        max_mem=request.max_mem or limits.max_mem,
        max_ms=request.max_ms if request.max_ms is not None else limits.max_ms,
        fuel=request.fuel if request.fuel is not None else limits.fuel,
    )
    trust = _trust(loaded, request)
    cache = default_cache()
    source = Source(reference, trust, request.insecure, registries)
    plugin = load_reference(source, limits, cache, request.runtime)
    result = plugin.measure(request.function, *[_value(arg) for arg in request.args])
    if request.as_json:
        metrics = {
            **asdict(plugin.metrics),
            "call_ms": result.elapsed_ms,
            "memory_bytes": result.memory_bytes,
            "fuel_used": result.fuel_used,
        }
        print(json.dumps({"function": request.function, "args": result.args,
                          "value": result.value, "stdout": result.stdout,
                          "metrics": metrics}, indent=2))  # fmt: skip
    else:
        print(json.dumps(result.value))
    return 0


def _target(loaded: Loaded | None, registries: Registries, target: str) -> tuple[str, Limits]:
    """The reference to pull and the default limits: a guest's published digest with
    its declared limits (`names.named`), or a reference with none."""
    from syntra.cli.names import named

    reference, guest = named(loaded, registries, target)
    return reference, limits_of(guest.limits) if guest else Limits()


def _trust(loaded: Loaded | None, request: RunRequest) -> Trust | None:
    if request.insecure_skip_verify:
        print(
            f"WARNING: --insecure-skip-verify: {request.target} runs WITHOUT its signature "
            "being checked",
            file=sys.stderr,
        )
        return None
    return trust_of(
        loaded,
        request.key,
        "nothing to verify the signature against: give --key PUB, or set "
        "supply_chain.signing in syntra.yaml (--insecure-skip-verify runs it unverified)",
    )


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text
