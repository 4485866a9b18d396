"""The installed package's version (`syntra --version`, the registry User-Agent)."""

from __future__ import annotations

from functools import cache


@cache
def installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("syntra")
    except PackageNotFoundError:
        return "unknown"
