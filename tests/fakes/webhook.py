"""A real HTTP(S) receiver for webhook notifications: http.server in a thread, on a free
loopback port. It keeps every POST (path and parsed JSON body) and answers with the statuses
it is given, one per request, then 200.

With `tls=True` it serves HTTPS with a certificate for 127.0.0.1 from a throw-away CA made with
`trustme` (`ca_file`).

    with WebhookReceiver(tmp_path / "hook", statuses=[500]) as hook:
        url = hook.url("/hooks/TOKEN")
"""

from __future__ import annotations

import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme


class WebhookReceiver:
    def __init__(self, folder: Path, *, tls: bool = False, statuses: list[int] | None = None):
        folder.mkdir(parents=True, exist_ok=True)
        self.ca_file = folder / "ca.pem"
        self.lock = threading.Lock()
        self.requests: list[tuple[str, Any]] = []  # (path, JSON body), every POST
        self._statuses = list(statuses or [])
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.scheme = "http"
        if tls:
            ca = trustme.CA()
            ca.cert_pem.write_to_path(str(self.ca_file))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self._server.server_address[1]}{path}"

    @property
    def bodies(self) -> list[Any]:
        with self.lock:
            return [body for _, body in self.requests]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with receiver.lock:
                    receiver.requests.append((self.path, body))
                    status = receiver._statuses.pop(0) if receiver._statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet

        return Handler

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
