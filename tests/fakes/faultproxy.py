"""A fault-injecting HTTP proxy for the tests: the connector talks to it, it talks to a real
SCIM server on loopback, and it spoils a seeded share of the exchanges.

This is the one place where the tests fake anything between the connector and the vendor, and
what it fakes is the network: every request that is not answered by a fault is forwarded as it
is (method, path and query, headers including Authorization, body) to the real server, and the
real answer is passed back.

Fault kinds (`KINDS`):

before forwarding (the server never sees the request)
    ``429``       429 Too Many Requests with ``Retry-After`` (0 or 1 s)
    ``500``       500 Internal Server Error, no Retry-After
    ``503``       503 Service Unavailable with ``Retry-After`` (0 or 1 s)
    ``stall``     no answer for ``stall_seconds`` (longer than the client's timeout), then the
                  connection is closed
    ``reset``     the connection is closed at once, without a response (RST)
    ``401``       401 Unauthorized (a token the vendor no longer takes)
    ``html``      200 with an HTML page (a proxy or captive portal in the way)
    ``empty_list``  200 with an empty SCIM ListResponse (``totalResults`` 0)
    ``empty_object``  200 with ``{}``

after forwarding (the server performed the request; the client does not learn it)
    ``after_500``    the server's answer is replaced by a 500
    ``after_reset``  the connection is closed without a response
    ``after_stall``  no answer for ``stall_seconds``, then the connection is closed
    ``truncated``    the server's status (204 becomes 200) with the first half of its body,
                     which is not JSON
    ``no_id``        the server's status and JSON body with the resource's ``id`` taken out
    ``lost_half``    the server's list page with half of its ``Resources`` left out, and
                     ``totalResults`` lowered to match (a vendor that lost accounts)
    ``duplicate``    the server's list page with its last resource replaced by its first, the
                     count and ``totalResults`` as they were (one resource read twice, one
                     lost: what resources moving during a listing by index look like)

Which request gets which fault is decided from the seed and the request itself (method, path
without the tenant, body with server ids blanked, and how many times that same request was seen),
so a run is reproducible however the client's threads interleave. ``peak_in_flight`` is the
most requests the proxy held at once (a client that sends in parallel makes it more than 1). ``inject`` scripts a fault
for particular requests; ``on_forwarded`` calls back after the n-th forwarded request (the
crash tests kill the connector there: the server has done the work, the client never hears).

It listens on 127.0.0.1 only and forwards only to the one upstream it was given.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import random
import re
import socket
import ssl
import struct
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BEFORE = ("429", "500", "503", "stall", "reset", "401", "html", "empty_list", "empty_object")
AFTER = (
    "after_500",
    "after_reset",
    "after_stall",
    "truncated",
    "no_id",
    "lost_half",
    "duplicate",
)
KINDS = BEFORE + AFTER
# Faults the client is expected to retry (the temporary ones; not a refusal or a 2xx body).
RETRYABLE = frozenset(
    {"429", "500", "503", "stall", "reset", "after_500", "after_reset", "after_stall"}
)

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "host",
    }
)
_SERVER_ID = re.compile(r"[0-9a-f]{32}")
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"

# (method, path incl. query, body) -> whether it matches
RequestMatch = Callable[[str, str, bytes], bool]


def request_match(
    method: str | None = None, path_contains: str | None = None, body_contains: str | None = None
) -> RequestMatch:
    """A matcher on the method (exact), a piece of the path (with query) and of the body."""

    def match(m: str, path: str, body: bytes) -> bool:
        return (
            (method is None or m == method)
            and (path_contains is None or path_contains in path)
            and (body_contains is None or body_contains.encode() in body)
        )

    return match


@dataclass
class _Rule:
    kind: str
    match: RequestMatch
    times: int


@dataclass
class _Hook:
    n: int
    callback: Callable[[], None]
    match: RequestMatch | None
    seen: int = 0
    fired: bool = False


class FaultProxy:
    def __init__(
        self,
        upstream_root: str,
        *,
        seed: int = 0,
        rates: dict[str, float] | None = None,
        stall_seconds: float = 2.0,
        spare: Callable[[str, str, str], bool] | None = None,
        upstream_timeout: float = 30.0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`upstream_root`: http://127.0.0.1:PORT (any path in it is ignored; request paths are
        forwarded as they are). `rates`: the probability of each fault kind per request (their
        sum at most 1). `spare(method, path, kind)`: True lets that request through unharmed
        instead of giving it the fault drawn for it. `tls`: serve HTTPS with this server-side
        context (the upstream stays plain HTTP on loopback)."""
        upstream = urlsplit(upstream_root)
        if upstream.scheme != "http" or upstream.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError("the fault proxy forwards only to http:// on loopback")
        self.upstream_host = upstream.hostname
        self.upstream_port = upstream.port or 80
        self.seed = seed
        self.stall_seconds = stall_seconds
        self.spare = spare
        self.upstream_timeout = upstream_timeout
        self.tls = tls
        self._rates: dict[str, float] = {}
        self.set_rates(rates or {})
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._seen: Counter[str] = Counter()
        self._rules: list[_Rule] = []
        self._hooks: list[_Hook] = []
        self.requests = 0
        self.forwarded = 0
        self.requests_by_method: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0
        self.faults: Counter[str] = Counter()
        self.fault_log: list[tuple[str, str, str]] = []  # (kind, method, path)
        self.request_log: list[tuple[str, str]] = []  # (method, path), every request
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- configuration --------------------------------------------------------------------

    def set_rates(self, rates: dict[str, float]) -> None:
        unknown = set(rates) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kinds: {sorted(unknown)}")
        if sum(rates.values()) > 1.0 + 1e-9 or any(r < 0 for r in rates.values()):
            raise ValueError("fault rates must be >= 0 and sum to at most 1")
        self._rates = {k: rates[k] for k in KINDS if rates.get(k)}

    @property
    def rates(self) -> dict[str, float]:
        return dict(self._rates)

    def inject(
        self,
        kind: str,
        *,
        method: str | None = None,
        path_contains: str | None = None,
        body_contains: str | None = None,
        match: RequestMatch | None = None,
        times: int = 1,
    ) -> None:
        """Give the next `times` requests that match this fault (before any random one)."""
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        matcher = match or request_match(method, path_contains, body_contains)
        with self._lock:
            self._rules.append(_Rule(kind, matcher, times))

    def on_forwarded(
        self, n: int, callback: Callable[[], None], *, match: RequestMatch | None = None
    ) -> None:
        """Call `callback` once, when the n-th (matching) request has been forwarded and the
        server has answered, before that answer is passed on to the client."""
        with self._lock:
            self._hooks.append(_Hook(n, callback, match))

    def hooks_fired(self) -> int:
        with self._lock:
            return sum(1 for h in self._hooks if h.fired)

    # -- life -----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "the proxy is not started"
        return int(self._server.server_address[1])

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, upstream_url: str) -> str:
        """The same URL (path, query) with the upstream's host and port replaced by the proxy's."""
        parts = urlsplit(upstream_url)
        scheme = "https" if self.tls else "http"
        return urlunsplit((scheme, f"127.0.0.1:{self.port}", parts.path, parts.query, ""))

    def start(self) -> FaultProxy:
        proxy = self

        class Handler(_ProxyHandler):
            owner = proxy

        server = _Server(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            # The handshake happens per connection, in its handler thread (see _ProxyHandler).
            server.socket = self.tls.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- what happened --------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": self.requests,
                "forwarded": self.forwarded,
                "faults": sum(self.faults.values()),
                "faults_by_kind": dict(sorted(self.faults.items())),
                "requests_by_method": dict(sorted(self.requests_by_method.items())),
            }

    # -- decisions (called by the handler threads) ----------------------------------------

    def _decide(self, method: str, path: str, body: bytes) -> str | None:
        with self._lock:
            self.requests += 1
            self.requests_by_method[method] += 1
            self.request_log.append((method, path))
            for rule in self._rules:
                if rule.times > 0 and rule.match(method, path, body):
                    rule.times -= 1
                    self._count_fault(rule.kind, method, path)
                    return rule.kind
            if not self._rates:
                return None
            key = "|".join(
                (
                    method,
                    _SERVER_ID.sub("{id}", _without_tenant(path)),
                    _SERVER_ID.sub("{id}", body.decode("utf-8", "replace")),
                )
            )
            self._seen[key] += 1
            digest = hashlib.sha256(f"{self.seed}|{key}|{self._seen[key]}".encode()).digest()
            draw = random.Random(digest).random()
            kind = None
            edge = 0.0
            for candidate, rate in self._rates.items():
                edge += rate
                if draw < edge:
                    kind = candidate
                    break
            if kind is None or (self.spare is not None and self.spare(method, path, kind)):
                return None
            self._count_fault(kind, method, path)
            return kind

    def _count_fault(self, kind: str, method: str, path: str) -> None:
        self.faults[kind] += 1
        self.fault_log.append((kind, method, path))

    def _forwarded(self, method: str, path: str, body: bytes) -> list[Callable[[], None]]:
        due = []
        with self._lock:
            self.forwarded += 1
            for hook in self._hooks:
                if hook.fired or (hook.match is not None and not hook.match(method, path, body)):
                    continue
                hook.seen += 1
                if hook.seen >= hook.n:
                    hook.fired = True
                    due.append(hook.callback)
        return due

    def _retry_after(self, method: str, path: str) -> str:
        digest = hashlib.sha256(f"{self.seed}|ra|{method}|{path}".encode()).digest()
        return "0" if digest[0] % 2 else "1"

    def _pause(self) -> None:
        self._stopping.wait(self.stall_seconds)

    def _upstream(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        connection = http.client.HTTPConnection(
            self.upstream_host, self.upstream_port, timeout=self.upstream_timeout
        )
        try:
            connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            connection.putheader("Host", f"{self.upstream_host}:{self.upstream_port}")
            for name, value in headers:
                connection.putheader(name, value)
            if body or method in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            data = response.read()
            return response.status, response.reason, response.getheaders(), data
        finally:
            connection.close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a client reconnecting after drops must not meet a full backlog

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client went away (dropped on purpose, or killed by a crash test)
        super().handle_error(request, client_address)


def _without_tenant(path: str) -> str:
    """/TENANT/v2/Users?x -> /v2/Users?x, so a seed means the same faults for every tenant."""
    return "/v2/" + path.split("/v2/", 1)[1] if "/v2/" in path else path


class _ProxyHandler(BaseHTTPRequestHandler):
    owner: FaultProxy
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"
    sys_version = ""
    wbufsize = -1  # status line, headers and body leave in one write

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                self.request.close()  # a client that refused our certificate: that is all
                raise ConnectionError("TLS handshake refused") from None
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet

    def do_GET(self) -> None:
        self._proxy()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _proxy(self) -> None:
        owner = self.owner
        with owner._lock:
            owner.in_flight += 1
            owner.peak_in_flight = max(owner.peak_in_flight, owner.in_flight)
        try:
            self._answer(owner)
        finally:
            with owner._lock:
                owner.in_flight -= 1

    def _answer(self, owner: FaultProxy) -> None:
        method, path = self.command, self.path
        body = self._read_body()
        kind = owner._decide(method, path, body)

        if kind in ("429", "503"):
            return self._send_error(int(kind), {"Retry-After": owner._retry_after(method, path)})
        if kind == "500":
            return self._send_error(500)
        if kind == "stall":
            owner._pause()
            return self._drop()
        if kind == "reset":
            return self._drop()
        if kind == "401":
            return self._send_error(401)
        if kind == "html":
            page = b"<!DOCTYPE html><html><body><h1>Please log in</h1></body></html>"
            return self._send(200, "OK", [("Content-Type", "text/html; charset=utf-8")], page)
        if kind in ("empty_list", "empty_object"):
            listing = {"schemas": [LIST_RESPONSE], "totalResults": 0, "Resources": []}
            data = json.dumps(listing if kind == "empty_list" else {}).encode()
            return self._send(200, "OK", [("Content-Type", "application/scim+json")], data)

        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
        try:
            status, reason, upstream_headers, data = owner._upstream(method, path, headers, body)
        except OSError:
            return self._send_error(502)
        for callback in owner._forwarded(method, path, body):
            callback()

        if kind == "after_500":
            return self._send_error(500)
        if kind == "after_reset":
            return self._drop()
        if kind == "after_stall":
            owner._pause()
            return self._drop()
        if kind == "truncated":
            status = 200 if status == 204 else status
            data = data[: len(data) // 2] if len(data) > 1 else b'{"schemas": ['
        elif kind == "no_id":
            data = _without_id(data)
        elif kind == "lost_half":
            data = _half_a_page(data)
        elif kind == "duplicate":
            data = _first_twice(data)
        self._send(status, reason, upstream_headers, data)

    # -- answers --------------------------------------------------------------------------

    def _send(self, status: int, reason: str, headers: list[tuple[str, str]], data: bytes) -> None:
        try:
            self.send_response(status, reason or None)
            for name, value in headers:
                if name.lower() not in _HOP_BY_HOP and name.lower() not in ("server", "date"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client is gone (e.g. killed by a crash test)

    def _send_error(self, status: int, extra: dict[str, str] | None = None) -> None:
        body = json.dumps(
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": str(status),
                "detail": "injected by the fault proxy",
            }
        ).encode()
        headers = [("Content-Type", "application/scim+json"), *(extra or {}).items()]
        self._send(status, "", headers, body)

    def _drop(self) -> None:
        """Close the connection without a response: an RST, not a polite FIN."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _without_id(data: bytes) -> bytes:
    try:
        body = json.loads(data)
    except ValueError:
        return data
    if isinstance(body, dict):
        body.pop("id", None)
    return json.dumps(body).encode()


def _half_a_page(data: bytes) -> bytes:
    try:
        body = json.loads(data)
    except ValueError:
        return data
    if isinstance(body, dict) and isinstance(body.get("Resources"), list):
        resources = body["Resources"]
        lost = len(resources) - len(resources) // 2
        body["Resources"] = resources[: len(resources) // 2]
        body["itemsPerPage"] = len(body["Resources"])
        if isinstance(body.get("totalResults"), int):
            body["totalResults"] -= lost
    return json.dumps(body).encode()


def _first_twice(data: bytes) -> bytes:
    try:
        body = json.loads(data)
    except ValueError:
        return data
    if isinstance(body, dict) and isinstance(body.get("Resources"), list) and body["Resources"]:
        body["Resources"][-1] = body["Resources"][0]
    return json.dumps(body).encode()
