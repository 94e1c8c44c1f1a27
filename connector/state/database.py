"""The connection underneath the state - a SQLite file (state/sqlite.py) or PostgreSQL
(state/postgres.py) - its lock, and transactions: single, or in batches while a plan is
applied. Every change is a transaction, so a crash at any moment leaves the state consistent.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from connector.config import StateConfig
from connector.errors import StateError
from connector.state import postgres, sqlite
from connector.state.dialect import StateConnection

StateWhere = Path | StateConfig
# What reading the state may raise, whichever holds it.
STATE_ERRORS = (sqlite3.Error, psycopg.Error, StateError)


def state_config(where: StateWhere) -> StateConfig:
    """A state file's path (tests, older callers) or the config's `state:`."""
    return where if isinstance(where, StateConfig) else StateConfig.model_validate({"path": where})


class _Batch:
    """Changes committed together, every so many changes or seconds.

    The transaction is begun at the first change, not when the batch starts, and `commit` ends
    it at any time (the next change begins another): the write lock is held only while changes
    are being recorded, never while the connector waits for a vendor, so a command beside a
    running daemon (`approve`, `sync --only`) waits at most about `max_seconds` to write.
    """

    def __init__(self, db: StateConnection, max_changes: int, max_seconds: float) -> None:
        self._db = db
        self._max_changes = max_changes
        self._max_seconds = max_seconds
        self._changes = 0
        self._since = time.monotonic()
        self.open = False

    def begin(self) -> None:
        if not self.open:
            self._db.execute("BEGIN IMMEDIATE")
            self.open = True
            self._changes = 0
            self._since = time.monotonic()

    def changed(self) -> None:
        self._changes += 1
        if (
            self._changes >= self._max_changes
            or time.monotonic() - self._since >= self._max_seconds
        ):
            self.commit()

    def commit(self) -> None:
        if self.open:
            self.open = False
            self._db.execute("COMMIT")


class Database:
    """A connection to the state, its lock, its transactions and its key-value meta."""

    def __init__(self, connection: StateConnection, where: StateWhere) -> None:
        self._db = connection
        self.config = state_config(where)
        self.path = self.config.path  # None in PostgreSQL
        self.where = self.config.where
        self._lock_file: int | None = None
        self._batch: _Batch | None = None

    @property
    def postgres(self) -> postgres.PostgresConnection | None:
        return self._db if isinstance(self._db, postgres.PostgresConnection) else None

    @classmethod
    def open(cls, where: StateWhere) -> Database:
        config = state_config(where)
        if config.path is not None:
            return cls(sqlite.connect(config.path), config)
        return cls(postgres.connect(config), config)

    @classmethod
    def open_readonly(cls, where: StateWhere) -> Database | None:
        """For commands that must change nothing (plan, status): None when there is none yet."""
        config = state_config(where)
        if config.path is None:
            connection = postgres.connect_readonly(config)
            return cls(connection, config) if connection else None
        if not config.path.exists():
            return None
        return cls(sqlite.connect_readonly(config.path), config)

    def outside_writes(self) -> int:
        """A number that changes whenever another connection (a command beside the daemon:
        `approve`, `forget`) commits to the state; this connection's own writes leave it."""
        if self.postgres:
            return self.postgres.outside_writes()
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def checkpoint(self) -> None:
        """Leave no old version of a row behind: SQLite folds the WAL into the file and empties
        it; PostgreSQL vacuums the state's tables."""
        if self.postgres:
            postgres.vacuum(self.postgres)
        else:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    def acquire_lock(self) -> None:
        """Be the one process that applies, for the life of this one (a crash drops it): the
        file's lock, or PostgreSQL's session lock (which a leading replica holds too)."""
        if self.postgres:
            postgres.acquire_session_lock(self.postgres, self.where)
        elif self.path is not None:
            self._lock_file = sqlite.acquire_file_lock(self.path)

    def lock_is_held_elsewhere(self) -> bool:
        """Whether a daemon or a sync other than this process is using the state."""
        if self.postgres:
            holder = postgres.lock_holder(self.postgres, self.postgres.leader_key)
            return holder is not None
        assert self.path is not None
        return self._lock_file is None and sqlite.file_lock_is_held(self.path)

    @staticmethod
    def lock_is_held(where: StateWhere) -> bool:
        """Whether some process holds the state's lock (a daemon or a sync is running)."""
        config = state_config(where)
        if config.path is not None:
            return sqlite.file_lock_is_held(config.path)
        state = Database.open_readonly(config)
        if state is None:
            return False
        try:
            return state.lock_is_held_elsewhere()
        finally:
            state.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self._batch is not None:
            # Inside a batch: all or nothing of this change, committed with the batch.
            self._batch.begin()
            self._db.execute("SAVEPOINT change")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK TO change")
                self._db.execute("RELEASE change")
                raise
            self._db.execute("RELEASE change")
            self._batch.changed()
            return
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    @contextmanager
    def batch(self, max_changes: int = 500, max_seconds: float = 1.0) -> Iterator[None]:
        """Commit the changes made inside in groups (at most `max_changes` or `max_seconds`
        apart) rather than one by one: a first sync records 100,000+ outcomes.

        Safe to lose on a crash: a create's intent is committed before it is sent (see
        `TargetState.record_intents`) and the next run finds it again; updates and membership
        changes not recorded are planned and sent again, and sending them twice changes
        nothing.
        """
        if self._batch is not None:
            yield
            return
        self._batch = _Batch(self._db, max_changes, max_seconds)
        try:
            yield
        finally:
            batch, self._batch = self._batch, None
            batch.commit()

    def flush(self) -> None:
        """Commit what an open batch has recorded so far (before waiting on something slow)."""
        if self._batch is not None:
            self._batch.commit()

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )
