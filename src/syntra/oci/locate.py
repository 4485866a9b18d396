"""Where an artifact lives: the run's registry clients (`Registries`, a keychain as
go-containerregistry's: the declared registries' logins, else the stored ones, and one
client per host), a destination's or any reference's repository, and the digest its
tags point at. Every module that talks to a registry starts here.

It knows nothing of syntra.yaml: `Registries` reads any mapping of names to entries
with a `url`, `insecure` and optional `credentials` (the config's `registries:` is one).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from syntra import refs
from syntra.errors import SyntraError
from syntra.oci.auth import Login, env_login, stored_login
from syntra.oci.client import Client
from syntra.oci.media import is_digest

DOCKER_HUB_API = "registry-1.docker.io"


class CredentialsEnv(Protocol):
    """Which environment variables hold a registry's user name and password."""

    @property
    def username_env(self) -> str: ...

    @property
    def password_env(self) -> str: ...


class Declared(Protocol):
    """What `Registries` reads of one declared registry (`host[:port][/namespace]`)."""

    @property
    def url(self) -> str: ...

    @property
    def insecure(self) -> bool: ...

    @property
    def credentials(self) -> CredentialsEnv | None: ...


class Destined(Protocol):
    """What `Registries.locate` reads of an artifact's destination."""

    @property
    def registry(self) -> str | None: ...

    @property
    def repository(self) -> str: ...

    @property
    def tags(self) -> list[str]: ...


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


class Registries:
    """One run's registry clients: built once per run (the pipeline context builds it
    from syntra.yaml's `registries:`; a library caller from nothing or its own entries)
    and handed to whatever talks to a registry. A client per host, so what one learnt
    (tokens, blobs present) serves the rest of the run and no other."""

    def __init__(self, declared: Mapping[str, Declared] | None = None) -> None:
        self.declared: dict[str, Declared] = dict(declared or {})
        self._clients: dict[tuple[str, bool, Login | None], Client] = {}

    def client(
        self, host: str, insecure: bool, login: Login | None = None, label: str = ""
    ) -> Client:
        """The run's client for `host`; without a declared login, the auth files and
        credential helpers are asked once."""
        key = (host, insecure, login)
        if key not in self._clients:
            found = login or stored_login(host)
            self._clients[key] = Client(host, insecure=insecure, login=found, label=label or None)
        return self._clients[key]

    def _declared_client(self, name: str, entry: Declared, host: str) -> Client:
        login: Login | None = None
        label = f"registry {name} ({host})"
        if entry.credentials is not None:
            try:
                login = env_login(entry.credentials.username_env, entry.credentials.password_env)
            except SyntraError as exc:
                raise SyntraError(f"{label}: {exc}") from None
        return self.client(api_host(host), entry.insecure, login, label)

    def locate(self, destination: Destined) -> Where:
        """The registry client and repository path for an artifact's destination."""
        if destination.registry is None:
            raise SyntraError("no registry to push to: add one under registries")
        host, _, namespace = destination.registry.partition("/")
        path = f"{namespace}/{destination.repository}" if namespace else destination.repository
        name, entry = next(
            (n, r) for n, r in self.declared.items() if r.url == destination.registry
        )
        return Where(self._declared_client(name, entry, host), path, f"{host}/{path}")

    def for_ref(self, reference: str, insecure: bool = False) -> tuple[Where, str]:
        """Where any image reference lives, and its tag or digest. A declared registry
        brings its credentials and `insecure`; others use the stored logins."""
        try:
            parsed = refs.parse_image_ref(reference)
        except ValueError as exc:
            raise SyntraError(str(exc)) from None
        domain = parsed.domain or "docker.io"
        path = parsed.path if "/" in parsed.path or parsed.domain else f"library/{parsed.path}"
        known = [(n, r) for n, r in self.declared.items() if r.url.split("/", 1)[0] == domain]
        client = (
            self._declared_client(*known[0], domain)
            if known
            else self.client(api_host(domain), insecure)
        )
        return Where(client, path, f"{domain}/{path}"), parsed.digest or parsed.tag or "latest"


def digest_in(where: Where, version: str) -> str | None:
    """The digest `version` names in `where`: a digest is itself, a tag is what the
    registry says it points at (None: no such tag). The one place that decides."""
    return version if is_digest(version) else where.registry.head_manifest(where.path, version)


def resolve_tags(where: Where, tags: list[str]) -> str:
    """The digest of the first of `tags` in the repository; registry failures (down,
    login refused) are raised as they are, not taken for a missing tag."""
    for tag in tags:
        digest = digest_in(where, tag)
        if digest is not None:
            return digest
    shown = ", ".join(tags) or "no tags"
    raise SyntraError(f"not in the registry: {where.identity} has none of its tags ({shown})")


def pushed_digest(root: Path, name: str, where: Where, destination: Destined) -> str:
    """The digest artifact `name` has in `where`: this checkout's record, else its tags
    there (a fresh clone)."""
    from syntra.records import find_record

    record = find_record(root, name)
    return record.digest if record else resolve_tags(where, destination.tags)
