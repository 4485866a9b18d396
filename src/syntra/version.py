"""Syntra's version: `syntra --version`, the registry User-Agent, SBOM and provenance
tool entries. The one place it is written (pyproject.toml reads it from here), so
asking for it imports nothing (importlib.metadata alone costs more than a startup)."""

VERSION = "0.1.0"


def installed_version() -> str:
    return VERSION
