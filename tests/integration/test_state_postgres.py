"""The state in PostgreSQL (`state.url`) behaves as the SQLite file does: the same records,
transactions, batches and migrations, through a real PostgreSQL 15 cluster; and what only
PostgreSQL has - the password kept out of every message, the lock that lets one process apply.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from connector.config import StateConfig
from connector.errors import StateError, StateLockedError
from connector.state import postgres
from connector.state.schema import SCHEMA_VERSION
from connector.state.store import StateStore
from tests.fakes.postgres import PASSWORD as PG_PASSWORD
from tests.support.state_versions import V1_SCHEMA


def record(state: StateStore, number: int) -> None:
    state.target("default").record_user(
        f"ext-{number}", f"id-{number}", "created", {"userName": f"u{number}"}
    )


def test_users_are_recorded_and_read_back(state_where: StateConfig) -> None:
    state = StateStore.open(state_where)
    with state.batch(max_changes=3):
        for number in range(7):
            record(state, number)
    known = state.target("default").load_known()
    assert sorted(known.users) == [f"ext-{n}" for n in range(7)]
    assert known.users["ext-3"].attributes == {"userName": "u3"}
    assert state.target("default").named("U5") == {"ext-5"}
    assert state.target_names() == ["default"]
    state.close()


def test_a_failed_change_inside_a_batch_is_undone_alone(state_where: StateConfig) -> None:
    state = StateStore.open(state_where)
    with state.batch():
        record(state, 1)
        with pytest.raises(RuntimeError), state.transaction():
            record(state, 2)
            raise RuntimeError("the vendor said no")
        record(state, 3)
    assert sorted(state.target("default").load_known().users) == ["ext-1", "ext-3"]
    state.close()


def test_a_second_process_may_not_apply_while_one_does(state_where: StateConfig) -> None:
    first = StateStore.open(state_where)
    first.acquire_lock()
    second = StateStore.open(state_where)
    with pytest.raises(StateLockedError):
        second.acquire_lock()
    assert StateStore.lock_is_held(state_where)
    assert second.lock_is_held_elsewhere()
    first.close()  # a crash drops it as well
    second.acquire_lock()
    second.close()
    assert not StateStore.lock_is_held(state_where)


def test_writes_from_beside_are_told_apart_from_its_own(state_where: StateConfig) -> None:
    daemon = StateStore.open(state_where)
    before = daemon.outside_writes()
    record(daemon, 1)
    daemon.set_next_run("2026-12-05T10:00:00+00:00")
    assert daemon.outside_writes() == before
    beside = StateStore.open(state_where)
    beside.set_meta("anything", "1")
    beside.close()
    assert daemon.outside_writes() != before
    daemon.close()


def test_read_only_opening_changes_nothing_and_sees_everything(state_where: StateConfig) -> None:
    assert StateStore.open_readonly(state_where) is None  # nothing there yet
    state = StateStore.open(state_where)
    record(state, 1)
    state.close()
    reader = StateStore.open_readonly(state_where)
    assert reader is not None
    assert list(reader.target("default").load_known().users) == ["ext-1"]
    reader.close()


def test_a_version_1_state_in_postgres_is_migrated_to_the_default_target(
    postgres_state: StateConfig,
) -> None:
    """The migrations are the same for both: an old state written in PostgreSQL (as the
    statements of a version-1 connector, translated) is brought up to date in place."""
    connection = postgres.PostgresConnection(postgres.open_connection(postgres_state))
    connection.raw.execute("BEGIN")
    for statement in V1_SCHEMA.split(";\n"):
        if statement.strip():
            connection.execute(statement)
    connection.raw.execute("COMMIT")
    connection.close()

    state = StateStore.open(postgres_state)
    target = state.target("default")
    known = target.load_known()
    assert known.users["u1"].vendor_id == "v1" and known.groups["11111111"].members == {"u1"}
    assert target.intents() == {"u2": "user"}
    assert target.failing_cycles() == 2 and state.source_counts() == {"students": 41}
    assert [r.run_id for r in target.last_runs()] == ["r1"]
    assert state.get_meta("schema_version") == str(SCHEMA_VERSION)
    state.close()


def test_an_older_schema_is_migrated_by_a_writer_and_refused_by_a_reader(
    state_where: StateConfig,
) -> None:
    state = StateStore.open(state_where)
    record(state, 1)
    with state.transaction():  # back to version 3, as that connector left it
        for table in ("approvals", "requests", "history"):
            state._db.execute(f"DROP TABLE {table}")
        state._db.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    state.close()
    if state_where.url:
        with pytest.raises(StateError, match=r"schema 3.*run `connector sync`"):
            StateStore.open_readonly(state_where)

    migrated = StateStore.open(state_where)
    assert migrated.approvals() == [] and migrated.get_meta("schema_version") == "4"
    assert list(migrated.target("default").load_known().users) == ["ext-1"]
    migrated.close()


def test_a_newer_schema_is_refused(state_where: StateConfig) -> None:
    state = StateStore.open(state_where)
    state.set_meta("schema_version", str(SCHEMA_VERSION + 1))
    state.close()
    with pytest.raises(StateError, match="newer connector"):
        StateStore.open(state_where)


def test_a_refused_connection_names_the_database_never_the_password(
    postgres_state: StateConfig,
) -> None:
    wrong = postgres_state.model_copy(update={"password": SecretStr("not-the-password-4b1d")})
    with pytest.raises(StateError) as refused:
        StateStore.open(wrong)
    message = str(refused.value)
    assert str(postgres_state.url) in message and "password authentication failed" in message
    assert "not-the-password-4b1d" not in message and PG_PASSWORD not in message


def test_a_password_in_the_url_is_refused_by_the_config() -> None:
    with pytest.raises(ValueError, match="must not hold the password"):
        StateConfig.model_validate({"url": "postgresql://connector:hemligt@db/connector"})
