"""Syntra's OCI registry layer: one client per host, one retry policy, one write path.

It knows nothing of syntra.yaml: a run's `locate.Registries` keeps one client per host
for the run, with the logins of the registries it is given (syntra.yaml's, when the
pipeline builds it), else the stored ones.
"""

from syntra.oci.auth import Login, env_login, stored_login
from syntra.oci.client import Blob, Client, Transfer
from syntra.oci.locate import Registries, Where
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
    "Registries",
    "RetryPolicy",
    "Transfer",
    "Where",
    "digest_of",
    "env_login",
    "is_digest",
    "layout_blob",
    "platform_of",
    "push",
    "stored_login",
]
