"""Signing in tests: the passphrase, a syntra.yaml section, and cosign 2.5 from Debian 13
as the independent verifier."""

from __future__ import annotations

import os
import subprocess

from tests.conftest import REPO

PASSPHRASE = {"SYNTRA_KEY_PASSPHRASE": "correct horse battery staple"}


SIGNING = (
    "supply_chain:\n  sbom: [spdx-json, cyclonedx-json]\n"
    "  signing: {mode: key, key: keys/cosign.key}\n"
)


COSIGN = REPO / ".cache" / "trixie" / "cosign"


def cosign(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """cosign 2.5 from Debian 13: the field's own verifier, independent of Syntra."""
    assert COSIGN.exists(), "run .ci/setup: it fetches cosign 2.5 from Debian 13"
    return subprocess.run(
        [str(COSIGN), *args], capture_output=True, text=True, check=False,
        env={**os.environ, "COSIGN_PASSWORD": PASSPHRASE["SYNTRA_KEY_PASSPHRASE"], **(env or {})},
    )  # fmt: skip
