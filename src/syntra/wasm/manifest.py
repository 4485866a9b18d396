"""`/opt/plugins/plugins.json`: what an image's application needs to load the plugins
bundled with it — per plugin its file and SHA-256, the artifact it was published as
(by digest), module or component, its exports with their signatures, and
the limits declared in syntra.yaml. `syntra.plugins.load_manifest` reads it back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from syntra.fsutil import write_if_changed
from syntra.oci.locate import Registries
from syntra.paths import plugin_file, plugin_manifest
from syntra.plan import ImagePlan, Plan
from syntra.plugins.codecache import default_cache
from syntra.plugins.sandbox import Sandbox
from syntra.wasm.artifact import published_digest


def describe(
    registries: Registries | None, plan: Plan, root: Path, image: ImagePlan
) -> dict[str, Any]:
    cache = default_cache()
    entries = []
    for name in image.plugins:
        guest = plan.guest(name)
        wasm = plugin_file(root, name)
        sandbox = Sandbox(name, wasm, guest.limits, cache)
        published = None
        if guest.destination.registry:
            digest = published_digest(registries, guest, plan, wasm, cache)
            repository = f"{guest.destination.registry}/{guest.destination.repository}"
            published = {"reference": f"{repository}@{digest}", "digest": digest}
        entries.append(
            {
                "name": name,
                "file": wasm.name,
                "sha256": hashlib.sha256(wasm.read_bytes()).hexdigest(),
                "kind": sandbox.kind,
                "artifact": published,
                "exports": sandbox.exports(),
                "limits": guest.limits,
            }
        )
    return {"schemaVersion": 1, "image": image.name, "plugins": entries}


def write_plugins_json(
    registries: Registries | None, plan: Plan, root: Path, image: ImagePlan
) -> Path:
    """The image's manifest in the plugins build context (rewritten only on change); a
    plugin's published digest is asked of `registries` (None: of no registry)."""
    path = plugin_manifest(root, image.name)
    text = json.dumps(describe(registries, plan, root, image), indent=2, sort_keys=True) + "\n"
    write_if_changed(path, text.encode())
    return path
