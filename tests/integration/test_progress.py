"""A long cycle tells how far it has come (sync.progress, live /metrics, a bar at a terminal),
and one cut short by SIGTERM or Ctrl-C ends `interrupted` - after which the next sync does
the rest, with nothing created twice.

The vendor is the real local SCIM server behind the fault proxy, which injects no faults: it
only holds one create (POST /Users) unanswered until the test lets it go, so the cycle is
surely mid-apply when the test looks at it or sends the signal.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.demo.localscim import LocalScimServer, free_port
from tests.fakes.faultproxy import FaultProxy, request_match
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.paths import REPO
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.workspace import Workspace

STUDENTS = 120
HELD_CREATE = 40  # the create held unanswered: the cycle is surely mid-apply then


def roster() -> list[list[str]]:
    return [
        student(f"E{i:03d}", "Elev", f"Nummer{i}", "11111111" if i % 2 else "22222222")
        for i in range(1, STUDENTS + 1)
    ]


class Hold:
    """A proxy hook that keeps one request unanswered (the server has done it) until released."""

    def __init__(self) -> None:
        self.reached = threading.Event()
        self.release = threading.Event()

    def __call__(self) -> None:
        self.reached.set()
        self.release.wait(30)


@pytest.fixture
def proxy(scim_server: LocalScimServer) -> Iterator[FaultProxy]:
    with FaultProxy(scim_server.root, rates={}) as started:
        yield started


def held_workspace(tmp_path: Path, scim_url: str, proxy: FaultProxy) -> tuple[Workspace, Hold]:
    """A workspace syncing 120 students through the proxy, whose 40th create is held. One
    request at a time: while it is held, nothing else is sent."""
    workspace = Workspace(tmp_path, proxy.url_for(scim_url))
    workspace.students(roster())
    workspace.overrides["vendor"] = {
        **workspace.config()["vendor"],
        "concurrency": 1,
    }
    workspace.overrides["logging"] = {
        "format": "json",
        "level": "info",
        "progress_seconds": 0.001,
    }
    # One cycle only (a second would reset the gauges this test reads).
    workspace.overrides["daemon"] = {"interval_seconds": 3600, "shutdown_timeout_seconds": 20}
    workspace.overrides["health"] = {"listen": f"127.0.0.1:{free_port()}"}
    workspace.write_config()
    hold = Hold()
    proxy.on_forwarded(HELD_CREATE, hold, match=request_match("POST", "/Users"))
    return workspace, hold


def gauges(health: str) -> dict[str, float]:
    """The live cycle gauges of /metrics (target `default`), by metric name."""
    text = httpx.get(f"{health}/metrics").text
    found = re.findall(
        r'^(connector_cycle_operations_(?:planned|done)){target="default"} (\S+)$|'
        r"^(connector_cycle_running) (\S+)$",
        text,
        re.M,
    )
    return {a or c: float(b or d) for a, b, c, d in found}


def events(lines: list[str], name: str) -> list[dict[str, Any]]:
    return [
        e for line in lines if line.startswith("{") and (e := json.loads(line))["event"] == name
    ]


def assert_progress_told(lines: list[str]) -> None:
    """sync.progress came during applying, its done growing and never over planned."""
    applying = [e for e in events(lines, "sync.progress") if e["phase"] == "apply"]
    assert applying, "no sync.progress event while applying"
    done = [e["done"] for e in applying]
    assert done == sorted(done) and done[-1] > done[0]
    assert all(e["done"] <= e["planned"] and e["target"] == "default" for e in applying)
    assert all(set(e) >= {"rate", "eta_seconds", "run_id"} for e in applying)


def assert_one_account_each(scim_url: str) -> None:
    with ScimPeek(scim_url) as peek:
        listed = peek.list("Users")
    assert len(listed) == STUDENTS
    assert max(Counter(u["externalId"] for u in listed).values()) == 1
    assert max(Counter(u["userName"] for u in listed).values()) == 1


def test_sigterm_mid_cycle_ends_it_interrupted_and_the_next_sync_does_the_rest(
    tmp_path: Path, scim_url: str, proxy: FaultProxy
) -> None:
    workspace, hold = held_workspace(tmp_path, scim_url, proxy)
    health = "http://" + workspace.config()["health"]["listen"]
    daemon = DaemonProcess(workspace, {"TEST_SCIM_TOKEN": SCIM_TOKEN})
    try:
        assert hold.reached.wait(60), "the cycle never reached the held create"
        live = gauges(health)
        assert live["connector_cycle_running"] == 1
        assert live["connector_cycle_operations_done"] > 0
        assert live["connector_cycle_operations_done"] < live["connector_cycle_operations_planned"]
        daemon.process.send_signal(signal.SIGTERM)
        wait_for(lambda: daemon.count("daemon.stopping"), what="daemon.stopping")
    finally:
        hold.release.set()
    assert daemon.stop() == 0
    lines = daemon.lines()
    assert_progress_told(lines)
    finished = events(lines, "sync.finished")[-1]
    assert finished["outcome"] == "interrupted"
    assert finished["applied"]["postponed"] > 0
    # The create in flight was answered and recorded; none after it was sent.
    assert finished["applied"]["users_created"] == HELD_CREATE
    assert finished["applied"]["postponed"] == STUDENTS - HELD_CREATE + 2  # + 2 member adds
    assert events(lines, "daemon.stopped")

    status = workspace.run("status")
    assert re.search(r"\brun\s+interrupted\b", status.stdout), status.stdout
    assert "Interrupted in the last run" in status.stdout

    again = workspace.sync()
    assert again.exit_code == 0, again.stdout + again.stderr
    assert again.event("sync.finished")["applied"]["users_created"] == STUDENTS - HELD_CREATE
    assert_one_account_each(scim_url)


def test_progress_and_live_gauges_of_a_whole_cycle(
    tmp_path: Path, scim_url: str, proxy: FaultProxy
) -> None:
    workspace, hold = held_workspace(tmp_path, scim_url, proxy)
    health = "http://" + workspace.config()["health"]["listen"]
    daemon = DaemonProcess(workspace, {"TEST_SCIM_TOKEN": SCIM_TOKEN})
    try:
        assert hold.reached.wait(60), "the cycle never reached the held create"
        assert gauges(health)["connector_cycle_running"] == 1
        hold.release.set()
        wait_for(lambda: daemon.count("sync.finished"), what="the first cycle")
        finished = events(daemon.lines(), "sync.finished")[-1]
        assert finished["outcome"] == "success"
        planned = sum(finished["planned"].values())
        wait_for(lambda: gauges(health)["connector_cycle_running"] == 0, what="the cycle's end")
        live = gauges(health)
        assert live["connector_cycle_operations_planned"] == planned > 2 * STUDENTS
        assert live["connector_cycle_operations_done"] == planned
        assert_progress_told(daemon.lines())
    finally:
        hold.release.set()
        assert daemon.stop() == 0


def test_ctrl_c_stops_a_sync_interrupted_with_exit_4(
    tmp_path: Path, scim_url: str, proxy: FaultProxy
) -> None:
    workspace, hold = held_workspace(tmp_path, scim_url, proxy)
    stderr_path = tmp_path / "stderr.log"
    with stderr_path.open("wb") as stderr:
        sync = subprocess.Popen(
            [sys.executable, "-m", "connector", "--config", str(workspace.config_path), "sync"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=REPO,
            env={**os.environ, "TEST_SCIM_TOKEN": SCIM_TOKEN},
        )
        try:
            assert hold.reached.wait(60), "the sync never reached the held create"
            sync.send_signal(signal.SIGINT)
            wait_for(
                lambda: "sync.stopping" in stderr_path.read_text(encoding="utf-8"),
                what="sync.stopping",
            )
        finally:
            hold.release.set()
            out, _ = sync.communicate(timeout=60)
    assert sync.returncode == 4, out
    assert "INTERRUPTED by a signal" in out.decode()
    lines = stderr_path.read_text(encoding="utf-8").splitlines()
    assert events(lines, "sync.stopping")[0]["signal"] == "SIGINT"
    finished = events(lines, "sync.finished")[-1]
    assert finished["outcome"] == "interrupted"
    assert_progress_told(lines)

    again = workspace.sync()
    assert again.exit_code == 0, again.stdout + again.stderr
    assert_one_account_each(scim_url)


def sync_with_stderr_on_a_terminal(workspace: Workspace) -> tuple[int, str]:
    """`connector sync` with its stderr on a pseudo-terminal (120 columns): exit code, what
    the terminal showed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    shown = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the terminal's other side is closed
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "connector", "--config", str(workspace.config_path), "sync"],
            stdout=subprocess.DEVNULL,
            stderr=slave,
            cwd=REPO,
            env={**os.environ, "TEST_SCIM_TOKEN": SCIM_TOKEN, "TERM": "xterm"},
            timeout=120,
        )
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    return completed.returncode, shown.decode("utf-8", "replace")


BAR = re.compile(r"default: applying:\s+\d+%\|")


def test_a_terminal_gets_a_progress_bar_and_whole_log_lines(tmp_path: Path, scim_url: str) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.students(roster()[:30])
    workspace.write_config()
    code, shown = sync_with_stderr_on_a_terminal(workspace)
    assert code == 0, shown
    assert BAR.search(shown), shown
    # The JSON log lines come out whole, above the bar (which is cleared before each).
    finished = [line for line in shown.split("\n") if '"event": "sync.finished"' in line]
    assert len(finished) == 1
    event = json.loads(finished[0][finished[0].index("{") :])
    assert event["outcome"] == "success"


def test_no_bar_without_a_terminal(tmp_path: Path, scim_url: str) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.students(roster()[:30])
    workspace.write_config()
    completed = subprocess.run(
        [sys.executable, "-m", "connector", "--config", str(workspace.config_path), "sync"],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TEST_SCIM_TOKEN": SCIM_TOKEN},
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    assert not BAR.search(completed.stderr)
    assert "\r" not in completed.stderr
    assert all(json.loads(line) for line in completed.stderr.splitlines())
