"""Stage: registry. Blobs and manifests in and out of OCI registries, by digest.

oras-py's Registry provides the HTTP session, authentication (docker config or
basic credentials) and blob upload that skips blobs the registry already has.
Manifests go up as exact bytes, never re-serialised, so digests stay ours.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import requests

from syntra.config.model import Credentials

if TYPE_CHECKING:
    import oras.container
    import oras.provider
from syntra.errors import SyntraError

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
TIMEOUT = (10, 300)
"""Seconds to connect, and to wait for each read (large blob uploads included)."""
ACCEPT = ", ".join((INDEX, MANIFEST, DOCKER_LIST, DOCKER_MANIFEST))


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Manifest:
    data: bytes
    media_type: str
    digest: str

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.data)
        return parsed


@dataclass
class Transfer:
    """Bytes actually sent, so callers can prove unchanged blobs were not re-uploaded."""

    uploaded_bytes: int = 0
    skipped_blobs: int = 0
    uploaded_blobs: int = 0


class Registry:
    """One registry host (`host[:port]`), talking HTTP when `insecure`."""

    def __init__(self, host: str, insecure: bool, credentials: Credentials | None = None) -> None:
        self.host = host
        self.insecure = insecure
        self.scheme = "http" if insecure else "https"
        self.transfer = Transfer()
        self.credentials: tuple[str, str] | None = None
        """User and password from the environment, for tools that log in themselves."""
        if credentials is not None:
            user = os.environ.get(credentials.username_env)
            password = os.environ.get(credentials.password_env)
            if not user or not password:
                missing = credentials.username_env if not user else credentials.password_env
                raise SyntraError(f"{host}: credentials variable {missing} is not set")
            self.credentials = (user, password)
        self.session = requests.Session()
        self._client: oras.provider.Registry | None = None

    @property
    def client(self) -> oras.provider.Registry:
        """oras' client, made on first need: anonymous requests go without it (and
        without importing it), which keeps no-op runs fast."""
        if self._client is None:
            import oras.provider

            backend = _auth_backend(self.host, self.insecure)
            client = oras.provider.Registry(
                hostname=self.host, insecure=self.insecure, auth_backend=backend
            )
            # oras sends every request without a timeout: a registry that accepts the
            # connection and never answers would hang the build forever.
            client.session.request = functools.partial(client.session.request, timeout=TIMEOUT)
            if self.credentials is None:
                client.auth.load_configs(client.get_container(f"{self.host}/library/any:latest"))
            else:
                client.auth.set_basic_auth(*self.credentials)
            self._client = client
        return self._client

    def _container(self, repository: str, reference: str = "latest") -> oras.container.Container:
        separator = "@" if reference.startswith("sha256:") else ":"
        return self.client.get_container(f"{self.host}/{repository}{separator}{reference}")

    def _request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            if self._client is None and self.credentials is None:
                response = self.session.request(method, url, timeout=TIMEOUT, **kwargs)
                if response.status_code not in (401, 403):
                    return response
            import oras.provider

            # oras' do_request retries with sleeps of up to 83 s; an unreachable
            # registry must fail at once, so call the undecorated function.
            request = oras.provider.Registry.do_request.__wrapped__
            authenticated: requests.Response = request(self.client, url, method, **kwargs)
        except requests.exceptions.SSLError:
            raise SyntraError(
                f"{self.host}: TLS handshake failed; if this registry speaks plain HTTP, "
                "declare it under registries with insecure: true"
            ) from None
        except requests.RequestException as exc:
            raise SyntraError(f"{self.host}: {type(exc).__name__}: cannot reach registry") from None
        except ValueError as exc:  # oras: authentication was refused
            raise SyntraError(f"{self.host}: {exc}") from None
        return authenticated

    def _url(self, repository: str, kind: str, reference: str) -> str:
        return f"{self.scheme}://{self.host}/v2/{repository}/{kind}/{reference}"

    def head_manifest(self, repository: str, reference: str) -> str | None:
        """The digest `reference` points at, or None when it does not exist."""
        response = self._request(
            "HEAD", self._url(repository, "manifests", reference), headers={"Accept": ACCEPT}
        )
        if response.status_code == 404:
            return None
        _check(response, f"HEAD {repository}:{reference}")
        digest = response.headers.get("Docker-Content-Digest")
        return digest or self.get_manifest(repository, reference).digest

    def get_manifest(self, repository: str, reference: str) -> Manifest:
        response = self._request(
            "GET", self._url(repository, "manifests", reference), headers={"Accept": ACCEPT}
        )
        _check(response, f"GET manifest {repository}:{reference}")
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        return Manifest(response.content, media_type, digest_of(response.content))

    def put_manifest(self, repository: str, reference: str, data: bytes, media_type: str) -> str:
        response = self._request(
            "PUT",
            self._url(repository, "manifests", reference),
            data=data,
            headers={"Content-Type": media_type},
        )
        _check(response, f"PUT manifest {repository}:{reference}")
        return digest_of(data)

    def tags(self, repository: str) -> list[str]:
        """Every tag of `repository` ([] when it does not exist yet)."""
        url = f"{self.scheme}://{self.host}/v2/{repository}/tags/list?n=10000"
        response = self._request("GET", url)
        if response.status_code == 404:
            return []
        _check(response, f"GET tags of {repository}")
        listed: list[str] = response.json().get("tags") or []
        return listed

    def has_blob(self, repository: str, digest: str) -> bool:
        response = self._request("HEAD", self._url(repository, "blobs", digest))
        if response.status_code == 404:
            return False
        _check(response, f"HEAD blob {repository}@{digest}")
        return True

    def get_blob(self, repository: str, digest: str) -> bytes:
        response = self._request("GET", self._url(repository, "blobs", digest))
        _check(response, f"GET blob {repository}@{digest}")
        return response.content

    def push_bytes(self, repository: str, data: bytes) -> str:
        """Upload a small blob held in memory (signatures, SBOMs, configs)."""
        digest = digest_of(data)
        with tempfile.NamedTemporaryFile(prefix="syntra-blob-") as handle:
            handle.write(data)
            handle.flush()
            self.push_blob(repository, Path(handle.name), digest, len(data))
        return digest

    def push_blob(self, repository: str, path: Path, digest: str, size: int) -> None:
        """Upload one blob unless the registry already has it."""
        if self.has_blob(repository, digest):
            self.transfer.skipped_blobs += 1
            return
        layer = {"digest": digest, "size": size}
        try:
            response = self.client.put_upload(str(path), self._container(repository), layer)
        except requests.RequestException:
            raise SyntraError(f"{self.host}: cannot reach registry") from None
        except ValueError as exc:  # oras: the registry refused to start the upload
            raise SyntraError(f"upload {repository}@{digest}: {exc}") from None
        _check(response, f"upload {repository}@{digest}")
        self.transfer.uploaded_bytes += size
        self.transfer.uploaded_blobs += 1


def _auth_backend(host: str, insecure: bool) -> str:
    """oras' `token` backend asks a token server even when the registry wants Basic
    authentication (a plain `docker-registry` with htpasswd): ask the registry."""
    scheme = "http" if insecure else "https"
    try:
        response = requests.get(f"{scheme}://{host}/v2/", timeout=TIMEOUT)
    except requests.RequestException:
        return "token"  # the real request will report the problem
    challenge = response.headers.get("WWW-Authenticate", "")
    return "basic" if challenge.lower().startswith("basic") else "token"


def _check(response: requests.Response, what: str) -> None:
    if response.status_code >= 300:
        detail = response.text.strip().replace("\n", " ")[:300]
        raise SyntraError(f"{what}: registry answered {response.status_code} {detail}")
