"""OCI image references and platforms: parsing with messages a user can act on.

The grammar follows distribution's reference package (the one docker, podman and
every registry client agree on): `[domain[:port]/]path[:tag][@digest]`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from syntra.errors import did_you_mean

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
DOMAIN_RE = re.compile(rf"^{_DOMAIN}\Z")
PATH_RE = re.compile(rf"^{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*\Z")
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}\Z", re.ASCII)


def tag_of(version: str) -> str:
    """A version as a tag: `+` (semver build metadata) is not allowed in tags."""
    return re.sub(r"[^\w.-]", "-", version, flags=re.ASCII)[:128]


TAG_RULE = "up to 128 letters, digits, '_', '.', '-', not starting with '.' or '-'"
DIGEST = re.compile(r"(?:sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})")
"""A digest's syntax, the one definition (`syntra.oci.digest` parses with it)."""
DIGEST_RE = re.compile(rf"^{DIGEST.pattern}\Z")
DIGEST_ANCHORED = f"^{DIGEST.pattern}$"
"""The same for schemas (pydantic, whose `$` is the end of the text)."""


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference; `domain` is empty when the reference names none."""

    domain: str
    path: str
    tag: str | None
    digest: str | None

    def __str__(self) -> str:
        name = f"{self.domain}/{self.path}" if self.domain else self.path
        tag = f":{self.tag}" if self.tag else ""
        digest = f"@{self.digest}" if self.digest else ""
        return f"{name}{tag}{digest}"


def parse_image_ref(text: str) -> ImageRef:
    """Parse `text` or raise ValueError with a one-line reason."""
    if not text:
        raise ValueError("an image reference cannot be empty")
    if "://" in text:
        raise ValueError(f"'{text}' is not an image reference: leave out the URL scheme")
    name, _, digest = text.partition("@")
    if digest and not DIGEST_RE.match(digest):
        raise ValueError(
            f"'{text}' has a bad digest: expected sha256: followed by 64 lowercase hex digits"
        )
    tag = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not TAG_RE.match(tag):
            raise ValueError(f"'{text}' has a bad tag '{tag}': {TAG_RULE}")
    domain, path = _split_domain(name)
    if domain and not DOMAIN_RE.match(domain):
        raise ValueError(f"'{text}' has a bad registry host '{domain}'")
    if not PATH_RE.match(path):
        if path.lower() != path and PATH_RE.match(path.lower()):
            raise ValueError(f"'{text}' is not an image reference: repository names are lowercase")
        raise ValueError(
            f"'{text}' is not an image reference: expected [registry/]name[:tag][@digest]"
        )
    return ImageRef(domain, path, tag, digest)


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first.startswith("[")):
        return first, rest
    return "", name


def check_repository(path: str) -> str:
    if not PATH_RE.match(path):
        hint = " (repository names are lowercase)" if path.lower() != path else ""
        raise ValueError(f"'{path}' is not a valid repository path{hint}")
    return path


# Platforms ---------------------------------------------------------------

KNOWN_OS = ("linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "wasip1", "wasip2")
KNOWN_ARCH = (
    "amd64",
    "arm64",
    "arm",
    "386",
    "ppc64le",
    "s390x",
    "riscv64",
    "mips64le",
    "loong64",
    "wasm",
)
KNOWN_VARIANTS = {
    "arm": ("v5", "v6", "v7", "v8"),
    "arm64": ("v8", "v9"),
    "amd64": ("v1", "v2", "v3", "v4"),
}
COMMON_PLATFORMS = (
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/arm/v6",
    "linux/386",
    "linux/ppc64le",
    "linux/s390x",
    "linux/riscv64",
    "windows/amd64",
    "darwin/arm64",
)


@dataclass(frozen=True)
class Platform:
    os: str
    arch: str
    variant: str | None = None

    def __str__(self) -> str:
        return f"{self.os}/{self.arch}" + (f"/{self.variant}" if self.variant else "")


def parse_platform(text: str) -> Platform:
    """Parse `os/arch[/variant]` or raise ValueError naming the closest known platform."""
    parts = text.split("/")
    known = (
        2 <= len(parts) <= 3
        and parts[0] in KNOWN_OS
        and parts[1] in KNOWN_ARCH
        and (parts[1] == "wasm") == parts[0].startswith("wasip")
        and (len(parts) == 2 or parts[2] in KNOWN_VARIANTS.get(parts[1], ()))
    )
    if not known:
        hint = (
            did_you_mean(text, COMMON_PLATFORMS)
            or "; expected os/arch[/variant] like 'linux/amd64'"
        )
        raise ValueError(f"'{text}' is not a platform{hint}")
    if parts[1:] == ["arm64", "v8"]:
        return Platform(parts[0], "arm64")  # the same platform, as registries name it
    return Platform(parts[0], parts[1], parts[2] if len(parts) == 3 else None)
