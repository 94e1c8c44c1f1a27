"""Approvals and requests in the state file, and when a cycle takes, applies or expires an
approval; a batch that never keeps others from writing while it waits."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connector.cli.beside import covered_by, operator
from connector.cycle.approvals import APPROVAL_MAX_AGE, expiry_reason, take_approvals
from connector.planning.guard import approval_keys
from connector.planning.held import HeldPlan
from connector.planning.plan import Operation, Plan
from connector.state.approvals import Approval
from connector.state.store import StateStore


def held(*users: str) -> HeldPlan:
    ops = [Operation("deactivate_user", user, reason="left") for user in users]
    return HeldPlan("run-1", "2024-05-01T10:00:00+00:00", ["threshold"], Plan(ops))


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore.open(tmp_path / "state.db")
    yield store
    store.close()


def test_an_approval_is_recorded_pending_and_settled_once(state: StateStore) -> None:
    plan = held("u1", "u2")
    target = state.target("t")
    approval = target.record_approval(plan.run_id, approval_keys(plan.plan), "alice")

    assert [a.id for a in target.pending_approvals()] == [approval.id]
    assert state.target("other").pending_approvals() == []
    target.settle_approvals([approval.id], "applied", "run-2")
    target.settle_approvals([approval.id], "expired")  # settled already: stays applied

    (settled,) = state.approvals()
    assert (settled.status, settled.applied_run_id, settled.requested_by) == (
        "applied",
        "run-2",
        "alice",
    )
    assert settled.keys == {"deactivate_user:u1", "deactivate_user:u2"}
    assert settled.applied_at is not None
    assert state.pending_approvals() == []


def test_an_approval_expires_when_too_old_or_nothing_it_approved_is_held() -> None:
    plan = held("u1", "u2")
    now = datetime(2024, 5, 2, 9, 0, tzinfo=UTC)
    recent = (now - timedelta(hours=1)).isoformat()
    old = (now - APPROVAL_MAX_AGE - timedelta(minutes=1)).isoformat()

    def approval(at: str, *keys: str) -> Approval:
        return Approval("a", "t", "run-1", frozenset(keys), "alice", at, "pending")

    assert expiry_reason(approval(recent, "deactivate_user:u1"), plan, now) is None
    assert expiry_reason(approval(old, "deactivate_user:u1"), plan, now) == (
        "not applied within 24 hours"
    )
    gone = "nothing it approved is held back any more"
    assert expiry_reason(approval(recent, "deactivate_user:u9"), plan, now) == gone
    assert expiry_reason(approval(recent, "deactivate_user:u1"), None, now) == gone


def test_a_cycle_takes_the_pending_approvals_and_expires_the_stale_ones(
    state: StateStore,
) -> None:
    target = state.target("t")
    plan = held("u1", "u2", "u3")
    target.set_held_plan(plan)
    first = target.record_approval("run-1", frozenset({"deactivate_user:u1"}), "alice")
    second = target.record_approval("run-1", frozenset({"deactivate_user:u2"}), "bob")
    stale = target.record_approval("run-0", frozenset({"deactivate_user:u3"}), "carl")
    state._db.execute(
        "UPDATE approvals SET requested_at = '2000-01-01T00:00:00+00:00' WHERE id = ?",
        (stale.id,),
    )

    taken = take_approvals(state, ["t"])

    assert taken.approved == {"t": frozenset({"deactivate_user:u1", "deactivate_user:u2"})}
    assert taken.taken == {"t": [first.id, second.id]}
    assert taken.approval_ids == {"t": second.id}  # the newest
    statuses = {a.id: a.status for a in state.approvals()}
    assert statuses == {first.id: "pending", second.id: "pending", stale.id: "expired"}


def test_a_pending_approval_covering_the_whole_held_plan_is_not_recorded_twice(
    state: StateStore,
) -> None:
    plan = held("u1", "u2")
    target = state.target("t")
    partial = target.record_approval("run-0", frozenset({"deactivate_user:u1"}), "alice")
    assert covered_by([partial], plan) is None
    whole = target.record_approval("run-1", approval_keys(plan.plan), "alice")
    assert covered_by(target.pending_approvals(), plan) == whole


def test_who_approves_is_by_or_the_sudo_user_or_the_os_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert operator("alice") == "alice"
    monkeypatch.setenv("SUDO_USER", "bob")
    monkeypatch.setattr("connector.cli.beside.os.geteuid", lambda: 0)
    assert operator(None) == "bob"
    monkeypatch.setattr("connector.cli.beside.os.geteuid", lambda: 1000)
    monkeypatch.setattr("connector.cli.beside.getpass.getuser", lambda: "carl")
    assert operator(None) == "carl"


def test_a_request_keeps_what_was_typed_only_until_the_daemon_takes_it(
    state: StateStore,
) -> None:
    requests = state.requests()
    ident = requests.add_sync_only("erik.lind@example.se", ("t",), allow_deprovision=False)
    assert requests.result(ident).status == "pending"  # type: ignore[union-attr]

    (taken,) = requests.take()

    assert (taken.query, taken.targets, taken.allow_deprovision) == (
        "erik.lind@example.se",
        ("t",),
        False,
    )
    row = state._db.execute("SELECT query, status FROM requests").fetchone()
    assert row == (None, "running")
    assert requests.take() == []
    assert not requests.withdraw(ident)  # taken: no longer to be withdrawn
    requests.finish(ident, 0, "Sync r1: success")
    result = requests.result(ident)
    assert result is not None and (result.exit_code, result.text) == (0, "Sync r1: success")
    requests.delete(ident)
    assert requests.result(ident) is None


def test_requests_nobody_collected_are_forgotten(state: StateStore) -> None:
    requests = state.requests()
    waiting = requests.add_sync_only("E1", (), allow_deprovision=False)
    assert requests.withdraw(waiting)
    old = requests.add_sync_only("E2", (), allow_deprovision=False)
    requests.forget_stale(datetime.now(UTC) + timedelta(hours=2))
    assert requests.result(old) is None


def test_a_batch_lets_others_write_between_its_changes_once_flushed(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    state = StateStore.open(path)
    other = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        with state.batch():
            state.target("t").record_user("u1", "v1", "created", {"userName": "u1"})
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
            state.flush()  # what the applier does before waiting on a slow vendor
            other.execute("BEGIN IMMEDIATE")
            other.execute("INSERT INTO meta (key, value) VALUES ('other', 'x')")
            other.execute("COMMIT")
            state.target("t").record_user("u2", "v2", "created", {"userName": "u2"})
        assert other.execute("SELECT count(*) FROM users").fetchone()[0] == 2
    finally:
        other.close()
        state.close()
