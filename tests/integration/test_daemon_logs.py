"""`connector run` as a real subprocess: what it writes (every line JSON, the scheduler's
records included), how it refuses a busy health port, and its systemd notifications."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.demo.localscim import LocalScimServer, free_port
from tests.fakes.faultproxy import FaultProxy
from tests.support.cli import run_module
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN
from tests.support.workspace import Workspace

A = "11111111"


@pytest.fixture
def slow_vendor(scim_server: LocalScimServer) -> Iterator[FaultProxy]:
    """The SCIM server behind a proxy that holds its first answer for a few seconds."""
    with FaultProxy(scim_server.root) as proxy:
        proxy.on_forwarded(1, lambda: threading.Event().wait(3.5))
        yield proxy


def test_every_line_is_json_including_the_schedulers_warning(
    tmp_path: Path, scim_url: str, slow_vendor: FaultProxy
) -> None:
    # A cycle that overruns its 1 s interval: APScheduler finds the cycle job still running
    # when it is due again and warns (in its own words, through the standard library).
    workspace = Workspace(tmp_path, slow_vendor.url_for(scim_url))
    workspace.students([student("E1", "Åsa", "Öberg", A)])
    workspace.overrides["daemon"] = {"interval_seconds": 1}
    workspace.overrides["vendor"] = {
        "base_url": workspace.scim_url,
        "token": "${TEST_SCIM_TOKEN}",
        "timeout_seconds": 10,
    }
    workspace.write_config()
    daemon = DaemonProcess(workspace, {"TEST_SCIM_TOKEN": SCIM_TOKEN})
    try:
        wait_for(lambda: daemon.count("sync.finished") >= 1, timeout=30, what="a slow cycle")
    finally:
        assert daemon.stop() == 0
    assert daemon.stray_lines() == []  # stdout and stderr: every line is a JSON event
    events = daemon.events()
    skipped = [e for e in events if e["event"] == "scheduler.cycle_skipped"]
    assert skipped, [e["event"] for e in events]
    assert skipped[0]["level"] == "warning"
    assert skipped[0]["job"] == "cycle"
    assert skipped[0]["logger"] == "apscheduler.scheduler"
    # the same timestamps as our own events: UTC, ISO 8601
    ours = next(e for e in events if e["event"] == "daemon.started")
    for event in (skipped[0], ours):
        stamp = datetime.fromisoformat(event["timestamp"])
        assert stamp.utcoffset() is not None and stamp.utcoffset() == UTC.utcoffset(stamp)
    assert skipped[0]["timestamp"].endswith(ours["timestamp"][-1])
    assert SCIM_TOKEN not in daemon.log_path.read_text(encoding="utf-8")


def test_a_health_port_in_use_is_one_error_line_and_exit_2(tmp_path: Path, scim_url: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        workspace = Workspace(tmp_path, scim_url)
        workspace.students([student("E1", "Åsa", "Öberg", A)])
        workspace.overrides["health"] = {"listen": f"127.0.0.1:{port}"}
        workspace.write_config()
        result = run_module(
            "--config", str(workspace.config_path), "run", env=workspace.environment, timeout=60
        )
    assert result.returncode == 2
    assert result.stderr == f"error: health.listen 127.0.0.1:{port}: address already in use\n"
    assert "Traceback" not in result.stdout
    for line in result.stdout.splitlines():
        json.loads(line)


@pytest.fixture
def notify_socket() -> Iterator[tuple[str, socket.socket]]:
    """What systemd listens on: an abstract AF_UNIX datagram socket (`@name`)."""
    name = f"@connector-test-{uuid.uuid4().hex[:12]}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name[1:])
        sock.settimeout(0.2)
        yield name, sock


class Received:
    """The notifications a daemon sent, read as they come."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.messages: list[str] = []

    def poll(self) -> list[str]:
        try:
            while True:
                self.messages.append(self.sock.recv(4096).decode())
        except TimeoutError:
            pass
        return self.messages

    def __call__(self, line: str, times: int = 1) -> bool:
        return sum(m.split("\n").count(line) for m in self.poll()) >= times


def test_systemd_hears_ready_the_watchdog_and_stopping(
    tmp_path: Path, scim_url: str, notify_socket: tuple[str, socket.socket]
) -> None:
    name, sock = notify_socket
    workspace = Workspace(tmp_path, scim_url)
    workspace.students([student("E1", "Åsa", "Öberg", A)])
    workspace.overrides["daemon"] = {"interval_seconds": 600}
    workspace.overrides["health"] = {"listen": f"127.0.0.1:{free_port()}"}
    workspace.write_config()
    received = Received(sock)
    daemon = DaemonProcess(
        workspace,
        {"TEST_SCIM_TOKEN": SCIM_TOKEN, "NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1000000"},
    )
    try:
        wait_for(lambda: received("READY=1"), what="READY=1")
        ready = next(m for m in received.messages if "READY=1" in m.split("\n"))
        assert f"MAINPID={daemon.process.pid}" in ready.split("\n")
        # the health listener is up by then
        assert daemon.count("health.listening") == 1
        wait_for(lambda: received("WATCHDOG=1", times=4), what="repeated WATCHDOG=1")
        wait_for(
            lambda: any(m.startswith("STATUS=idle; next cycle at ") for m in received.poll()),
            what="an idle status",
        )
        assert not received("STOPPING=1")
    finally:
        assert daemon.stop() == 0
    assert received("STOPPING=1")
    assert any(m.startswith("STATUS=cycle running") for m in received.messages)
