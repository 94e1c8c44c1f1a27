"""States as older connectors wrote them, for the migration tests (SQLite and PostgreSQL)."""

# The state file as version 1 (one vendor) wrote it: the schema a deployed connector has.
V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE users (
    external_id TEXT PRIMARY KEY, vendor_id TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('created', 'linked')), active INTEGER NOT NULL,
    attributes TEXT NOT NULL, updated_at TEXT NOT NULL, deactivated_at TEXT, version TEXT
);
CREATE TABLE groups (
    external_id TEXT PRIMARY KEY, vendor_id TEXT NOT NULL,
    origin TEXT NOT NULL CHECK (origin IN ('created', 'linked')), attributes TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE memberships (
    group_external_id TEXT NOT NULL, user_external_id TEXT NOT NULL,
    PRIMARY KEY (group_external_id, user_external_id)
) WITHOUT ROWID;
CREATE INDEX memberships_by_user ON memberships (user_external_id);
CREATE TABLE intents (
    external_id TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('user', 'group')),
    recorded_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE snapshots (
    source TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
    PRIMARY KEY (source, kind, id)
) WITHOUT ROWID;
CREATE TABLE failures (
    key TEXT PRIMARY KEY, attempts INTEGER NOT NULL, next_attempt_at TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE runs (
    run_id TEXT PRIMARY KEY, command TEXT NOT NULL, started_at TEXT NOT NULL,
    finished_at TEXT, outcome TEXT, summary TEXT
);
INSERT INTO meta VALUES ('schema_version', '1');
INSERT INTO meta VALUES ('held_plan', '{"run_id": "r1", "held_at": "2026-06-20T02:00:00+00:00",
    "reasons": ["threshold"], "operations": [{"op": "deactivate_user", "target": "u1"}]}');
INSERT INTO meta VALUES ('vendor.failing_cycles', '2');
INSERT INTO meta VALUES ('last_full_reconcile', '2026-06-20T02:00:00+00:00');
INSERT INTO meta VALUES ('source_count:students', '41');
INSERT INTO users VALUES ('u1', 'v1', 'created', 1, '{"userName": "a@skola.se"}', 't', NULL, 'W/"1"');
INSERT INTO groups VALUES ('11111111', 'g1', 'created', '{"displayName": "Ekeby"}', 't');
INSERT INTO memberships VALUES ('11111111', 'u1');
INSERT INTO intents VALUES ('u2', 'user', 't');
INSERT INTO failures VALUES ('update_user:u1', 3, '2026-06-20T03:00:00+00:00');
INSERT INTO runs VALUES ('r1', 'run', '2026-06-20T02:00:00+00:00', NULL, 'held', '{}');
"""
