"""The state file: outcomes recorded in batches; what is known of one person, read narrowly."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import structlog

from connector.errors import ConfigError
from connector.state.store import StateStore


def committed_users(path: Path) -> int:
    """What another process reading the file would see."""
    reader = sqlite3.connect(path)
    try:
        return int(reader.execute("SELECT count(*) FROM users").fetchone()[0])
    finally:
        reader.close()


def record(state: StateStore, number: int) -> None:
    state.record_user(f"user-{number}", f"vendor-{number}", "created", {"userName": f"u{number}"})


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
    assert state.load_known().users.keys() == {"user-1", "user-2"}
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
    state.record_user("left", "vendor-left", "created", {"userName": "Åsa.Öberg@Skola.se"})
    state.record_group("A", "g-a", "created", {"displayName": "A"})
    state.record_group("B", "g-b", "created", {"displayName": "B"})
    state.add_memberships("A", ["user-0", "user-1", "left"])
    state.add_memberships("B", ["user-1", "user-2"])

    known = state.load_known_for(["user-1", "no-such-user"], named="åsa.öberg@skola.SE")

    everything = state.load_known()
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
