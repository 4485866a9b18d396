"""Syntra's OCI registry layer: one client per host, one retry policy, one write path.

It knows nothing of syntra.yaml: callers pass the host, whether it is plain HTTP, and
the login (if syntra.yaml names one); `clients.client_for` keeps one client per host for
the run.
"""

from syntra.oci.auth import Login, env_login, stored_login
from syntra.oci.client import Blob, Client, Transfer
from syntra.oci.media import (
    ACCEPT,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    INDEX,
    INDEX_TYPES,
    MANIFEST,
    Document,
    digest_of,
    is_digest,
    layout_blob,
    platform_of,
)
from syntra.oci.push import push
from syntra.oci.retry import RetryPolicy

__all__ = [
    "ACCEPT",
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "INDEX",
    "INDEX_TYPES",
    "MANIFEST",
    "Blob",
    "Client",
    "Document",
    "Login",
    "RetryPolicy",
    "Transfer",
    "client_for",
    "digest_of",
    "env_login",
    "forget_clients",
    "is_digest",
    "layout_blob",
    "platform_of",
    "push",
    "stored_login",
]

_clients: dict[tuple[str, bool, Login | None], Client] = {}


def client_for(host: str, insecure: bool, login: Login | None = None, label: str = "") -> Client:
    """The run's client for `host`; without a login from syntra.yaml, the auth files and
    credential helpers are asked once."""
    key = (host, insecure, login)
    if key not in _clients:
        found = login or stored_login(host)
        _clients[key] = Client(host, insecure=insecure, login=found, label=label or None)
    return _clients[key]


def forget_clients() -> None:
    """A new run: what earlier clients learnt (tokens, blobs present) no longer holds."""
    _clients.clear()
