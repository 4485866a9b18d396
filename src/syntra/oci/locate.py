"""Where an artifact lives: the registry client for a destination or any image
reference, and the digest its tags point at. Every module that talks to a registry
starts here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from syntra import refs
from syntra.errors import SyntraError
from syntra.oci import client_for
from syntra.oci.auth import Login, env_login
from syntra.oci.client import Client
from syntra.oci.media import is_digest

if TYPE_CHECKING:
    from syntra.config.model import Config, Registry
    from syntra.plan import Destination


DOCKER_HUB_API = "registry-1.docker.io"


@dataclass(frozen=True)
class Where:
    """A repository: the client for its registry's API, its path there (namespace
    included), and the name people and signatures use for it (`docker.io/org/app`,
    whose API lives at registry-1.docker.io)."""

    registry: Client
    path: str
    identity: str


def api_host(domain: str) -> str:
    return DOCKER_HUB_API if domain == "docker.io" else domain


def _client(name: str, entry: Registry, host: str) -> Client:
    login: Login | None = None
    label = f"registry {name} ({host})"
    if entry.credentials is not None:
        try:
            login = env_login(entry.credentials.username_env, entry.credentials.password_env)
        except SyntraError as exc:
            raise SyntraError(f"{label}: {exc}") from None
    return client_for(api_host(host), entry.insecure, login, label)


def locate(config: Config, destination: Destination) -> Where:
    """The registry client and repository path for an artifact's destination."""
    if destination.registry is None:
        raise SyntraError("no registry to push to: add one under registries")
    host, _, namespace = destination.registry.partition("/")
    path = f"{namespace}/{destination.repository}" if namespace else destination.repository
    name, entry = next(
        (n, r) for n, r in config.registries.items() if r.url == destination.registry
    )
    return Where(_client(name, entry, host), path, f"{host}/{path}")


def registry_for_ref(
    config: Config | None, reference: str, insecure: bool = False
) -> tuple[Where, str]:
    """Where any image reference lives, and its tag or digest. A registry that syntra.yaml
    declares brings its credentials and `insecure`; others use the stored logins."""
    try:
        parsed = refs.parse_image_ref(reference)
    except ValueError as exc:
        raise SyntraError(str(exc)) from None
    domain = parsed.domain or "docker.io"
    path = parsed.path if "/" in parsed.path or parsed.domain else f"library/{parsed.path}"
    registries = config.registries.items() if config else []
    known = [(n, r) for n, r in registries if r.url.split("/", 1)[0] == domain]
    client = _client(*known[0], domain) if known else client_for(api_host(domain), insecure)
    return Where(client, path, f"{domain}/{path}"), parsed.digest or parsed.tag or "latest"


def digest_in(where: Where, version: str) -> str | None:
    """The digest `version` names in `where`: a digest is itself, a tag is what the
    registry says it points at (None: no such tag). The one place that decides."""
    return version if is_digest(version) else where.registry.head_manifest(where.path, version)


def resolve_tags(where: Where, tags: list[str]) -> str:
    """The digest of the first of `tags` in the repository; registry failures (down,
    login refused) are raised as they are, not taken for a missing tag."""
    for tag in tags:
        digest = where.registry.head_manifest(where.path, tag)
        if digest is not None:
            return digest
    shown = ", ".join(tags) or "no tags"
    raise SyntraError(f"not in the registry: {where.identity} has none of its tags ({shown})")


def pushed_digest(root: Path, name: str, where: Where, destination: Destination) -> str:
    """The digest artifact `name` has in `where`: this checkout's record, else its tags
    there (a fresh clone)."""
    from syntra.records import find_record

    record = find_record(root, name)
    return record.digest if record else resolve_tags(where, destination.tags)
