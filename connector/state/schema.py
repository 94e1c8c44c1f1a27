"""The state file's tables, and the migrations that bring an older file up to date.

Version 4 adds `approvals` (an operator's approval of a held plan, with who and when, so a
running daemon can apply it), `requests` (a `sync --only` a running daemon serves) and
`history` (every change applied, per object, for the audit trail: names of attributes only,
never their values).

Version 3 adds `usernames`: the usernames the connector generated, per target and person, so
a name once given is never generated again (see connector/mapping/usernames.py).

Version 2 keys every vendor-side record by its target (`targets:` in the config), so one file
serves several vendors, each in its own namespace. A version-1 file (one vendor) is migrated
in place, its records becoming those of the target `default` - the name a config written
with `vendor:` gives its one target.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from connector.errors import StateError
from connector.state.dialect import SQLITE_TABLES, StateConnection

SCHEMA_VERSION = 4
LEGACY_TARGET = "default"

TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    target TEXT NOT NULL,
    external_id TEXT NOT NULL,
    vendor_id TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('created', 'linked')),
    active INTEGER NOT NULL,
    attributes TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deactivated_at TEXT,
    version TEXT,
    PRIMARY KEY (target, external_id)
);
CREATE TABLE IF NOT EXISTS groups (
    target TEXT NOT NULL,
    external_id TEXT NOT NULL,
    vendor_id TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('created', 'linked')),
    attributes TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (target, external_id)
);
CREATE TABLE IF NOT EXISTS memberships (
    target TEXT NOT NULL,
    group_external_id TEXT NOT NULL,
    user_external_id TEXT NOT NULL,
    PRIMARY KEY (target, group_external_id, user_external_id)
) WITHOUT ROWID;
-- A person's memberships: forgetting a user, and an on-demand sync of one person.
CREATE INDEX IF NOT EXISTS memberships_by_user ON memberships (target, user_external_id);
CREATE TABLE IF NOT EXISTS intents (
    target TEXT NOT NULL,
    external_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    recorded_at TEXT NOT NULL,
    PRIMARY KEY (target, external_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS snapshots (
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (source, kind, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    target TEXT NOT NULL,
    key TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TEXT NOT NULL,
    PRIMARY KEY (target, key)
) WITHOUT ROWID;
-- Usernames the connector generated (for people without an e-mail): kept for good, also
-- after the account is gone, so nobody else is ever given the same name.
CREATE TABLE IF NOT EXISTS usernames (
    target TEXT NOT NULL,
    external_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    base TEXT NOT NULL,
    assigned_at TEXT NOT NULL,
    PRIMARY KEY (target, external_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS usernames_by_name ON usernames (target, user_name);
-- One row per target a cycle ran for (the cycle's run_id is shared by its targets).
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT NOT NULL,
    target TEXT NOT NULL,
    command TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    outcome TEXT,
    summary TEXT,
    PRIMARY KEY (run_id, target)
);
-- An approval of a held plan: recorded by `connector approve` (beside a running daemon too),
-- applied by the next cycle of that target. `keys` is the JSON list of approved operations.
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    target TEXT NOT NULL,
    held_run_id TEXT NOT NULL,
    keys TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'applied', 'expired')),
    applied_at TEXT,
    applied_run_id TEXT
);
CREATE INDEX IF NOT EXISTS approvals_by_status ON approvals (target, status);
-- Work a command asks of a running daemon (`sync --only PERSON`): what the operator typed is
-- kept only until the daemon takes the request (then NULL), the result (counts, opaque refs)
-- until the command has read it, and then the row is deleted.
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('sync_only')),
    query TEXT,
    options TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done')),
    exit_code INTEGER,
    result TEXT,
    finished_at TEXT
);
-- What was done to each object, when, in which run (and under which approval): the names of
-- the attributes changed, never their values. Scrubbed with the object's person.
CREATE TABLE IF NOT EXISTS history (
    target TEXT NOT NULL,
    external_id TEXT NOT NULL,
    at TEXT NOT NULL,
    op TEXT NOT NULL,
    attributes TEXT NOT NULL,
    outcome TEXT NOT NULL,
    run_id TEXT NOT NULL,
    approval_id TEXT
);
CREATE INDEX IF NOT EXISTS history_by_object ON history (target, external_id, at);
CREATE INDEX IF NOT EXISTS history_by_time ON history (at);
"""

TABLE_NAMES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", TABLES))

# Version 1's vendor-wide meta keys, now kept per target.
_V1_META = {
    "held_plan": "held_plan",
    "vendor.failing_cycles": "failing_cycles",
    "vendor.degraded_since": "degraded_since",
    "last_full_reconcile": "last_full_reconcile",
}


def target_meta_key(target: str, name: str) -> str:
    return f"target:{target}:{name}"


def version_of(db: StateConnection) -> int:
    """0 for an empty file, else the version it was written with."""
    tables = {r[0] for r in db.execute(SQLITE_TABLES)}
    if "meta" not in tables:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 1


def create_tables(db: StateConnection) -> None:
    """Statement by statement: executescript would commit the transaction it runs in."""
    for statement in TABLES.split(";"):
        if statement.strip():
            db.execute(statement)


_V1_TABLES = {
    "users": "external_id, vendor_id, origin, active, attributes, updated_at, deactivated_at, "
    "version",
    "groups": "external_id, vendor_id, origin, attributes, updated_at",
    "memberships": "group_external_id, user_external_id",
    "intents": "external_id, kind, recorded_at",
    "failures": "key, attempts, next_attempt_at",
    "runs": "run_id, command, started_at, finished_at, outcome, summary",
}


def _v1_to_v2(db: StateConnection) -> None:
    """Add the target to every vendor-side record: the one vendor becomes `default`."""
    db.execute("DROP INDEX IF EXISTS memberships_by_user")
    for table in _V1_TABLES:
        db.execute(f"ALTER TABLE {table} RENAME TO {table}_v1")
    create_tables(db)
    for table, columns in _V1_TABLES.items():
        db.execute(
            f"INSERT INTO {table} (target, {columns}) "  # noqa: S608 (fixed names)
            f"SELECT ?, {columns} FROM {table}_v1",
            (LEGACY_TARGET,),
        )
        db.execute(f"DROP TABLE {table}_v1")
    for old, new in _V1_META.items():
        db.execute(
            "UPDATE meta SET key = ? WHERE key = ?", (target_meta_key(LEGACY_TARGET, new), old)
        )


def _v2_to_v3(db: StateConnection) -> None:
    """The usernames table is new; nothing else changes."""
    create_tables(db)


def _v3_to_v4(db: StateConnection) -> None:
    """The approvals, requests and history tables are new; nothing else changes."""
    create_tables(db)


MIGRATIONS: dict[int, Callable[[StateConnection], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
}


def migrate(db: StateConnection) -> int:
    """Bring the state to SCHEMA_VERSION, all steps in one transaction; the version it had.
    The version is asked again inside the transaction: two processes starting together (two
    replicas on one database) migrate once."""
    found = version_of(db)
    if found == SCHEMA_VERSION:
        return found
    db.execute("BEGIN IMMEDIATE")
    try:
        found = version_of(db)
        _upgrade(db, found)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return found


def _upgrade(db: StateConnection, found: int) -> None:
    if found > SCHEMA_VERSION:
        raise StateError(
            f"the state was written by a newer connector (schema {found}); "
            f"this one knows schema {SCHEMA_VERSION}"
        )
    if found == 0:
        create_tables(db)
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
        )
        return
    for version in range(found, SCHEMA_VERSION):
        MIGRATIONS[version](db)
        db.execute(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (str(version + 1),),
        )
