"""Syntra: declarative builds of container images and WebAssembly plugins.

The public API is the pipeline's first stages: load and validate syntra.yaml,
resolve it into a plan, render the container specs. Names load on first use
(PEP 562), so `import syntra.oci` or `import syntra.plugins` pulls in neither
the configuration model nor its dependencies.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from syntra.version import installed_version

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

_HOMES = {
    "Config": "syntra.config",
    "Loaded": "syntra.config",
    "load": "syntra.config",
    "ConfigError": "syntra.errors",
    "SyntraError": "syntra.errors",
    "Plan": "syntra.plan",
    "build_plan": "syntra.plan",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its home on first use: the homes are named by string
    so that not even a type checker's view of this package imports the configuration
    model (which imports back from syntra's submodules)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'syntra' has no attribute {name!r}")
    return getattr(import_module(_HOMES[name]), name)
