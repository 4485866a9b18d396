"""Syntra's version and distribution name: `syntra --version`, the registry User-Agent,
SBOM and provenance tool entries, and how generated CI installs this very Syntra. The
one place they are written (pyproject.toml reads the version from here), so asking for
them imports nothing (importlib.metadata alone costs more than a startup).

The distribution is `syntra-build`: PyPI's `syntra` is somebody else's project. The
command and the import package stay `syntra`.
"""

import re

VERSION = "0.1.0"
DISTRIBUTION = "syntra-build"
_RELEASE = re.compile(r"\d+(\.\d+)*\Z")


def installed_version() -> str:
    return VERSION


def is_release(version: str = VERSION) -> bool:
    """A final release (`1.2.3`), which PyPI has; not `1.3.0.dev0`, `1.3.0rc1` or `+local`."""
    return bool(_RELEASE.match(version))


def pinned_install(version: str = VERSION) -> str | None:
    """The command that installs exactly `version` from PyPI; None for a development
    build, which PyPI does not have."""
    return f"pip install {DISTRIBUTION}=={version}" if is_release(version) else None
