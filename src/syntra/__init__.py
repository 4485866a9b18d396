"""Syntra: declarative builds of container images and WebAssembly plugins.

The public API is the pipeline's first stages: load and validate syntra.yaml,
resolve it into a plan, render the container specs.
"""

from syntra.config import Config, Loaded, load
from syntra.errors import ConfigError, SyntraError
from syntra.plan import Plan, build_plan

__all__ = ["Config", "ConfigError", "Loaded", "Plan", "SyntraError", "build_plan", "load"]
