"""A fault-injecting HTTP proxy in front of a real registry, for Syntra's requests only.

Requests whose User-Agent starts with `syntra/` meet a fault with probability `rate`:
an error status (500, 502, 503, or 429 with Retry-After), a connection reset before or
in the middle of the answer, a truncated body, or a stall longer than the client's
timeout. podman, skopeo and syft pass untouched, so only Syntra's retry policy is under
test. `lie=True` instead changes one byte of every manifest body sent to Syntra (a
registry, or a plain-HTTP path, that cannot be trusted). Faults are drawn from a seeded
generator, so a failing run can be replayed.
"""

from __future__ import annotations

import http.client
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

FAULTS = ("500", "502", "503", "429", "reset-early", "reset-late", "truncate", "stall")
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        upstream: str,
        rate: float,
        seed: int,
        stall: float,
        lie: bool,
        latency: float,
        port: int,
    ) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.upstream = upstream
        self.rate = rate
        self.random = random.Random(seed)
        self.stall = stall
        self.lie = lie
        self.latency = latency
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self.uploaded: list[str] = []  # digests of blob bodies that went through
        self.mounted: list[str] = []  # digests mounted from another repository

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def draw(self, user_agent: str) -> str | None:
        if not user_agent.startswith("syntra/"):
            return None
        with self.lock:
            self.requests += 1
            if self.random.random() >= self.rate:
                return None
            fault = self.random.choice(FAULTS)
            self.injected[fault] += 1
            return fault


class _Handler(BaseHTTPRequestHandler):
    server: FaultProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _forward(self) -> None:
        proxy = self.server
        if proxy.latency:
            time.sleep(proxy.latency)
        fault = proxy.draw(self.headers.get("User-Agent", ""))
        if fault in ("500", "502", "503", "429"):
            self._drain()
            self._error(int(fault))
            return
        if fault == "reset-early":
            self._reset()
            return
        if fault == "stall":
            time.sleep(proxy.stall)
            self._reset()
            return
        upstream = http.client.HTTPConnection(proxy.upstream, timeout=120)
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        chunked = self.headers.get("Transfer-Encoding", "").lower() == "chunked"
        body = self._chunked() if chunked else None  # skopeo PATCHes chunked bodies
        if body is not None:
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        length = int(self.headers.get("Content-Length") or 0)
        upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for key, value in headers:  # repeated headers (podman's Accept) stay repeated
            upstream.putheader(key, value)
        upstream.endheaders()
        if body is not None:
            upstream.send(body)
        remaining = 0 if body is not None else length
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            upstream.send(chunk)
            remaining -= len(chunk)
        answer = upstream.getresponse()
        body = answer.read()
        upstream.close()
        query = parse_qs(urlsplit(self.path).query)
        with proxy.lock:
            if self.command == "PUT" and "digest" in query and length and answer.status == 201:
                proxy.uploaded.append(query["digest"][0])
            if self.command == "POST" and "mount" in query and answer.status == 201:
                proxy.mounted.append(query["mount"][0])
        if (
            proxy.lie
            and self.command == "GET"
            and "/manifests/" in self.path
            and self.headers.get("User-Agent", "").startswith("syntra/")
            and answer.status == 200
            and body
        ):
            body = body[:-1] + (b" " if body[-1:] != b" " else b"\n")
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command == "HEAD":
            return
        if fault == "truncate" and len(body) > 1:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._reset()
            return
        if fault == "reset-late" and len(body) > 1:
            self.wfile.write(body[:1])
            self.wfile.flush()
            self._reset()
            return
        self.wfile.write(body)

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()

    def _drain(self) -> None:
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)

    def _error(self, status: int) -> None:
        body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}'
        self.send_response(status)
        if status == 429:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _reset(self) -> None:
        """Close with RST, not FIN: what a dropped connection looks like to the client."""
        self.connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        self.close_connection = True
        self.connection.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward


@contextmanager
def fault_proxy(
    upstream: str,
    rate: float = 0.0,
    seed: int = 1,
    stall: float = 3.0,
    lie: bool = False,
    latency: float = 0.0,
    port: int = 0,
) -> Iterator[FaultProxy]:
    proxy = FaultProxy(upstream, rate, seed, stall, lie, latency, port)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()
