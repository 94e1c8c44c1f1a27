"""A TCP forwarding proxy for the tests that can cut a connection in the middle: the client
talks to it on loopback, it forwards every byte to one upstream server on loopback and back.

`cut_after(n, connections=1)` makes the next `connections` connections be cut (both sides
closed at once, with a reset) as soon as `n` bytes have gone upstream (client to server):
a connection lost in the middle of an upload. Later connections pass untouched, so a client
that tries again gets through.

    with TcpCutProxy(upstream_port).start() as proxy:
        proxy.cut_after(64 * 1024)
        ...  # connect to 127.0.0.1:proxy.port
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from types import TracebackType

CHUNK = 16 * 1024


class TcpCutProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        if upstream_host not in ("127.0.0.1", "localhost"):
            raise ValueError("the cut proxy forwards only to loopback")
        self.upstream = (upstream_host, upstream_port)
        self._lock = threading.Lock()
        self._cut_after = 0
        self._cuts_left = 0
        self.connections = 0
        self.cuts = 0
        self._listener: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        assert self._listener is not None, "the proxy is not started"
        return int(self._listener.getsockname()[1])

    def cut_after(self, n_bytes: int, *, connections: int = 1) -> None:
        with self._lock:
            self._cut_after = n_bytes
            self._cuts_left = connections

    def start(self) -> TcpCutProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.05)
        self._listener = listener
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            for sock in list(self._sockets):
                _close(sock, reset=False)
        for thread in self._threads:
            thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def __enter__(self) -> TcpCutProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- inside -----------------------------------------------------------------------------

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            server.settimeout(None)
            with self._lock:
                self.connections += 1
                budget = self._cut_after if self._cuts_left > 0 else None
                if budget is not None:
                    self._cuts_left -= 1
                self._sockets |= {client, server}
            pair = _Pair(client, server, budget)
            self._spawn(self._pump, pair, client, server, True)
            self._spawn(self._pump, pair, server, client, False)

    def _pump(self, pair: _Pair, source: socket.socket, sink: socket.socket, up: bool) -> None:
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                if up and pair.budget is not None:
                    if len(data) >= pair.budget - pair.sent:
                        sink.sendall(data[: max(0, pair.budget - pair.sent)])
                        with self._lock:
                            self.cuts += 1
                        pair.cut()
                        return
                    pair.sent += len(data)
                sink.sendall(data)
        except OSError:
            pass
        pair.close()
        with self._lock:
            self._sockets -= {source, sink}


class _Pair:
    """One proxied connection: both sockets, and how much may still go upstream."""

    def __init__(self, client: socket.socket, server: socket.socket, budget: int | None) -> None:
        self.client = client
        self.server = server
        self.budget = budget
        self.sent = 0
        self._closed = False
        self._lock = threading.Lock()

    def cut(self) -> None:
        self._close_both(reset=True)

    def close(self) -> None:
        self._close_both(reset=False)

    def _close_both(self, *, reset: bool) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for sock in (self.client, self.server):
            _close(sock, reset=reset)


def _close(sock: socket.socket, *, reset: bool) -> None:
    with contextlib.suppress(OSError):
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    sock.close()
