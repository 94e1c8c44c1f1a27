"""The SQLite state file: which vendor id belongs to which externalId, what was last applied,
which memberships the connector made, and a record of each run.

Only people who were actually sent to the vendor are stored, so a protected person never has
a row. The file is created with mode 0600 and uses WAL; every change is a transaction, so a
crash at any moment leaves it consistent. While a plan is applied, outcomes are committed in
batches (see `StateStore.batch`).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import structlog

from connector.errors import ConfigError, StateLockedError
from connector.planning.objects import Known, KnownGroup, KnownUser, addresses

log = structlog.get_logger(__name__)

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    external_id TEXT PRIMARY KEY,
    vendor_id TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('created', 'linked')),
    active INTEGER NOT NULL,
    attributes TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deactivated_at TEXT,
    version TEXT
);
CREATE TABLE IF NOT EXISTS groups (
    external_id TEXT PRIMARY KEY,
    vendor_id TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('created', 'linked')),
    attributes TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS memberships (
    group_external_id TEXT NOT NULL,
    user_external_id TEXT NOT NULL,
    PRIMARY KEY (group_external_id, user_external_id)
) WITHOUT ROWID;
-- A person's memberships: forgetting a user, and an on-demand sync of one person.
CREATE INDEX IF NOT EXISTS memberships_by_user ON memberships (user_external_id);
CREATE TABLE IF NOT EXISTS intents (
    external_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    recorded_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (source, kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT,
    summary TEXT
);
"""


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


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    command: str
    started_at: str
    finished_at: str | None
    outcome: str | None
    summary: dict[str, Any]


_SELECT_USERS = (
    "SELECT external_id, vendor_id, origin, active, attributes, deactivated_at, version FROM users"
)
_SELECT_USER = (
    "SELECT external_id, vendor_id, origin, active, attributes, deactivated_at, version FROM users "
    "WHERE external_id = ?"
)


def _known_user(row: tuple[Any, ...]) -> KnownUser:
    ext, vendor_id, origin, active, attributes, deactivated_at, version = row
    return KnownUser(
        ext,
        vendor_id,
        origin,
        bool(active),
        json.loads(attributes),
        datetime.fromisoformat(deactivated_at) if deactivated_at else None,
        version,
    )


class _Batch:
    """An open transaction that is committed and reopened every so many changes or seconds."""

    def __init__(self, db: sqlite3.Connection, max_changes: int, max_seconds: float) -> None:
        self._db = db
        self._max_changes = max_changes
        self._max_seconds = max_seconds
        self._changes = 0
        self._since = time.monotonic()

    def changed(self) -> None:
        self._changes += 1
        if (
            self._changes >= self._max_changes
            or time.monotonic() - self._since >= self._max_seconds
        ):
            self._db.execute("COMMIT")
            self._db.execute("BEGIN IMMEDIATE")
            self._changes = 0
            self._since = time.monotonic()


