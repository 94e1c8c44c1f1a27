"""systemd's `Type=notify` and watchdog, by the notify socket protocol (no library needed).

When systemd starts the service with `Type=notify` it sets `$NOTIFY_SOCKET`: a path, or an
abstract socket name written with a leading `@`. The daemon sends datagrams of `KEY=value`
lines to it: `READY=1` once the scheduler and the health listener are up, `STATUS=...` (what
`systemctl status` shows: idle until when, or a cycle running), `WATCHDOG=1` every half of
`$WATCHDOG_USEC` while healthy, and `STOPPING=1` on shutdown. Without `$NOTIFY_SOCKET` (a
terminal, Docker, Kubernetes) every call does nothing.

Healthy, for the watchdog, means: the main loop goes round (it sends the pings, so a hung main
thread stops them), and no cycle has run longer than `STUCK_CYCLE_SECONDS`. That is far beyond
any real cycle (a first sync of 20,000 persons takes minutes; every request has a timeout) so a
slow vendor never gets the service killed, but a worker hung for good (a deadlock, a read that
never returns) does: systemd then restarts it (`Restart=on-failure`).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping

import structlog

log = structlog.get_logger(__name__)

# A cycle running longer than this is taken to be hung: the watchdog pings stop.
STUCK_CYCLE_SECONDS = 6 * 3600.0


def cycle_hung(started: float | None, now: float | None = None) -> bool:
    """Whether a cycle that began at `started` (monotonic; None: no cycle runs) is hung."""
    if started is None:
        return False
    return (time.monotonic() if now is None else now) - started >= STUCK_CYCLE_SECONDS


def socket_address(value: str) -> str:
    """`@name` is an abstract socket (Linux): its address starts with a NUL byte."""
    return "\0" + value[1:] if value.startswith("@") else value


class SystemdNotifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = socket_address(address) if address else None
        self.watchdog_seconds = _watchdog_seconds(env)
        self._last_ping = 0.0
        self._failed = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str) -> None:
        self._send(f"READY=1\nSTATUS={status}\nMAINPID={os.getpid()}")

    def status(self, text: str) -> None:
        self._send(f"STATUS={text}")

    def stopping(self) -> None:
        self._send("STOPPING=1\nSTATUS=stopping")

    def keepalive(self, healthy: bool) -> None:
        """Called from the main loop: a WATCHDOG=1 every half of the watchdog's time, while
        the daemon is healthy."""
        if self.watchdog_seconds is None or not healthy:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_seconds / 2:
            self._last_ping = now
            self._send("WATCHDOG=1")

    def _send(self, message: str) -> None:
        if self._address is None:
            return
        try:  # a socket per message, as sd_notify(3) does: they are few
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            if not self._failed:  # said once: the service runs on without systemd hearing
                self._failed = True
                log.warning("systemd.notify_failed", error=exc.strerror or str(exc))


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """The watchdog's time, when it is meant for this process."""
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000
