"""SBOMs checked by the field's own validators: pyspdxtools (spdx-tools) and the
CycloneDX 1.6 JSON schema (cyclonedx-python-lib)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator


def assert_valid(spdx: dict[str, Any], bom: dict[str, Any], tmp: Path) -> None:
    document = tmp / "sbom.spdx.json"
    document.write_text(json.dumps(spdx))
    program = Path(sys.executable).parent / "pyspdxtools"
    checked = subprocess.run(
        [str(program), "-i", str(document)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    errors = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom))
    assert errors is None, errors