class StateStore:
    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._lock_file: int | None = None
        self._batch: _Batch | None = None

    @classmethod
    def open(cls, path: Path) -> StateStore:
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
        # Deleted rows are overwritten, not just unlinked: a person who became protected must
        # not linger in free pages of the file.
        connection.execute("PRAGMA secure_delete=ON")
        connection.executescript(_SCHEMA)
        connection.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        return cls(connection, path)

    @classmethod
    def open_readonly(cls, path: Path) -> StateStore | None:
        """For commands that must change nothing (plan): None when there is no state yet."""
        if not path.exists():
            return None
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False)
        return cls(connection, path)

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
        `record_intents`) and the next run finds it again; updates and membership changes
        not recorded are planned and sent again, and sending them twice changes nothing.
        """
        if self._batch is not None:
            yield
            return
        self._db.execute("BEGIN IMMEDIATE")
        self._batch = _Batch(self._db, max_changes, max_seconds)
        try:
            yield
        finally:
            self._batch = None
            self._db.execute("COMMIT")

    # -- what the vendor holds ------------------------------------------------------------

    def load_known(self) -> Known:
        known = Known()
        for row in self._db.execute(_SELECT_USERS):
            known.users[row[0]] = _known_user(row)
        self._load_groups(known)
        for group_ext, user_ext in self._db.execute(
            "SELECT group_external_id, user_external_id FROM memberships"
        ):
            if group_ext in known.groups:
                known.groups[group_ext].members.add(user_ext)
        return known

    def load_known_for(self, external_ids: Iterable[str], named: str | None = None) -> Known:
        """What is known of a few users (an on-demand sync of one person): these externalIds,
        and users whose recorded userName or an e-mail address is `named` (case-insensitive);
        every group, with only these users among its members. One pass over the users table
        instead of loading 100,000 of them."""
        wanted = set(external_ids)
        if named:
            folded = named.casefold()
            rows = self._db.execute(
                "SELECT external_id, json_extract(attributes, '$.userName'), "
                "json_extract(attributes, '$.emails') FROM users"
            )
            for ext, user_name, emails in rows:
                # Most rows are ruled out by a substring test; JSON with escapes is parsed.
                maybe = emails and (folded in emails.casefold() or "\\" in emails)
                if str(user_name or "").casefold() == folded or (
                    maybe and folded in addresses({"emails": json.loads(emails)})
                ):
                    wanted.add(ext)
        known = Known()
        for ext in sorted(wanted):
            row = self._db.execute(_SELECT_USER, (ext,)).fetchone()
            if row is not None:
                known.users[ext] = _known_user(row)
        self._load_groups(known)
        for ext in known.users:
            for (group_ext,) in self._db.execute(
                "SELECT group_external_id FROM memberships WHERE user_external_id = ?", (ext,)
            ):
                if group_ext in known.groups:
                    known.groups[group_ext].members.add(ext)
        return known

    def linked_counts(self) -> tuple[int, int]:
        """How many vendor users and groups the state file links."""
        users = self._db.execute("SELECT count(*) FROM users").fetchone()[0]
        groups = self._db.execute("SELECT count(*) FROM groups").fetchone()[0]
        return int(users), int(groups)

    def _load_groups(self, known: Known) -> None:
        for ext, vendor_id, origin, attributes in self._db.execute(
            "SELECT external_id, vendor_id, origin, attributes FROM groups"
        ):
            known.groups[ext] = KnownGroup(ext, vendor_id, origin, json.loads(attributes))

    def record_user(
        self,
        external_id: str,
        vendor_id: str,
        origin: str,
        attributes: dict[str, Any],
        version: str | None = None,
    ) -> None:
        active = bool(attributes.get("active", True))
        with self.transaction():
            self._db.execute(
                """
                INSERT INTO users (external_id, vendor_id, origin, active, attributes, updated_at,
                                   deactivated_at, version)
                VALUES (?, ?, ?, ?, ?, ?, CASE WHEN ? THEN NULL ELSE ? END, ?)
                ON CONFLICT (external_id) DO UPDATE SET
                    vendor_id = excluded.vendor_id,
                    active = excluded.active,
                    attributes = excluded.attributes,
                    updated_at = excluded.updated_at,
                    version = excluded.version,
                    deactivated_at = CASE
                        WHEN excluded.active THEN NULL
                        ELSE COALESCE(users.deactivated_at, excluded.deactivated_at)
                    END
                """,
                (
                    external_id,
                    vendor_id,
                    origin,
                    active,
                    json.dumps(attributes),
                    now_utc(),
                    active,
                    now_utc(),
                    version,
                ),
            )
            self._db.execute("DELETE FROM intents WHERE external_id = ?", (external_id,))

    def scrub_user(self, external_id: str) -> None:
        """Keep only the link and whether the account is active (a person now protected)."""
        with self.transaction():
            self._db.execute(
                "UPDATE users SET attributes = CASE WHEN active THEN '{\"active\": true}' "
                "ELSE '{\"active\": false}' END, updated_at = ? WHERE external_id = ?",
                (now_utc(), external_id),
            )

    def relink_user(self, external_id: str, vendor_id: str) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE users SET vendor_id = ?, updated_at = ? WHERE external_id = ?",
                (vendor_id, now_utc(), external_id),
            )

    def forget_user(self, external_id: str) -> None:
        """Drop a link (the account is gone at the vendor) and the memberships recorded for it."""
        with self.transaction():
            self._db.execute("DELETE FROM users WHERE external_id = ?", (external_id,))
            self._db.execute("DELETE FROM memberships WHERE user_external_id = ?", (external_id,))

    def forget_group(self, external_id: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM groups WHERE external_id = ?", (external_id,))
            self._db.execute("DELETE FROM memberships WHERE group_external_id = ?", (external_id,))

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

    # -- creates about to be sent ------------------------------------------------------------

    def record_intents(self, kind: str, external_ids: Iterable[str]) -> None:
        """Before creates are sent: if the process dies mid-way, the next run knows that these
        objects may exist at the vendor without a link, and looks them up."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO intents (external_id, kind, recorded_at) VALUES (?, ?, ?)",
                [(ext, kind, now_utc()) for ext in external_ids],
            )

    def intents(self) -> dict[str, str]:
        """externalId -> kind of creates that were sent (or about to be) but never recorded."""
        return dict(self._db.execute("SELECT external_id, kind FROM intents"))

    def clear_intent(self, external_id: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM intents WHERE external_id = ?", (external_id,))

    # -- the last full picture of an incremental source ----------------------------------------

    def load_snapshot(self, source: str) -> dict[str, dict[str, dict[str, Any]]]:
        """kind -> id -> object, as the source kept it (never a protected person's)."""
        snapshot: dict[str, dict[str, dict[str, Any]]] = {}
        for kind, obj_id, data in self._db.execute(
            "SELECT kind, id, data FROM snapshots WHERE source = ?", (source,)
        ):
            snapshot.setdefault(kind, {})[obj_id] = json.loads(data)
        return snapshot

    def save_snapshot(
        self, source: str, snapshot: dict[str, dict[str, dict[str, Any]]], checkpoint: str
    ) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM snapshots WHERE source = ?", (source,))
            self._db.executemany(
                "INSERT INTO snapshots (source, kind, id, data) VALUES (?, ?, ?, ?)",
                [
                    (source, kind, obj_id, json.dumps(data, ensure_ascii=False))
                    for kind, objects in snapshot.items()
                    for obj_id, data in objects.items()
                ],
            )
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (f"checkpoint:{source}", checkpoint),
            )

    def checkpoint_of(self, source: str) -> str | None:
        return self.get_meta(f"checkpoint:{source}") or None

    # -- objects that keep failing at the vendor ---------------------------------------------

    def record_failure(self, key: str, delay: float, max_delay: float) -> None:
        """One more failure: wait delay * 2^(attempts-1), at most max_delay, before the next try."""
        row = self._db.execute("SELECT attempts FROM failures WHERE key = ?", (key,)).fetchone()
        attempts = (row[0] if row else 0) + 1
        wait = min(delay * 2 ** (attempts - 1), max_delay)
        next_attempt = datetime.now(UTC) + timedelta(seconds=wait)
        with self.transaction():
            self._db.execute(
                "INSERT INTO failures (key, attempts, next_attempt_at) VALUES (?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET attempts = excluded.attempts, "
                "next_attempt_at = excluded.next_attempt_at",
                (key, attempts, next_attempt.isoformat()),
            )

    def clear_failure(self, key: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM failures WHERE key = ?", (key,))

    def failure_keys(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT key FROM failures")}

    def backing_off(self, now: datetime) -> set[str]:
        """Keys of objects whose next try is not yet due."""
        rows = self._db.execute("SELECT key, next_attempt_at FROM failures")
        return {key for key, when in rows if datetime.fromisoformat(when) > now}

    def source_counts(self) -> dict[str, int]:
        """Persons per source at its last good read (for the shrinking-source check)."""
        rows = self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'source_count:%'")
        return {key.removeprefix("source_count:"): int(value) for key, value in rows}

    def set_source_count(self, source: str, count: int) -> None:
        self.set_meta(f"source_count:{source}", str(count))

    def marking_digests(self, source: str) -> set[str]:
        """Fingerprints of the marking values a source has written (see source_health)."""
        raw = self.get_meta(f"marking_values:{source}")
        return set(json.loads(raw)) if raw else set()

    def remember_marking_digests(self, source: str, digests: Iterable[str]) -> None:
        seen = self.marking_digests(source)
        if not seen.issuperset(digests):
            self.set_meta(f"marking_values:{source}", json.dumps(sorted(seen.union(digests))))

    def held_plan(self) -> dict[str, Any] | None:
        """The deprovisioning the last cycle held back, for `connector approve`."""
        raw = self.get_meta("held_plan")
        return json.loads(raw) if raw else None

    def set_held_plan(self, held: dict[str, Any] | None) -> None:
        self.set_meta("held_plan", json.dumps(held) if held else "")

    def record_group(
        self, external_id: str, vendor_id: str, origin: str, attributes: dict[str, Any]
    ) -> None:
        with self.transaction():
            self._db.execute(
                """
                INSERT INTO groups (external_id, vendor_id, origin, attributes, updated_at)
                VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (external_id) DO UPDATE SET
                    vendor_id = excluded.vendor_id,
                    attributes = excluded.attributes,
                    updated_at = excluded.updated_at
                """,
                (external_id, vendor_id, origin, json.dumps(attributes), now_utc()),
            )
            self._db.execute("DELETE FROM intents WHERE external_id = ?", (external_id,))

    def add_memberships(self, group_external_id: str, user_external_ids: Iterable[str]) -> None:
        with self.transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO memberships VALUES (?, ?)",
                [(group_external_id, u) for u in user_external_ids],
            )

    def remove_memberships(self, group_external_id: str, user_external_ids: Iterable[str]) -> None:
        with self.transaction():
            self._db.executemany(
                "DELETE FROM memberships WHERE group_external_id = ? AND user_external_id = ?",
                [(group_external_id, u) for u in user_external_ids],
            )

    # -- runs -----------------------------------------------------------------------------

    def start_run(self, run_id: str, command: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO runs (run_id, command, started_at) VALUES (?, ?, ?)",
                (run_id, command, now_utc()),
            )

    def finish_run(self, run_id: str, outcome: str, summary: dict[str, Any]) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, summary = ? WHERE run_id = ?",
                (now_utc(), outcome, json.dumps(summary), run_id),
            )

    def last_runs(self, limit: int = 10) -> list[RunRecord]:
        rows = self._db.execute(
            "SELECT run_id, command, started_at, finished_at, outcome, summary FROM runs "
            "ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [
            RunRecord(r[0], r[1], r[2], r[3], r[4], json.loads(r[5]) if r[5] else {}) for r in rows
        ]
