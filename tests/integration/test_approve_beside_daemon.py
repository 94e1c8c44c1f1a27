"""`approve`, `sync --only` and `explain` beside a running `connector run`: the approval is
recorded in the state file with who, the daemon applies it (at once when it can be signalled,
else in its next scheduled cycle), and `status` shows it."""

from __future__ import annotations

import signal
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from connector.demo.localscim import LocalScimServer
from connector.state.store import Approval, StateStore
from tests.fakes.faultproxy import FaultProxy, request_match
from tests.support.cli import run_module
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.workspace import Workspace

A, B = "11111111", "22222222"
ENV = {"TEST_SCIM_TOKEN": SCIM_TOKEN}
PROTECTED_EMAIL = "hemlig.skyddadsson@edu.example.se"


def roster(count: int) -> list[list[str]]:
    return [student(f"E{i}", f"Elev{i}", "Ek", A if i % 2 else B) for i in range(count)]


def active(peek: ScimPeek) -> int:
    return sum(1 for user in peek.list("Users") if user.get("active"))


def approvals(workspace: Workspace) -> list[Approval]:
    state = StateStore.open_readonly(workspace.state_path)
    assert state is not None
    try:
        return state.approvals(settled=50)
    finally:
        state.close()


def held_by_daemon(daemon: DaemonProcess) -> bool:
    return any(
        e["event"] == "sync.finished" and e.get("outcome") == "held" for e in daemon.events()
    )


def cli(workspace: Workspace, *args: str) -> tuple[int, str, str]:
    """The command as its own process, as an operator runs it beside the service."""
    done = run_module("--config", str(workspace.config_path), *args, env=ENV, timeout=120)
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def shrunk(tmp_path: Path, scim_url: str, peek: ScimPeek) -> Iterator[Workspace]:
    """20 students synced, then 8 of them gone: a threshold holds their deactivation. The
    daemon's interval is long, so only a signal (or a changed interval) starts a cycle."""
    workspace = Workspace(tmp_path, scim_url)
    workspace.overrides["safety"] = {
        "min_source_percent": 0,
        "max_deactivations": {"count": 2, "percent": 10},
    }
    workspace.overrides["daemon"] = {"interval_seconds": 600, "shutdown_timeout_seconds": 10}
    workspace.students(roster(20))
    assert workspace.sync().exit_code == 0
    assert active(peek) == 20
    workspace.students(roster(12))
    workspace.write_config()
    yield workspace


def start(workspace: Workspace) -> DaemonProcess:
    daemon = DaemonProcess(workspace, ENV)
    wait_for(lambda: held_by_daemon(daemon), what="the daemon's first cycle to hold the plan")
    return daemon


def test_approve_beside_the_daemon_is_applied_at_once_and_recorded_with_who(
    shrunk: Workspace, peek: ScimPeek
) -> None:
    daemon = start(shrunk)
    try:
        code, out, err = cli(shrunk, "approve", "--yes", "--by", "alice")

        assert code == 0, out + err
        assert "deactivate user" in out  # the held plan, shown as ever
        assert "Approved by alice" in out and "was woken" in out
        # The interval is 600 s: only the signal can have brought this cycle about.
        wait_for(lambda: active(peek) == 12, what="the approved deactivations")
        wait_for(lambda: approvals(shrunk)[0].status == "applied", what="applied")
        (approval,) = approvals(shrunk)
        assert (approval.requested_by, approval.target) == ("alice", "default")
        assert len(approval.keys) >= 8  # 8 deactivations and their membership removals
        finished = [e for e in daemon.events() if e["event"] == "sync.finished"]
        assert approval.applied_run_id == finished[-1]["run_id"]
        assert finished[-1]["outcome"] == "success"
        assert daemon.count("daemon.woken") == 1

        # Approving again finds nothing held.
        code, out, _ = cli(shrunk, "approve", "--yes", "--by", "alice")
        assert (code, out.strip()) == (0, "Nothing is held back.")
        status = cli(shrunk, "status")[1]
        assert "Approvals:" in status
        assert "applied" in status and "alice" in status and approval.id in status
    finally:
        assert daemon.stop() == 0
    assert len(approvals(shrunk)) == 1
    assert "alice" not in daemon.log_path.read_text(encoding="utf-8")  # who: state, not logs


