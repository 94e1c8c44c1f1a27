"""The health endpoint: /healthz (alive), /readyz (the last cycle worked, recently), /metrics."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from connector.errors import ListenError
from connector.service.metrics import Metrics
from connector.service.statuspage import HEADERS, render_page
from connector.state.database import StateWhere

log = structlog.get_logger(__name__)


class HealthServer:
    def __init__(
        self,
        listen: str,
        metrics: Metrics,
        ready_max_age_seconds: float,
        state_path: StateWhere | None = None,
        show_names: bool = False,
    ) -> None:
        host, port = listen.rsplit(":", 1)
        self.metrics = metrics
        self.ready_max_age_seconds = ready_max_age_seconds
        self.state_path = state_path
        self.show_names = show_names
        try:
            self._server = ThreadingHTTPServer((host, int(port)), _handler_for(self))
        except OSError as exc:
            reason = (exc.strerror or str(exc)).rstrip(".")
            raise ListenError(f"health.listen {listen}: {reason[:1].lower()}{reason[1:]}") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}"

    def readiness(self) -> tuple[bool, str]:
        if self.metrics.standby:
            # Ready: a standby replica is healthy (a disruption budget counts it), it waits.
            return True, "ready: standby replica, waiting to lead (another replica applies)"
        if self.metrics.is_degraded:
            return False, "not ready: degraded, the vendor has failed several cycles in a row"
        last = self.metrics.last_success_monotonic
        if last is None:
            return (
                False,
                f"not ready: no successful cycle yet (last outcome: {self.metrics.last_outcome})",
            )
        age = time.monotonic() - last
        if age > self.ready_max_age_seconds:
            return False, f"not ready: the last successful cycle was {age:.0f} s ago"
        return True, f"ready: the last successful cycle was {age:.0f} s ago"

    def status_page(self) -> tuple[int, bytes]:
        """The page at /; a bug in it answers 500 and never takes the listener down."""
        assert self.state_path is not None
        try:
            page = render_page(self.state_path, self.metrics, show_names=self.show_names)
        except Exception as exc:
            log.exception("statuspage.failed", error=type(exc).__name__)
            return 500, b"<!DOCTYPE html><title>connector</title><p>The status page failed.</p>\n"
        return 200, page.encode("utf-8")

    def start(self) -> None:
        self._thread.start()
        log.info("health.listening", address=self.address)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler_for(health: HealthServer) -> type[BaseHTTPRequestHandler]:
    """The request handler of one health listener (http.server wants a class)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(200, b"ok\n", "text/plain; charset=utf-8")
            elif path == "/readyz":
                ready, reason = health.readiness()
                self._send(
                    200 if ready else 503, (reason + "\n").encode(), "text/plain; charset=utf-8"
                )
            elif path == "/metrics":
                self._send(200, generate_latest(health.metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/" and health.state_path is not None:
                status, page = health.status_page()
                self._send(status, page, HEADERS["Content-Type"], HEADERS)
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

        def _send(
            self,
            status: int,
            body: bytes,
            content_type: str,
            headers: dict[str, str] | None = None,
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                if name != "Content-Type":
                    self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # probes every few seconds would drown the real events

    return Handler
