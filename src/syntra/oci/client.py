"""One registry host through one `requests` session, with one retry policy.

Every request goes through `_send`: challenges answered (auth), transient failures retried
(retry), and what the registry sends checked against the digest it was asked for. Blob
uploads stream from their file (POST, then one PUT with the body read from the handle), so
memory stays flat whatever the size; a blob known to be in another repository of the same
registry is mounted instead of uploaded. Reads are verified: a manifest or blob whose bytes
do not hash to the digest asked for is retried, then refused.

Answers are untrusted and bounded: every body is streamed, manifests and JSON answers
read up to MAX_DOCUMENT, blobs up to the size their descriptor declares (a JSON blob's
declared size checked against MAX_DOCUMENT before a byte is read); tag lists up to
MAX_TAG_PAGES pages, MAX_TAGS tags and MAX_TAG_BYTES in all, with a next page that repeats
or adds nothing refused. Every exchange has an overall deadline (`_Deadline`): a registry
that trickles its answer is cut off however steadily it sends. References
that become URLs are tags or parsed digests. The login (and any token) is sent only to
the registry's own origin: not to an upload `Location` or a redirect on another host, and
to a token realm on another host only over HTTPS. Registry error text is redacted.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import socket
import stat
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urljoin, urlsplit

import requests
import urllib3

import syntra.oci.digest as digests
from syntra import process
from syntra.errors import RegistryError, SyntraError, TooLarge, ToolError, one_line
from syntra.oci.auth import Authenticator, Login
from syntra.oci.digest import Digest
from syntra.oci.media import (
    ACCEPT,
    MAX_ARTIFACT,
    MAX_DOCUMENT,
    Document,
    digest_of,
    is_digest,
    json_object,
)
from syntra.oci.retry import RETRIABLE_STATUS, RetryPolicy
from syntra.version import installed_version

MAX_TAG_PAGES = 1000
"""The most pages of a tag list (of up to 1,000 tags each)."""
MAX_TAGS = 100_000
"""The most tags of one repository, across its pages."""
MAX_TAG_BYTES = 16 << 20
"""The most bytes of one repository's tag list, across its pages."""
MAX_STRETCH = 6 * 3600
"""The most seconds a request's declared size adds to its deadline (one a MiB)."""
MAX_IN_MEMORY = 256 << 20
"""The most a blob read into memory may weigh when its size is not declared."""
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}\Z")

Check = Callable[[requests.Response], str | None]
Body = bytes | Callable[[], IO[bytes]] | None


@dataclass(frozen=True)
class Blob:
    """A blob to push: from a file (streamed) or, when small, from memory."""

    digest: Digest
    size: int
    path: Path | None = None
    data: bytes | None = None
    verify: bool = False
    """Hash the file in the read that uploads it (an untrusted layout's blob): a file
    that does not hash to `digest` ends the upload before its last byte is sent."""

    @classmethod
    def of(cls, data: bytes) -> Blob:
        return cls(digest_of(data), len(data), data=data)

    def body(self) -> Body:
        if self.data is not None:
            return self.data
        path = self.path
        assert path is not None
        if self.verify:
            return lambda: cast(IO[bytes], _Checked(path, self.digest, self.size))
        return lambda: path.open("rb")


class _Checked:
    """A regular file (no symbolic link followed) read through its digest's hash: the
    read that reaches its end, or passes its size, raises when it is not `digest`. Only
    `read`, `close`, `fileno`, `mode` and `tell` (how `requests` finds its length): no
    `__iter__`, so it is sent as a body of known length, not in chunks."""

    mode = "rb"

    def __init__(self, path: Path, digest: Digest, size: int) -> None:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            os.close(descriptor)
            raise ToolError(f"{path} is not a regular file")
        os.set_blocking(descriptor, True)
        self._file = os.fdopen(descriptor, "rb", buffering=0)
        self._path, self._digest, self._size = path, digest, size
        self._hasher, self._seen = digests.hasher(digest), 0

    def fileno(self) -> int:
        return self._file.fileno()

    def tell(self) -> int:
        return self._seen

    def read(self, size: int = -1) -> bytes:
        chunk = self._file.read(max(size, 1 << 20)) or b""  # urllib3 asks for 16 KiB at a time
        self._seen += len(chunk)
        if self._seen > self._size:
            raise ToolError(f"{self._path}: {self._digest} is larger than {self._size} bytes")
        self._hasher.update(chunk)
        if not chunk and (
            self._seen != self._size or self._hasher.hexdigest() != digests.hexdigest(self._digest)
        ):
            raise ToolError(
                f"{self._path}: does not hash to {self._digest} as it is sent (nothing tagged)"
            )
        return chunk

    def close(self) -> None:
        self._file.close()


