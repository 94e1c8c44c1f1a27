"""The state in a SQLite file (`state.path`, the default): opening it safely, and the file lock
that lets one process at a time use it.

The file is created with mode 0600 (and made so if it is not), uses WAL, and overwrites deleted
rows (secure_delete): a person who became protected must not linger in free pages.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
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


def connect(path: Path) -> sqlite3.Connection:
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


def connect_readonly(path: Path) -> sqlite3.Connection:
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


def _lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def acquire_file_lock(path: Path) -> int:
    """An exclusive lock for the life of the process (the OS drops it on a crash)."""
    descriptor = os.open(_lock_path(path), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        raise StateLockedError(
            f"another connector process is using the state file {path}; "
            "only one sync or run may use a state file at a time"
        ) from None
    return descriptor


def file_lock_is_held(path: Path) -> bool:
    """Whether some process holds the state file's lock (a daemon or a sync is running)."""
    lock_path = _lock_path(path)
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
