"""What an artifact is made of, for its SBOM, as typed components with PURLs.

syft sees neither inside a wasm component nor which compiler made it, so each guest
language lists a guest's parts itself (`Language.components`), with the compiler
versions the build recorded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Component:
    """One part of an artifact; `kind` is CycloneDX's component type."""

    name: str
    version: str
    purl: str
    kind: str = "library"
    sha256: str | None = None
    parts: tuple[Component, ...] = ()


def purl(kind: str, name: str, version: str, namespace: str | None = None) -> str:
    from packageurl import PackageURL  # not on the plan's path: languages import this module

    return PackageURL(type=kind, namespace=namespace, name=name, version=version).to_string()


def artifact_purl(name: str, digest: str, repository: str) -> str:
    """The OCI purl of a pushed artifact."""
    from packageurl import PackageURL

    qualifiers = {"repository_url": repository}
    return PackageURL(type="oci", name=name, version=digest, qualifiers=qualifiers).to_string()