@dataclass
class Transfer:
    """What went over the wire, so callers can prove what was not sent again."""

    uploaded_bytes: int = 0
    uploaded_blobs: int = 0
    skipped_blobs: int = 0
    mounted_blobs: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class _Transient(Exception):
    """A failure worth another try."""

    def __init__(self, reason: str, retry_after: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Request:
    method: str
    url: str
    what: str
    repository: str = ""
    headers: dict[str, str] | None = None
    body: Body = None
    params: dict[str, str] | None = None
    check: Check | None = None
    stream: bool = False
    size: int = 0
    """The bytes of the blob sent or read: each MiB adds a second to the deadline."""
    basic: tuple[str, str] | None = field(default=None, repr=False)
    """Token requests: sent with Basic auth, no challenge answered."""

    @property
    def push(self) -> bool:
        """Whether it needs push access (anything but reads)."""
        return self.method not in ("GET", "HEAD")


class _Deadline:
    """The overall deadline of one exchange (connect, headers and the whole body): the
    socket timeout bounds each read, not a registry sending a byte every few seconds.
    When time is up the connection is shut, which ends a read blocked in another frame."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def attach(self, found: object) -> None:
        """The socket of this exchange: shut when time is up (now, if it already is)."""
        with self._lock:
            self._socket = found if isinstance(found, socket.socket) else self._socket
        if self.expired:
            self._expire()

    def watch(self, response: requests.Response) -> None:
        """Shut `response`'s connection when time is up (now, if it already is)."""
        connection = getattr(response.raw, "_connection", None)
        found = getattr(connection, "sock", None)
        if found is None:  # a closing connection hands its socket to the response's reader
            reader = getattr(getattr(response.raw, "_fp", None), "fp", None)
            found = getattr(getattr(reader, "raw", None), "_sock", None)
        self.attach(found)

    def _expire(self) -> None:
        self.expired = True
        with self._lock:
            if self._socket is not None:
                with contextlib.suppress(OSError):
                    self._socket.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()

    def check(self, label: str, what: str) -> None:
        if self.expired:
            raise RegistryError(
                f"{label}: {what}: no whole answer within {self.seconds:g} s "
                "(SYNTRA_REGISTRY_DEADLINE)"
            )


_EXCHANGE = threading.local()
"""The deadline of the exchange this thread is in (`_Deadline`), for its connection."""


class _Timed:
    """A connection that hands its socket to the current exchange's deadline as soon as
    it has one, so connecting and reading the headers are bounded too, not only the body."""

    sock: socket.socket | None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        _attach(self.sock)

    def request(self, *args: Any, **kwargs: Any) -> None:
        _attach(self.sock)  # a kept-alive connection is already connected
        super().request(*args, **kwargs)  # type: ignore[misc]


def _attach(found: socket.socket | None) -> None:
    deadline = getattr(_EXCHANGE, "deadline", None)
    if isinstance(deadline, _Deadline) and found is not None:
        deadline.attach(found)


class _TimedHTTP(_Timed, urllib3.connection.HTTPConnection):
    pass


class _TimedHTTPS(_Timed, urllib3.connection.HTTPSConnection):
    pass


class _Pool(urllib3.HTTPConnectionPool):
    ConnectionCls = _TimedHTTP


class _TLSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _TimedHTTPS


class _Adapter(requests.adapters.HTTPAdapter):
    """requests' adapter, with connections whose sockets the deadline can shut."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}


def loopback(host: str) -> bool:
    """Whether `host[:port]` is this machine (`localhost`, 127.0.0.0/8, `::1`): spoken to
    in plain HTTP without being declared insecure, as docker, crane and oras do."""
    name = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    name = name.removeprefix("[").split("]", 1)[0].lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Client:
    """A registry host (`host[:port]`), over plain HTTP when `insecure` or on loopback."""

    def __init__(
        self,
        host: str,
        *,
        insecure: bool = False,
        login: Login | None = None,
        label: str | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.host = host
        self.insecure = insecure or loopback(host)
        self.label = label or host
        self.login = login
        self.base = f"{'http' if self.insecure else 'https'}://{host}"
        self.policy = policy or RetryPolicy.from_env()
        self.session = requests.Session()
        for scheme in ("http://", "https://"):
            self.session.mount(scheme, _Adapter())
        self.session.headers["User-Agent"] = (
            f"syntra/{installed_version()} {requests.utils.default_user_agent()}"
        )
        self.auth = Authenticator(self.label, login)
        self.transfer = Transfer()
        self._lock = threading.Lock()
        self._present: set[tuple[str, str]] = set()  # (repository, digest) of known blobs
        self._homes: dict[str, str] = {}  # digest → a repository known to hold it

    # The exchange ---------------------------------------------------------------

    def _send(self, request: _Request) -> requests.Response:
        """One request with the retry policy; the final answer, whatever its status."""
        attempts = self.policy.attempts()
        while True:
            try:
                return self._once(request)
            except _Transient as exc:
                if not attempts.wait(exc.retry_after):
                    tries = f"{attempts.number} tr{'y' if attempts.number == 1 else 'ies'}"
                    raise RegistryError(
                        f"{self.label}: {request.what}: {exc.reason} (gave up after {tries})"
                    ) from None

    def _once(self, request: _Request) -> requests.Response:
        """One exchange, challenges answered; _Transient for what is worth another try."""
        for _ in range(3):  # the request, then up to two answered challenges
            handle = None
            ours = _origin(request.url) == _origin(self.base)  # the login goes nowhere else
            stretch = min(request.size >> 20, MAX_STRETCH)  # integers: any size is fine
            deadline = _Deadline(self.policy.deadline + stretch)
            _EXCHANGE.deadline = deadline
            try:
                handle = request.body() if callable(request.body) else None
                own = {}
                if ours and not request.basic:
                    own = self.auth.headers(request.repository, request.push)
                response = self.session.request(
                    request.method,
                    request.url,
                    headers={**(request.headers or {}), **own},
                    data=handle if handle is not None else request.body,  # type: ignore[arg-type]
                    params=request.params,
                    auth=request.basic,
                    timeout=(self.policy.timeout, self.policy.timeout),
                    stream=True,
                )
                deadline.watch(response)
                if request.method == "HEAD":
                    response._content = b""  # its Content-Length is the thing's, not a body's
                elif not request.stream or response.status_code >= 300:
                    self._load(response, request.what)
                if (
                    response.status_code == 401
                    and not request.basic
                    and ours
                    and _origin(response.url) == _origin(self.base)
                    and self.auth.answer(response, request.repository, request.push, self._token)
                ):
                    continue
                if response.status_code in RETRIABLE_STATUS:
                    reason = f"{response.status_code} {_registry_error(response)}".strip()
                    raise _Transient(reason, response.headers.get("Retry-After"))
                check = request.check
                problem = check(response) if check and response.status_code < 300 else None
                deadline.check(self.label, request.what)
                if problem:
                    raise _Transient(problem)
                return response
            except requests.exceptions.SSLError as exc:
                if "wrong version number" in str(exc).lower() or "record layer" in str(exc):
                    raise RegistryError(
                        f"{self.label}: TLS handshake failed; if this registry speaks plain "
                        "HTTP, declare it under registries with insecure: true"
                    ) from None
                raise _Transient(f"TLS: {_network_reason(exc)}") from None
            except (requests.exceptions.InvalidURL, requests.exceptions.TooManyRedirects) as exc:
                raise RegistryError(f"{self.label}: {request.what}: {type(exc).__name__}") from None
            except FileNotFoundError as exc:
                raise RegistryError(f"{self.label}: {request.what}: {exc}") from None
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                deadline.check(self.label, request.what)
                raise _Transient(_network_reason(exc)) from None
            finally:
                _EXCHANGE.deadline = None
                deadline.cancel()
                if handle is not None:
                    handle.close()
        return response

    def _load(self, response: requests.Response, what: str) -> None:
        """Read the body, refusing one larger than MAX_DOCUMENT (a manifest, JSON, an
        error): `response.content` is then what was read."""
        declared = response.headers.get("Content-Length", "")
        body = bytearray()
        if not (declared.isdigit() and int(declared) > MAX_DOCUMENT):
            for chunk in response.iter_content(1 << 16):
                body += chunk
                if len(body) > MAX_DOCUMENT:
                    break
        if len(body) > MAX_DOCUMENT or (declared.isdigit() and int(declared) > MAX_DOCUMENT):
            response.close()
            raise TooLarge(
                f"{self.label}: {what}: the answer is larger than {MAX_DOCUMENT >> 20} MiB"
            )
        response._content = bytes(body)

    def _token(self, realm: str, params: dict[str, str]) -> requests.Response:
        """A Bearer token request, retried like any other, with the login as Basic auth:
        sent to the registry's own origin, or to another host over HTTPS only."""
        login = self.login
        basic = (login.username, login.password) if login else None
        scheme = urlsplit(realm).scheme
        if scheme not in ("http", "https"):
            raise RegistryError(f"{self.label}: the token service '{one_line(realm)}' is not a URL")
        if basic and scheme != "https" and _origin(realm) != _origin(self.base):
            raise RegistryError(
                f"{self.label}: the token service {one_line(realm)} is another host over plain "
                "HTTP; the login is not sent there"
            )
        return self._send(_Request("GET", realm, f"token from {realm}", params=params, basic=basic))

    def fail(self, response: requests.Response, what: str) -> SyntraError:
        """The one line for an answer that will not get better by asking again."""
        if response.status_code == 401 or (response.status_code == 403 and self.login is None):
            return RegistryError(f"{self.label}: {self.auth.refused()}")
        if response.status_code == 403:
            user = self.login.username if self.login else ""
            return RegistryError(
                f"{self.label}: {what}: refused for '{user}' (403 {_registry_error(response)})"
            )
        detail = _registry_error(response)
        return RegistryError(f"{self.label}: {what}: {response.status_code} {detail}".rstrip())

    def _url(self, repository: str, kind: str, reference: str) -> str:
        """The URL of a tag or a digest; anything else never becomes part of a URL."""
        if not _TAG.match(reference):
            digests.parse(reference, f"{self.label}: {repository}")
        return f"{self.base}/v2/{repository}/{kind}/{reference}"

    def _exchange(
        self, method: str, repository: str, kind: str, reference: str, what: str, **options: Any
    ) -> requests.Response:
        """`method` on /v2/<repository>/<kind>/<reference>, with the retry policy."""
        url = self._url(repository, kind, reference)
        return self._send(_Request(method, url, what, repository, **options))

    # Manifests ------------------------------------------------------------------

    def head_manifest(self, repository: str, reference: str) -> Digest | None:
        """The digest `reference` points at, or None when it does not exist."""
        what = f"HEAD manifest {repository}:{reference}"
        response = self._exchange(
            "HEAD", repository, "manifests", reference, what, headers={"Accept": ACCEPT}
        )
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise self.fail(response, what)
        named = response.headers.get("Docker-Content-Digest")
        digest = digests.parse(named, f"{self.label}: {what}") if named else None
        if is_digest(reference):
            if digest and digest != reference:
                raise RegistryError(f"{self.label}: {what}: the registry names another digest")
            return Digest(reference)
        return digest or self.get_manifest(repository, reference).digest

    def get_manifest(self, repository: str, reference: str) -> Document:
        """The manifest at `reference`, verified: by digest, its bytes must hash to it; by
        tag, to the registry's Docker-Content-Digest when it sends one."""
        found = self.find_manifest(repository, reference)
        if found is None:
            raise RegistryError(f"{self.label}: manifest {repository}:{reference} is not there")
        return found

    def find_manifest(self, repository: str, reference: str) -> Document | None:
        what = f"GET manifest {repository}:{reference}"

        def check(response: requests.Response) -> str | None:
            named = response.headers.get("Docker-Content-Digest")
            expected = reference if is_digest(reference) else named
            if expected is None:
                return None
            wanted = digests.parse(expected, f"{self.label}: {what}")
            actual = _hashed(response.content, wanted)
            return None if actual == wanted else f"the body's digest is {actual}, not {wanted}"

        response = self._exchange(
            "GET", repository, "manifests", reference, what, headers={"Accept": ACCEPT}, check=check
        )
        if response.status_code == 404:
            return None
        if response.status_code >= 300:
            raise self.fail(response, what)
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        document = Document(response.content, media_type)
        try:
            body = document.json()
        except ValueError:
            raise RegistryError(
                f"{self.label}: {what}: the registry sent no JSON manifest"
            ) from None
        return Document(response.content, media_type or str(body.get("mediaType", "")))

    def put_manifest(self, repository: str, reference: str, document: Document) -> str:
        what = f"PUT manifest {repository}:{reference}"
        response = self._exchange(
            "PUT",
            repository,
            "manifests",
            reference,
            what,
            body=document.data,
            headers={"Content-Type": document.media_type},
        )
        if response.status_code >= 300:
            raise self.fail(response, what)
        return document.digest

    # Tags and referrers -----------------------------------------------------------

    def tags(self, repository: str) -> list[str]:
        """Every tag of `repository`, across pages ([] when it does not exist yet)."""
        url: str | None = f"{self.base}/v2/{repository}/tags/list"
        params: dict[str, str] | None = {"n": "1000"}
        found: dict[str, None] = {}  # ordered, each tag once
        seen: set[str] = set()
        read = 0
        what = f"GET tags of {repository}"
        while url:
            if url in seen or len(seen) >= MAX_TAG_PAGES:
                said = "comes back to a page" if url in seen else f"runs past {MAX_TAG_PAGES} pages"
                raise RegistryError(f"{self.label}: {what}: the tag list {said}")
            seen.add(url)
            response = self._send(_Request("GET", url, what, repository, params=params))
            if response.status_code == 404:
                break
            if response.status_code >= 300:
                raise self.fail(response, what)
            read += len(response.content)
            if read > MAX_TAG_BYTES:
                raise TooLarge(
                    f"{self.label}: {what}: the tag list is larger than {MAX_TAG_BYTES >> 20} MiB"
                )
            body = json_object(response.content)
            if body is None:
                raise RegistryError(f"{self.label}: {what}: the registry sent no JSON object")
            listed = body.get("tags") or []
            if not isinstance(listed, list):
                raise RegistryError(f"{self.label}: {what}: the tag list is not a list")
            known = len(found)
            found |= dict.fromkeys(tag for tag in listed if isinstance(tag, str))
            if len(found) > MAX_TAGS:
                raise TooLarge(f"{self.label}: {what}: more than {MAX_TAGS} tags")
            following = response.links.get("next", {}).get("url")
            if following and len(found) == known:
                raise RegistryError(f"{self.label}: {what}: a next page after one of no new tags")
            url = urljoin(url, following) if following else None
            if url and not url.startswith(self.base + "/"):
                raise RegistryError(f"{self.label}: {what}: the next page is on another host")
            params = None
        return list(found)

    def delete_manifest(self, repository: str, reference: str) -> None:
        """DELETE a manifest (by digest) or a tag; a registry that refuses says so."""
        what = f"DELETE manifest {repository}:{reference}"
        response = self._exchange("DELETE", repository, "manifests", reference, what)
        if response.status_code in (405, 400) or (
            response.status_code == 404 and not is_digest(reference)
        ):
            raise RegistryError(
                f"{self.label}: {what}: the registry does not allow deleting "
                + ("this tag" if not is_digest(reference) else "manifests")
            )
        if response.status_code >= 300:
            raise self.fail(response, what)

    def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        """Descriptors from the OCI 1.1 Referrers API; None when the registry has none."""
        what = f"GET referrers of {repository}@{digest}"
        response = self._exchange(
            "GET",
            repository,
            "referrers",
            digest,
            what,
            headers={"Accept": "application/vnd.oci.image.index.v1+json"},
        )
        if response.status_code in (404, 405) or "json" not in response.headers.get(
            "Content-Type", ""
        ):
            return None
        if response.status_code >= 300:
            raise self.fail(response, what)
        try:
            return Document(response.content, "").children()
        except ValueError:
            raise RegistryError(f"{self.label}: {what}: malformed referrers index") from None

    # Blobs ----------------------------------------------------------------------

    def note(self, repository: str, digests: list[str]) -> None:
        """Blobs known to be in `repository`: pushes elsewhere on this host mount them."""
        with self._lock:
            for digest in digests:
                self._present.add((repository, digest))
                self._homes.setdefault(digest, repository)

    def has_blob(self, repository: str, digest: str) -> bool:
        with self._lock:
            if (repository, digest) in self._present:
                return True
        what = f"HEAD blob {repository}@{digest}"
        response = self._exchange("HEAD", repository, "blobs", digest, what)
        if response.status_code == 404:
            return False
        if response.status_code >= 300:
            raise self.fail(response, what)
        self.note(repository, [digest])
        return True

    def get_blob(
        self, repository: str, digest: str, size: int | None = None, bound: int = MAX_IN_MEMORY
    ) -> bytes:
        """A small blob (config, signature, SBOM, a wasm module), verified against its
        digest; read up to its declared `size`, else up to `bound`. A declared size past
        `bound` (MAX_DOCUMENT for the JSON ones) is refused before anything is read."""
        wanted = digests.parse(digest, f"{self.label}: {repository}")
        what = f"GET blob {repository}@{digest}"
        if size is not None and size > bound:
            raise TooLarge(
                f"{self.label}: {what}: declares {size} bytes, more than the {_mib(bound)} "
                "such a blob may weigh"
            )
        kept = bytearray()

        def check(response: requests.Response) -> str | None:
            kept.clear()
            return self._receive(response, wanted, size, bound, what, kept.extend)

        response = self._exchange(
            "GET", repository, "blobs", wanted, what, check=check, stream=True, size=size or 0
        )
        if response.status_code >= 300:
            raise self.fail(response, what)
        return bytes(kept)

    def _receive(
        self, response: requests.Response, digest: Digest, size: int | None, bound: int,
        what: str, sink: Callable[[bytes], object],
    ) -> str | None:  # fmt: skip
        """Stream a blob's body into `sink` through its hash, refusing more than its
        declared `size` (else `bound`) bytes; the problem when it does not match."""
        limit = size if size is not None else bound
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            response.close()
            said = "the declared" if size is not None else "at most"
            raise TooLarge(f"{self.label}: {what}: {declared} bytes, more than {said} {limit}")
        hasher, seen = digests.hasher(digest), 0
        for chunk in response.iter_content(1 << 20):
            seen += len(chunk)
            if seen > limit:
                response.close()
                said = "the declared" if size is not None else "at most"
                raise TooLarge(f"{self.label}: {what}: more than {said} {limit} bytes")
            hasher.update(chunk)
            sink(chunk)
        actual = f"{digests.algorithm(digest)}:{hasher.hexdigest()}"
        if size is not None and seen != size:
            return f"{seen} bytes, not the declared {size}"
        return None if actual == digest else f"the body's digest is {actual}"

    def download_blob(
        self, repository: str, digest: Digest, target: Path, size: int, bound: int = MAX_ARTIFACT
    ) -> None:
        """A blob of its declared `size` (at most `bound`: an artifact's, or a layer's for
        a copy), streamed to `target` in constant memory and verified against its digest;
        written through a temporary file (removed on any failure), retried like a small one."""
        what = f"GET blob {repository}@{digest}"
        if size > bound:
            limit = _mib(bound)
            raise TooLarge(f"{self.label}: {what}: declares more than the {limit} a blob may weigh")
        partial = target.with_name(f".{target.name}.part")
        target.parent.mkdir(parents=True, exist_ok=True)

        def check(response: requests.Response) -> str | None:
            with partial.open("wb") as sink:
                return self._receive(response, digest, size, size, what, sink.write)

        try:
            response = self._exchange(
                "GET", repository, "blobs", digest, what, check=check, stream=True, size=size
            )
            if response.status_code >= 300:
                raise self.fail(response, what)
            partial.replace(target)
        finally:
            partial.unlink(missing_ok=True)

    def push_blob(self, repository: str, blob: Blob) -> int:
        """Upload `blob` unless the repository has it; mount it when another repository of
        this registry is known to hold it. A failed upload starts over from POST. The
        bytes sent: 0 for a blob the repository had or mounted."""
        if self.has_blob(repository, blob.digest):
            self.transfer.add(skipped_blobs=1)
            return 0
        with self._lock:
            home = self._homes.get(blob.digest)
        what = f"upload {repository}@{blob.digest}"
        attempts = self.policy.attempts()
        while True:
            try:
                mounted = self._upload(repository, blob, home if home != repository else None, what)
                if mounted:
                    self.transfer.add(mounted_blobs=1)
                else:
                    self.transfer.add(uploaded_bytes=blob.size, uploaded_blobs=1)
                self.note(repository, [blob.digest])
                return 0 if mounted else blob.size
            except _Transient as exc:
                if not attempts.wait(exc.retry_after):
                    raise RegistryError(
                        f"{self.label}: {what}: {exc.reason} "
                        f"(gave up after {attempts.number} tries)"
                    ) from None

    def _upload(self, repository: str, blob: Blob, home: str | None, what: str) -> bool:
        """POST (a mount when `home` is set), then PUT the body; True when mounted."""
        params = {"mount": blob.digest, "from": home} if home else None
        started = self._once(
            _Request(
                "POST",
                f"{self.base}/v2/{repository}/blobs/uploads/",
                what,
                repository,
                params=params,
                headers={"Content-Length": "0"},
            )
        )
        if started.status_code == 201 and home:
            return True
        if home and started.status_code >= 300:  # a refused mount: upload it instead
            return self._upload(repository, blob, None, what)
        if started.status_code != 202 or "Location" not in started.headers:
            raise self.fail(started, what)
        location = urljoin(started.url, started.headers["Location"])
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)}
        finished = self._once(
            _Request(
                "PUT", location, what, repository,
                headers=headers, body=blob.body(), params={"digest": blob.digest},
                size=blob.size,
            )
        )  # fmt: skip
        if finished.status_code in (400, 404, 416):
            # The session was lost, or the body arrived damaged: start the blob over.
            raise _Transient(f"{finished.status_code} {_registry_error(finished)}".strip())
        if finished.status_code >= 300:
            raise self.fail(finished, what)
        return False

    def check_push(self, repository: str) -> None:
        """Preflight: may we push to `repository`? Starts an upload and cancels it."""
        what = f"push to {repository}"
        started = self._send(
            _Request(
                "POST",
                f"{self.base}/v2/{repository}/blobs/uploads/",
                what,
                repository,
                headers={"Content-Length": "0"},
            )
        )
        if started.status_code != 202:
            raise self.fail(started, what)
        location = started.headers.get("Location")
        if location:
            with contextlib.suppress(_Transient):  # an abandoned session expires on its own
                self._once(_Request("DELETE", urljoin(started.url, location), what, repository))


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port: where a request goes, for whom the login is."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        port = -1
    return parts.scheme, (parts.hostname or ""), port