def test_without_a_signal_the_approval_waits_for_the_next_scheduled_cycle(
    shrunk: Workspace, peek: ScimPeek, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon runs as another user (the approving process may not signal it)."""

    def refuse(_pid: int, _signal: int) -> None:
        raise PermissionError("Operation not permitted")

    daemon = start(shrunk)
    try:
        monkeypatch.setattr("connector.service.ondemand.send_signal", refuse)
        first = shrunk.run("approve", "--yes", "--by", "alice")
        assert first.exit_code == 0, first.stdout + first.stderr
        assert "Could not wake the daemon (not permitted" in first.stdout
        assert "applies the approval in its next cycle, due at" in first.stdout

        second = shrunk.run("approve", "--yes", "--by", "bob")  # approving twice
        assert second.exit_code == 0
        assert "already approved by alice" in second.stdout
        (pending,) = approvals(shrunk)
        assert (pending.status, pending.requested_by) == ("pending", "alice")
        assert "PENDING" in shrunk.run("status").stdout
        assert active(peek) == 20

        # The next scheduled cycle (brought forward by a shorter interval) applies it.
        config = yaml.safe_load(shrunk.config_path.read_text(encoding="utf-8"))
        config["daemon"]["interval_seconds"] = 1
        shrunk.config_path.write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
        wait_for(lambda: active(peek) == 12, what="the approval in a scheduled cycle")
        wait_for(lambda: approvals(shrunk)[0].status == "applied", what="applied")
        assert daemon.count("daemon.woken") == 0
    finally:
        assert daemon.stop() == 0
    assert len(approvals(shrunk)) == 1


def test_an_approval_expires_when_what_it_approved_is_no_longer_to_be_done(
    shrunk: Workspace, peek: ScimPeek, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = start(shrunk)
    try:
        monkeypatch.setattr("connector.service.ondemand.send_signal", lambda *_: None)  # lost
        assert shrunk.run("approve", "--yes", "--by", "alice").exit_code == 0
        shrunk.students(roster(20))  # the export was only truncated: everyone is back

        daemon.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: approvals(shrunk)[0].status == "expired", what="the approval expired")
        assert active(peek) == 20  # nobody deactivated by the stale approval
        expired = [e for e in daemon.events() if e["event"] == "approval.expired"]
        assert expired[-1]["reason"] == "none of the steps it approved was still to be done"
        assert "expired" in shrunk.run("status").stdout
    finally:
        assert daemon.stop() == 0


def test_approve_without_a_daemon_runs_the_cycle_and_records_who(
    shrunk: Workspace, peek: ScimPeek
) -> None:
    assert shrunk.sync().exit_code == 3

    approved = shrunk.run("approve", "--yes", "--by", "bob")

    assert approved.exit_code == 0, approved.stdout + approved.stderr
    assert active(peek) == 12
    (approval,) = approvals(shrunk)
    assert (approval.status, approval.requested_by) == ("applied", "bob")
    assert approval.applied_run_id == approved.event("sync.finished")["run_id"]
    assert approved.event("approval.applied")["approval_id"] == approval.id


def test_nothing_held_beside_the_daemon_records_nothing(
    tmp_path: Path, scim_url: str, peek: ScimPeek
) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.overrides["daemon"] = {"interval_seconds": 600}
    workspace.students(roster(4))
    workspace.write_config()
    daemon = DaemonProcess(workspace, ENV)
    try:
        wait_for(lambda: daemon.count("sync.finished") >= 1, what="the first cycle")
        code, out, _ = cli(workspace, "approve", "--yes", "--by", "alice")
        assert (code, out.strip()) == (0, "Nothing is held back.")
        assert approvals(workspace) == []
    finally:
        assert daemon.stop() == 0


def test_sync_only_and_explain_beside_the_daemon(
    tmp_path: Path, scim_url: str, peek: ScimPeek
) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.overrides["daemon"] = {"interval_seconds": 600, "shutdown_timeout_seconds": 10}
    hidden = student("E666", "Hemlig", "Skyddadsson", A, marking="Ja", email=PROTECTED_EMAIL)
    workspace.students([*roster(4), hidden])
    workspace.write_config()
    daemon = DaemonProcess(workspace, ENV)
    try:
        wait_for(lambda: len(peek.users()) == 4, what="the first cycle")
        versions = {name: u["meta"]["version"] for name, u in peek.users().items()}
        rows = roster(4)
        rows[1] = student("E1", "Elev1", "Ekström", A)  # asked for
        rows[2] = student("E2", "Elev2", "Berg", B)  # not asked for
        workspace.students([*rows, hidden])

        code, out, err = cli(workspace, "sync", "--only", "E1")

        assert code == 0, out + err
        assert "users updated        1" in out
        users = peek.users()
        assert users["e1@edu.example.se"]["name"]["familyName"] == "Ekström"
        assert users["e2@edu.example.se"]["meta"]["version"] == versions["e2@edu.example.se"]
        assert daemon.count("request.served") == 1

        # A protected person asked for: nothing about them reaches the vendor or stays behind.
        code, out, err = cli(workspace, "sync", "--only", PROTECTED_EMAIL)
        assert code == 0, out + err
        assert "left out (protected identity): 1" in out
        assert PROTECTED_EMAIL not in peek.users()
        assert daemon.count("request.served") == 2

        code, out, err = cli(workspace, "explain", "E2")  # needs no lock
        assert code == 0, out + err
        assert "in scope: yes" in out and "name.familyName: Berg" in out
        assert "(created by the connector, active)" in out  # read from the daemon's state
        code, out, _ = cli(workspace, "explain", PROTECTED_EMAIL)
        assert "excluded (protected identity)" in out and "Skyddadsson" not in out
    finally:
        assert daemon.stop() == 0
    files = [workspace.state_path, workspace.state_path.with_name("state.db-wal")]
    for file in files:
        if file.exists():
            assert b"Hemlig" not in file.read_bytes()
            assert PROTECTED_EMAIL.encode() not in file.read_bytes()
    with sqlite3.connect(workspace.state_path) as db:
        assert db.execute("SELECT count(*) FROM requests").fetchone()[0] == 0
    log = daemon.log_path.read_text(encoding="utf-8")
    assert "Hemlig" not in log and PROTECTED_EMAIL not in log


def test_sync_only_beside_a_daemon_that_never_answers_is_withdrawn(
    tmp_path: Path, scim_url: str, peek: ScimPeek, monkeypatch: pytest.MonkeyPatch
) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.overrides["daemon"] = {"interval_seconds": 600, "shutdown_timeout_seconds": 10}
    workspace.students(roster(4))
    workspace.write_config()
    daemon = DaemonProcess(workspace, ENV)
    try:
        wait_for(lambda: len(peek.users()) == 4, what="the first cycle")
        monkeypatch.setattr("connector.service.ondemand.send_signal", lambda *_: None)  # lost

        result = workspace.run("sync", "--only", "E1", "--timeout", "1")

        assert result.exit_code == 1
        assert "did not take the request within 1 s" in result.stderr
        assert "withdrawn" in result.stderr
        daemon.process.send_signal(signal.SIGUSR1)  # too late: there is nothing to serve
        wait_for(lambda: daemon.count("daemon.woken") == 1, what="the wake")
    finally:
        assert daemon.stop() == 0
    assert daemon.count("request.served") == 0


def test_a_command_writes_the_state_while_the_daemon_waits_on_a_slow_vendor(
    tmp_path: Path, scim_server: LocalScimServer
) -> None:
    """The daemon records its changes in batched transactions; it must not hold the write lock
    while a vendor request hangs, or a command beside it fails with "database is locked"."""
    with FaultProxy(scim_server.root) as proxy:
        url = proxy.url_for(scim_server.tenant_url("t" + uuid.uuid4().hex[:12]))
        workspace = Workspace(tmp_path, url)
        workspace.overrides["vendor"] = {**workspace.config()["vendor"], "concurrency": 1}
        workspace.overrides["daemon"] = {"interval_seconds": 600, "shutdown_timeout_seconds": 10}
        workspace.students(roster(6))
        workspace.write_config()
        written: list[object] = []

        def write_meanwhile() -> None:
            """Runs while the vendor's answer to the 4th create is held back."""
            time.sleep(0.5)  # the daemon has recorded the first three creates meanwhile
            state = StateStore.open(workspace.state_path)
            try:
                approval = state.target("default").record_approval("probe", frozenset(), "x")
                written.append(approval.id)
            except sqlite3.OperationalError as exc:
                written.append(exc)
            finally:
                state.close()

        proxy.on_forwarded(4, write_meanwhile, match=request_match("POST", "/Users", None))
        daemon = DaemonProcess(workspace, ENV)
        try:
            with ScimPeek(url) as peek:
                wait_for(lambda: len(peek.users()) == 6, what="the first cycle")
        finally:
            assert daemon.stop() == 0
    assert len(written) == 1 and isinstance(written[0], str), written
