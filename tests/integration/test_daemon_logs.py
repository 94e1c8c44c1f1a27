"""`connector run` as a real subprocess: what it writes (every line JSON, the scheduler's
records included), how it refuses a busy health port, and its systemd notifications."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connector.demo.localscim import LocalScimServer
from tests.fakes.faultproxy import FaultProxy
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
