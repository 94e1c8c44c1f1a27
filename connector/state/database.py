"""The SQLite file underneath the state: opening it safely, one process at a time, and
transactions - single, or in batches while a plan is applied.

The file is created with mode 0600 (and made so if it is not), uses WAL, and overwrites deleted
rows (secure_delete): a person who became protected must not linger in free pages. Every change
is a transaction, so a crash at any moment leaves it consistent.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import structlog

from connector.errors import ConfigError, StateLockedError
from connector.state.schema import SCHEMA_VERSION, migrate, version_of

log = structlog.get_logger(__name__)


def _make_private(path: Path) -> None:
    """The state file and its WAL hold names and addresses: readable by the connector alone."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = file.stat().st_mode & 0o777
        except FileNotFoundError:
            continue
        if mode & 0o077:
            file.chmod(0o600)
            log.warning(
                "state.permissions_tightened",
                file=str(file),
                mode_before=f"{mode:o}",
                mode_now="600",
            )


def _connect(path: Path) -> sqlite3.Connection:
    if not path.parent.is_dir():
        # A typo in state.path must not quietly start a new, empty state (and re-link or
        # re-create every account).
        raise ConfigError(
            str(path), [f"state.path: folder {path.parent} does not exist; create it first"]
        )
    if not path.exists():
        # Create it private before SQLite writes anything into it.
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    _make_private(path)
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA busy_timeout=5000")
    connection.execute("PRAGMA secure_delete=ON")
    found = migrate(connection)
    if 0 < found < SCHEMA_VERSION:
        log.info("state.migrated", schema_before=found, schema_now=SCHEMA_VERSION)
    return connection


def _connect_readonly(path: Path) -> sqlite3.Connection:
    """Read-only; a file of an older schema is migrated in a copy in memory, never on disk
    (commands that read only must not change the file)."""
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
    # Beside a running daemon: wait out its checkpoint instead of failing at once.
    connection.execute("PRAGMA busy_timeout=5000")
    if version_of(connection) >= SCHEMA_VERSION:
        return connection
    copy = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    connection.backup(copy)
    connection.close()
    migrate(copy)
    return copy


class _Batch:
    """Changes committed together, every so many changes or seconds.

    The transaction is begun at the first change, not when the batch starts, and `commit` ends
    it at any time (the next change begins another): the write lock is held only while changes
    are being recorded, never while the connector waits for a vendor, so a command beside a
    running daemon (`approve`, `sync --only`) waits at most about `max_seconds` to write.
    """

    def __init__(self, db: sqlite3.Connection, max_changes: int, max_seconds: float) -> None:
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
    """A connection to the state file, its lock, its transactions and its key-value meta."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._lock_file: int | None = None
        self._batch: _Batch | None = None

    @classmethod
    def open(cls, path: Path) -> Database:
        return cls(_connect(path), path)

    @classmethod
    def open_readonly(cls, path: Path) -> Database | None:
        """For commands that must change nothing (plan, status): None when there is none yet."""
        if not path.exists():
            return None
        return cls(_connect_readonly(path), path)

    def outside_writes(self) -> int:
        """A number that changes whenever another connection (a command beside the daemon:
        `approve`, `forget`) commits to the file; this connection's own writes leave it."""
        return int(self._db.execute("PRAGMA data_version").fetchone()[0])

    def checkpoint(self) -> None:
        """Fold the WAL into the database and empty it, so no old page version stays behind."""
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            os.close(self._lock_file)
            self._lock_file = None

    def acquire_lock(self) -> None:
        """Hold an exclusive lock for the life of the process (the OS drops it on a crash)."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        descriptor = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise StateLockedError(
                f"another connector process is using the state file {self.path}; "
                "only one sync or run may use a state file at a time"
            ) from None
        self._lock_file = descriptor

    @staticmethod
    def lock_is_held(path: Path) -> bool:
        """Whether some process holds the state file's lock (a daemon or a sync is running)."""
        lock_path = path.with_name(path.name + ".lock")
        if not lock_path.exists():
            return False
        descriptor = os.open(lock_path, os.O_RDONLY)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(descriptor)
        return False

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
