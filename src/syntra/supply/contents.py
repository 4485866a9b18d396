"""What a wasm guest is made of, for its SBOM.

syft sees neither inside a wasm component nor which compiler made it, so the parts are
read here: a Python component embeds CPython (its version string is in the component),
the componentize-py runtime, and every package on its Python path (the guest's source
folder, where vendored packages carry `*.dist-info`); an Embedded Swift guest is its
toolchain's output plus its SwiftPM dependencies (`Package.resolved`). Compiler
versions come from what the build recorded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packageurl import PackageURL

from syntra.errors import SyntraError

_CPYTHON = re.compile(rb"\x00(3\.\d+\.\d+(?:(?:a|b|rc)\d+)?\+?) \(")


@dataclass(frozen=True)
class Component:
    """One part of an artifact; `kind` is CycloneDX's component type."""

    name: str
    version: str
    purl: str
    kind: str = "library"
    sha256: str | None = None
    parts: tuple[Component, ...] = ()


def guest_components(
    language: str, wasm: bytes, source: Path, built_with: dict[str, str]
) -> list[Component]:
    if language == "python":
        return python_components(wasm, source, built_with)
    return swift_components(source, built_with)


def python_components(wasm: bytes, source: Path, built_with: dict[str, str]) -> list[Component]:
    found = _CPYTHON.search(wasm)
    if found is None:
        raise SyntraError("the component embeds no CPython version string: not componentize-py's")
    cpython = found.group(1).decode()
    parts = [
        Component("cpython", cpython, _purl("generic", "cpython", cpython), "framework"),
    ]
    if "componentize-py" in built_with:
        version = built_with["componentize-py"]
        parts.append(
            Component("componentize-py", version, _purl("pypi", "componentize-py", version))
        )
    for metadata in sorted(source.glob("*.dist-info/METADATA")):
        headers = HeaderParser().parsestr(metadata.read_text(errors="replace"))
        package, release = headers.get("Name"), headers.get("Version")
        if package and release:
            parts.append(Component(package, release, _purl("pypi", package, release)))
    return parts


def swift_components(source: Path, built_with: dict[str, str]) -> list[Component]:
    version = built_with.get("swift", "unknown")
    parts = [Component("swift", version, _purl("generic", "swift", version), "framework")]
    resolved = source / "Package.resolved"
    if resolved.is_file():
        parts += _swift_pins(resolved)
    return parts


def _swift_pins(resolved: Path) -> list[Component]:
    """SwiftPM's pins (format versions 1 to 3) as `pkg:swift` components."""
    try:
        data = json.loads(resolved.read_text())
        pins = data["pins"] if "pins" in data else data["object"]["pins"]
    except (ValueError, KeyError, TypeError):
        raise SyntraError(f"{resolved.name}: not a SwiftPM Package.resolved") from None
    parts = []
    for pin in pins:
        location = str(pin.get("location") or pin.get("repositoryURL") or "")
        state = pin.get("state") or {}
        version = str(state.get("version") or state.get("revision") or "unknown")
        path = re.sub(r"^[a-z+]+://|^git@|\.git$", "", location).replace(":", "/").strip("/")
        namespace, _, name = path.rpartition("/")
        name = name or str(pin.get("identity") or pin.get("package"))
        parts.append(Component(name, version, _purl("swift", name, version, namespace or None)))
    return parts


def _purl(kind: str, name: str, version: str, namespace: str | None = None) -> str:
    return PackageURL(type=kind, namespace=namespace, name=name, version=version).to_string()


def artifact_purl(name: str, digest: str, repository: str) -> str:
    """The OCI purl of a pushed artifact."""
    qualifiers = {"repository_url": repository}
    return PackageURL(type="oci", name=name, version=digest, qualifiers=qualifiers).to_string()
