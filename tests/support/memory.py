"""An OCI registry in memory, behind a `requests` transport adapter.

Syntra's own client talks to it over its real HTTP code path (retries, digest checks,
uploads, tags), but nothing leaves the process: the fast unit layer for the logic on
top (attach, verify, release) runs in milliseconds. Behaviour is distribution 2.8's
where it matters: manifests by tag or digest, uploads by POST then PUT, tags/list, no
Referrers API (404).
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from syntra.oci import Registries

_ROUTE = re.compile(r"^/v2/(?P<repo>.+)/(?P<kind>manifests|blobs|tags)/(?P<ref>[^/]*)$")
_UPLOAD = re.compile(r"^/v2/(?P<repo>.+)/blobs/uploads/(?P<session>[^/]*)$")
_hosts = itertools.count(1)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Repository:
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # digest → (data, type)
    tags: dict[str, str] = field(default_factory=dict)  # tag → digest


@dataclass
class MemoryRegistry(BaseAdapter):
    host: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    repositories: dict[str, Repository] = field(default_factory=dict)
    seen: list[tuple[str, str]] = field(default_factory=list)
    """(method, path) of every request, in order: what a test can count."""
    uploads: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__()

    def serve(self, registries: Registries) -> None:
        """`registries`' client for this host (plain HTTP, as syntra.yaml declares it
        `insecure`) reaches this registry and nothing else."""
        client = registries.client(self.host, True)
        client.session.mount(f"http://{self.host}/", self)

    def repository(self, name: str) -> Repository:
        return self.repositories.setdefault(name, Repository())

    def resolve(self, repo: str, reference: str) -> str | None:
        found = self.repository(repo)
        return reference if reference in found.manifests else found.tags.get(reference)

    def send(  # type: ignore[override]  # stream, timeout, proxies: nothing to do in memory
        self, request: requests.PreparedRequest, **_: Any
    ) -> requests.Response:
        url = urlparse(request.url or "")
        method = request.method or "GET"
        self.seen.append((method, url.path))
        body = request.body or b""
        if not isinstance(body, bytes):
            body = body.encode() if isinstance(body, str) else b"".join(iter(body))
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        status, headers, content = self._answer(method, url.path, query, body, request.headers)
        response = requests.Response()
        response.status_code, response.raw = status, io.BytesIO(content)  # read as a stream
        response.headers = CaseInsensitiveDict(headers)
        response.url, response.request = request.url or "", request
        return response

    def close(self) -> None:
        pass

    def _answer(
        self, method: str, path: str, query: dict[str, str], body: bytes,
        headers: Mapping[str, str],
    ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        if path in ("/v2/", "/v2"):
            return 200, {}, b"{}"
        if upload := _UPLOAD.match(path):
            return self._upload(method, upload["repo"], upload["session"], query, body)
        route = _ROUTE.match(path)
        if route is None:
            return 404, {}, b'{"errors":[{"code":"NOT_FOUND"}]}'
        repo, kind, ref = route["repo"], route["kind"], route["ref"]
        if kind == "tags":
            listed = sorted(self.repository(repo).tags)
            return (
                200,
                {"Content-Type": "application/json"},
                json.dumps({"name": repo, "tags": listed}).encode(),
            )
        if kind == "blobs":
            data = self.blobs.get(ref)
            if data is None:
                return 404, {}, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}'
            found = {"Docker-Content-Digest": ref, "Content-Length": str(len(data))}
            return 200, found, b"" if method == "HEAD" else data
        return self._manifest(method, repo, ref, body, headers)

    def _manifest(
        self, method: str, repo: str, ref: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        store = self.repository(repo)
        if method == "PUT":
            digest = _digest(body)
            store.manifests[digest] = (body, headers.get("Content-Type", ""))
            if not ref.startswith("sha256:"):
                store.tags[ref] = digest
            return (
                201,
                {"Docker-Content-Digest": digest, "Location": f"/v2/{repo}/manifests/{digest}"},
                b"",
            )
        found = self.resolve(repo, ref)
        if found is None:
            return 404, {}, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}'
        if method == "DELETE":
            del store.manifests[found]
            return 202, {}, b""
        data, media_type = store.manifests[found]
        answer = {"Docker-Content-Digest": found, "Content-Type": media_type}
        return 200, answer | {"Content-Length": str(len(data))}, b"" if method == "HEAD" else data

    def _upload(
        self, method: str, repo: str, session: str, query: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        if method == "POST":
            mounted = query.get("mount")
            if mounted and mounted in self.blobs:
                return 201, {"Docker-Content-Digest": mounted}, b""
            name = f"s{len(self.uploads) + 1}"
            self.uploads[name] = b""
            return 202, {"Location": f"/v2/{repo}/blobs/uploads/{name}"}, b""
        if method == "DELETE":
            self.uploads.pop(session, None)
            return 204, {}, b""
        data = self.uploads.pop(session, b"") + body
        if _digest(data) != query.get("digest"):
            return 400, {}, b'{"errors":[{"code":"DIGEST_INVALID"}]}'
        self.blobs[query["digest"]] = data
        return 201, {"Docker-Content-Digest": query["digest"]}, b""


def memory_registry() -> MemoryRegistry:
    """A fresh registry at `memory-N.invalid:5000`, reached by the runs it `serve`s."""
    return MemoryRegistry(f"memory-{next(_hosts)}.invalid:5000")
