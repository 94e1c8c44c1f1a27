"""The systemd notify protocol, against a real AF_UNIX datagram socket."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.service.systemd import (
    STUCK_CYCLE_SECONDS,
    SystemdNotifier,
    cycle_hung,
    socket_address,
)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = Path("/tmp") / f"notify-{uuid.uuid4().hex[:10]}"  # AF_UNIX paths are short
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()
    path.unlink()


def received(sock: socket.socket) -> list[str]:
    messages = []
    sock.setblocking(False)
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except BlockingIOError:
        pass
    finally:
        sock.settimeout(2)
    return messages


def test_ready_status_watchdog_and_stopping_reach_the_socket(
    listener: tuple[str, socket.socket],
) -> None:
    path, sock = listener
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "10000000"})
    assert notifier.enabled and notifier.watchdog_seconds == 10.0
    notifier.ready("started")
    notifier.keepalive(healthy=True)
    notifier.keepalive(healthy=True)  # within half the watchdog time: no second ping
    notifier.status("idle; next cycle at 23:10 (Europe/Stockholm)")
    notifier.stopping()
    assert received(sock) == [
        f"READY=1\nSTATUS=started\nMAINPID={os.getpid()}",
        "WATCHDOG=1",
        "STATUS=idle; next cycle at 23:10 (Europe/Stockholm)",
        "STOPPING=1\nSTATUS=stopping",
    ]


def test_an_unhealthy_daemon_sends_no_ping(listener: tuple[str, socket.socket]) -> None:
    path, sock = listener
    notifier = SystemdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    notifier.keepalive(healthy=False)
    assert received(sock) == []
    notifier.keepalive(healthy=True)
    assert received(sock) == ["WATCHDOG=1"]


def test_an_abstract_socket_is_named_with_at() -> None:
    name = f"@connector-test-{uuid.uuid4().hex[:10]}"
    assert socket_address(name) == "\0" + name[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(socket_address(name))
        sock.settimeout(2)
        SystemdNotifier({"NOTIFY_SOCKET": name}).status("cycle running")
        assert sock.recv(4096) == b"STATUS=cycle running"


def test_without_systemd_nothing_is_sent_and_a_foreign_watchdog_is_ignored() -> None:
    quiet = SystemdNotifier({})
    assert not quiet.enabled and quiet.watchdog_seconds is None
    quiet.ready("started")
    quiet.keepalive(healthy=True)
    other = SystemdNotifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_seconds is None
    assert SystemdNotifier({"WATCHDOG_USEC": "0"}).watchdog_seconds is None


def test_a_socket_gone_away_is_no_crash(tmp_path: Path) -> None:
    notifier = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone")})
    notifier.ready("started")
    notifier.status("still running")


def test_only_a_cycle_running_far_too_long_counts_as_hung() -> None:
    assert not cycle_hung(None)
    assert not cycle_hung(100.0, now=100.0 + 3600)
    assert cycle_hung(100.0, now=100.0 + STUCK_CYCLE_SECONDS)
