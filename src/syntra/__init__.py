"""Syntra: declarative builds of container images and WebAssembly plugins.

The public API is the pipeline's first stages: load and validate syntra.yaml,
resolve it into a plan, render the container specs.
"""

from syntra.config import Config, Loaded, load
from syntra.errors import ConfigError, SyntraError
from syntra.plan import Plan, build_plan

__all__ = [
    "Config",
    "ConfigError",
    "Loaded",
    "Plan",
    "SyntraError",
    "build_plan",
    "installed_version",
    "load",
]


def installed_version() -> str:
    """The installed package's version (`syntra --version`, the registry User-Agent)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("syntra")
    except PackageNotFoundError:
        return "unknown"
