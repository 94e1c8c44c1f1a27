"""The state file: outcomes recorded in batches; what is known of one person, read narrowly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import structlog

from connector.errors import ConfigError
from connector.planning.objects import DesiredUser
from connector.state.store import StateStore
from tests.support.state_versions import V1_SCHEMA


def committed_users(path: Path) -> int:
    """What another process reading the file would see."""
    reader = sqlite3.connect(path)
    try:
        return int(reader.execute("SELECT count(*) FROM users").fetchone()[0])
    finally:
        reader.close()


def record(state: StateStore, number: int) -> None:
    state.target("t").record_user(
        f"user-{number}", f"vendor-{number}", "created", {"userName": f"u{number}"}
    )


def test_a_batch_commits_every_so_many_changes_and_at_its_end(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    state = StateStore.open(path)
    with state.batch(max_changes=3, max_seconds=3600):
        for number in range(2):
            record(state, number)
        assert committed_users(path) == 0  # not yet: the batch is still open
        record(state, 2)
        assert committed_users(path) == 3  # the third change committed the group
        record(state, 3)
        assert committed_users(path) == 3
    assert committed_users(path) == 4
    state.close()


def test_a_failed_change_inside_a_batch_is_undone_alone(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    state = StateStore.open(path)
    with state.batch(max_changes=100):
        record(state, 1)
        with pytest.raises(RuntimeError), state.transaction():
            state._db.execute("DELETE FROM users")
            raise RuntimeError("this change fails half-way")
        record(state, 2)
    assert state.target("t").load_known().users.keys() == {"user-1", "user-2"}
    state.close()


def test_what_was_recorded_before_an_error_is_kept(tmp_path: Path) -> None:
    # The vendor already holds what was recorded: an error after it must not roll it back.
    path = tmp_path / "state.db"
    state = StateStore.open(path)
    with pytest.raises(KeyboardInterrupt), state.batch(max_changes=100):
        record(state, 1)
        raise KeyboardInterrupt
    assert committed_users(path) == 1
    state.close()


def test_known_for_a_few_users_reads_them_and_only_their_memberships(tmp_path: Path) -> None:
    state = StateStore.open(tmp_path / "state.db")
    for number in range(5):
        record(state, number)
    state.target("t").record_user(
        "left", "vendor-left", "created", {"userName": "Åsa.Öberg@Skola.se"}
    )
    state.target("t").record_group("A", "g-a", "created", {"displayName": "A"})
    state.target("t").record_group("B", "g-b", "created", {"displayName": "B"})
    state.target("t").add_memberships("A", ["user-0", "user-1", "left"])
    state.target("t").add_memberships("B", ["user-1", "user-2"])

    known = state.target("t").load_known_for(["user-1", "no-such-user"], named="åsa.öberg@skola.SE")

    everything = state.target("t").load_known()
    assert known.users.keys() == {"user-1", "left"}  # by id, and by name case-insensitively
    assert known.users["left"] == everything.users["left"]
    assert known.groups.keys() == {"A", "B"}
    assert known.groups["A"].members == {"user-1", "left"}
    assert known.groups["B"].members == {"user-1"}
    state.close()


def test_an_existing_state_file_open_to_others_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore.open(path).close()
    path.chmod(0o666)

    with structlog.testing.capture_logs() as logs:
        StateStore.open(path).close()

    assert path.stat().st_mode & 0o777 == 0o600
    (event,) = [e for e in logs if e["event"] == "state.permissions_tightened"]
    assert (event["mode_before"], event["mode_now"]) == ("666", "600")


def test_a_state_file_in_a_folder_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as refused:
        StateStore.open(tmp_path / "no-such-folder" / "state.db")
    assert refused.value.exit_code == 2
    assert "state.path" in str(refused.value) and "does not exist" in str(refused.value)
    assert not (tmp_path / "no-such-folder").exists()


def version_1_file(path: Path) -> Path:
    db = sqlite3.connect(path)
    db.executescript(V1_SCHEMA)
    db.close()
    return path


def test_a_version_1_file_is_migrated_to_the_default_target(tmp_path: Path) -> None:
    path = version_1_file(tmp_path / "state.db")

    state = StateStore.open(path)
    target = state.target("default")

    known = target.load_known()
    assert known.users["u1"].vendor_id == "v1" and known.users["u1"].version == 'W/"1"'
    assert known.groups["11111111"].members == {"u1"}
    assert target.intents() == {"u2": "user"}
    assert target.failure_keys() == {"update_user:u1"}
    held = target.held_plan()
    assert held is not None and held.run_id == "r1" and held.reasons == ["threshold"]
    assert target.failing_cycles() == 2
    assert target.last_full_reconcile() is not None
    assert state.source_counts() == {"students": 41}  # shared by every target: kept as it was
    assert [r.run_id for r in target.last_runs()] == ["r1"]
    assert state.target("other").load_known().users == {}
    state.close()
    reopened = StateStore.open(path)  # migrated once: opening again changes nothing
    assert reopened.target("default").load_known().users.keys() == {"u1"}
    reopened.close()


def test_a_version_1_file_is_read_without_being_changed(tmp_path: Path) -> None:
    path = version_1_file(tmp_path / "state.db")
    before = path.read_bytes()

    state = StateStore.open_readonly(path)

    assert state is not None
    assert state.target("default").load_known().users.keys() == {"u1"}
    state.close()
    assert path.read_bytes() == before


def test_a_version_3_file_gets_the_approvals_and_history_tables(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore.open(path).close()
    with sqlite3.connect(path) as db:  # as a version-3 connector left it
        db.execute("DROP TABLE approvals")
        db.execute("DROP TABLE history")
        db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
        db.execute(
            "INSERT INTO runs (run_id, target, command, started_at) VALUES ('r1', 'ilt', 'run', 't')"
        )

    StateStore.open(path).close()

    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert {"approvals", "history"} <= tables
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "4",
        )
        assert db.execute("SELECT run_id FROM runs").fetchall() == [("r1",)]


def test_a_user_recorded_as_wanted_shares_the_wanted_attributes_and_others_keep_theirs(
    tmp_path: Path,
) -> None:
    state = StateStore.open(tmp_path / "state.db")
    target = state.target("t")
    same = {"userName": "asa@skola.se", "active": True, "name.givenName": "Åsa"}
    recorded = {"userName": "bo@skola.se", "active": True, "name.givenName": "Bo"}
    target.record_user("u1", "v1", "created", dict(same))
    target.record_user("u2", "v2", "created", recorded)
    wanted = {
        "u1": DesiredUser("u1", same),
        "u2": DesiredUser("u2", {**recorded, "name.givenName": "Bosse"}),
    }

    known = target.load_known(wanted)

    assert known.users["u1"].attributes is same  # one dict, not a copy per user
    assert known.users["u2"].attributes == recorded  # what was sent, not what is wanted
    assert known.users["u2"].attributes is not wanted["u2"].attributes
    assert target.load_known().users["u1"].attributes == same
    state.close()