def _mib(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 else f"{size} bytes"


def _hashed(data: bytes, like: Digest) -> Digest:
    """The digest of `data` in the algorithm of `like`."""
    hasher = digests.hasher(like)
    hasher.update(data)
    return Digest(f"{digests.algorithm(like)}:{hasher.hexdigest()}")


def _registry_error(response: requests.Response) -> str:
    """The registry's own `code: message` (distribution's error body), else its text;
    secrets (the password, `user:password` in base64) redacted before it is cut short."""
    errors = (json_object(response.content) or {}).get("errors")
    first = errors[0] if isinstance(errors, list) and errors else None
    if isinstance(first, dict):
        said = f"{first.get('code', '')}: {first.get('message', '')}".strip(": ")
        return one_line(process.redact(said))[:300]
    text = response.text.strip() if response.content else ""
    return one_line(process.redact(text))[:200]


def _network_reason(exc: BaseException) -> str:
    text = str(exc)
    for marker, reason in (
        ("Read timed out", "read timed out"),
        ("timed out", "timed out"),
        ("reset", "connection reset"),
        ("Connection refused", "connection refused"),
        ("IncompleteRead", "the answer was cut short"),
        ("RemoteDisconnected", "the registry closed the connection"),
    ):
        if marker in text:
            return reason
    return type(exc).__name__
