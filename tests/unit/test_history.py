"""The history (state/history.py), the lookup of a ref (people/lookup.py) and the file target's
row changes, on a real state file: what is written, how it is found, what it keeps."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connector.config import ExternalIdConfig
from connector.people.externalid import ExternalIdMaker
from connector.people.lookup import (
    keyed_external_ids,
    looks_like_ref,
    matches,
    person_external_ids,
    refers_to,
)
from connector.people.model import Kind, Person
from connector.planning.plan import Operation
from connector.reports.history import find
from connector.state.history import Change
from connector.state.store import StateStore
from connector.targets.file.audit import changed_columns

IDS = ExternalIdMaker(ExternalIdConfig(key="unit-test-key"))
ERIK = Person("E2", Kind.STUDENT, "Erik", "Lind", "erik@skola.se", None, False, join_key="J2")
EXT = "3acec7585378e1f0aa11bb22cc33dd44"


@pytest.fixture
def state(tmp_path: Path) -> StateStore:
    return StateStore.open(tmp_path / "state.db")


def rows(path: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(path) as db:
        return list(db.execute("SELECT external_id, op, attributes, run_id FROM history"))


def test_rows_inside_a_batch_commit_with_the_change_after_them(state: StateStore) -> None:
    tstate = state.target("t")
    tstate.history.begin("run-1")
    with state.batch(max_changes=2, max_seconds=3600):
        tstate.history.record([Change("u1", "create", ("userName", "active"))])
        assert rows(state.path) == []  # written with the change it describes
        tstate.record_user("u1", "v1", "created", {"userName": "a"})
        tstate.history.record([Change("u2", "create")])
        tstate.record_user("u2", "v2", "created", {"userName": "b"})
        assert len(rows(state.path)) == 2
    tstate.history.record([Change("u1", "update", ("name.familyName",))])  # outside: its own
    assert rows(state.path)[-1] == ("u1", "update", '["name.familyName"]', "run-1")


def test_an_approval_marks_only_the_steps_it_released(state: StateStore) -> None:
    history = state.target("t").history
    history.begin("run-2", "ap-1", frozenset({"deactivate_user:u1", "remove_members:g1:u1"}))
    removal = Operation("remove_members", "g1", members=("u1", "u2"))
    assert history.approval_for(removal, "u1") == "ap-1"
    assert history.approval_for(removal, "u2") is None
    assert history.approval_for(Operation("deactivate_user", "u1")) == "ap-1"
    assert history.approval_for(Operation("deactivate_user", "u2")) is None
    history.begin("run-3")  # the next run, without an approval
    assert history.approval_for(Operation("deactivate_user", "u1")) is None


def test_a_protected_persons_rows_are_dropped_and_a_rekeyed_accounts_follow_it(
    state: StateStore,
) -> None:
    tstate = state.target("t")
    tstate.record_user("old", "v1", "created", {"userName": "a"})
    tstate.history.record([Change("old", "create"), Change("other", "create")])
    tstate.rekey_user("old", "new", "v1", {"userName": "a"})
    assert [r[0] for r in rows(state.path)] == ["new", "other"]
    tstate.history.drop({"new"})
    assert [r[0] for r in rows(state.path)] == ["other"]


def test_retention_deletes_only_rows_older_than_the_days_kept(state: StateStore) -> None:
    now = datetime(2025, 6, 1, 12, tzinfo=UTC)
    with state.transaction():
        for days, ext in ((401, "old"), (399, "recent")):
            at = (now - timedelta(days=days)).isoformat(timespec="seconds")
            state._db.execute(
                "INSERT INTO history VALUES ('t', ?, ?, 'update', '[]', 'applied', 'r', NULL)",
                (ext, at),
            )
    assert state.history.prune(400, now) == 1
    assert [r[0] for r in rows(state.path)] == ["recent"]
    assert state.history.prune(400, now) == 0


def test_a_ref_finds_users_groups_and_gone_objects_and_says_when_it_is_ambiguous(
    state: StateStore,
) -> None:
    tstate = state.target("t")
    tstate.record_user(EXT, "v1", "created", {"userName": "erik@skola.se"})
    state.target("u").history.record([Change(EXT, "create")])
    tstate.history.record([Change("3acec7585378ffff", "delete")])
    one = find(state.history, EXT[:16])
    assert [(o.target, o.kind) for o in one.objects] == [("t", "user"), ("u", "gone")]
    assert not one.ambiguous
    assert find(state.history, EXT[:12].upper()).ambiguous
    assert find(state.history, EXT[:11]).objects == []  # too short to be a ref
    assert [(o.target, o.kind) for o in find(state.history, "ERIK@skola.se").objects] == [
        ("t", "user")
    ]
    keyed = find(state.history, "E2", lambda key: frozenset({EXT} if key == "E2" else ()))
    assert {o.external_id for o in keyed.objects} == {EXT}


def test_a_generated_username_finds_a_persons_history_after_the_account_is_gone(
    state: StateStore,
) -> None:
    from connector.mapping.usernames import AssignedName

    tstate = state.target("t")
    tstate.assign_username(EXT, AssignedName("erik.lind@elev.se", "erik.lind"))
    tstate.history.record([Change(EXT, "delete")])
    assert [(o.kind, o.external_id) for o in find(state.history, "Erik.Lind@elev.se").objects] == [
        ("gone", EXT)
    ]


def test_a_ref_is_hexadecimal_and_at_least_twelve_characters() -> None:
    assert looks_like_ref("3acec7585378") and looks_like_ref("3ACEC7585378E1")
    assert not looks_like_ref("3acec758537") and not looks_like_ref("erik@skola.se1")
    assert refers_to("3ACEC7585378", EXT) and refers_to(EXT, EXT)
    assert not refers_to("3acec7585379", EXT)


def test_a_person_matches_the_ref_of_their_own_or_their_joined_externalid() -> None:
    own, joined = (
        IDS.for_person(ERIK),
        IDS.for_person(Person("join:J2", Kind.STUDENT, "", "", None, None, False)),
    )
    assert person_external_ids(ERIK, IDS) == {own, joined}
    assert matches(ERIK, own[:12], IDS) and matches(ERIK, joined[:14].upper(), IDS)
    assert not matches(ERIK, own[:12])  # without the key, a ref is no key of theirs
    other = Person("E3", Kind.STUDENT, "Märta", "Ström", None, None, False)
    assert not matches(other, own[:12], IDS)
    assert own in keyed_external_ids("E2", IDS)
    assert joined in keyed_external_ids("J2", IDS)


def test_the_columns_changed_between_a_persons_old_and_new_rows() -> None:
    columns = ["user", "school", "class"]
    old = [["erik", "A", "7A"]]
    assert changed_columns(old, [["erik", "B", "7A"]], columns) == ("school",)
    assert changed_columns(old, [["erik", "A", "7A"], ["erik", "B", "7B"]], columns) == (
        "school",
        "class",
        "rows",
    )
    assert changed_columns([], old, columns) == ("user", "school", "class")
    assert changed_columns(old, [], columns) == ()
