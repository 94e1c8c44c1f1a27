"""The state in PostgreSQL (`state.url`): the connection, the statements translated
(state/dialect.py), writers one at a time, and the lock that makes one process the one that
applies.

Every write transaction takes a transaction-level advisory lock first, as SQLite's
`BEGIN IMMEDIATE` takes the file's write lock: the state's rules (a username given once, an
intent before its create) were written for one writer at a time. The lock that says which
process applies - a `sync`, or the leading replica of `connector run` (state/leader.py) - is a
session-level advisory lock: PostgreSQL drops it the moment that process's connection ends,
a crash or a kill -9 included. Both locks are keyed by the database and schema, so tenants
sharing one server (a schema each) never wait for each other.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
import structlog

from connector.config import StateConfig
from connector.errors import StateError, StateLockedError
from connector.state.dialect import postgres_sql
from connector.state.schema import SCHEMA_VERSION, TABLE_NAMES, migrate, version_of

log = structlog.get_logger(__name__)

_WRITES = ("INSERT", "UPDATE", "DELETE")
# A dead peer is noticed within about 15 s by either side (kill -9 at once: the socket closes).
KEEPALIVE = "keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3 " + (
    "tcp_user_timeout=15000 connect_timeout=10"
)
SERVER_KEEPALIVE = (
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
    "SET tcp_keepalives_count = 3; SET tcp_user_timeout = 15000"
)


def lock_key(purpose: str, database: str, schema: str) -> int:
    """A signed 64-bit advisory lock key for one purpose in one database and schema."""
    digest = hashlib.sha256(f"connector:{purpose}:{database}:{schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class PostgresConnection:
    """psycopg underneath, answering as the sqlite3 connection does for the state's code."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.raw = connection
        database, schema = connection.execute(
            "SELECT current_database(), current_schema()"
        ).fetchone() or ("", "")
        self.writer_key = lock_key("writer", database, schema)
        self.leader_key = lock_key("leader", database, schema)
        self.own_writes = 0  # this connection's commits counted in state_writes

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        if sql == "BEGIN IMMEDIATE":
            self.raw.execute("BEGIN")
            return self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (self.writer_key,))
        if sql == "COMMIT" and self.in_transaction:
            # What `outside_writes` tells apart: every commit counted, ours remembered.
            self.raw.execute("SELECT nextval('state_writes')")
            self.own_writes += 1
        elif sql.lstrip().upper().startswith(_WRITES) and not self.in_transaction:
            raise RuntimeError("a state write outside a transaction: " + sql[:60])
        return self.raw.execute(postgres_sql(sql), [_value(p) for p in params])

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> psycopg.Cursor[Any]:
        cursor = self.raw.cursor()
        cursor.executemany(postgres_sql(sql), [[_value(p) for p in row] for row in rows])
        return cursor

    @property
    def in_transaction(self) -> bool:
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def outside_writes(self) -> int:
        row = self.raw.execute("SELECT last_value, is_called FROM state_writes").fetchone()
        total = int(row[0]) if row and row[1] else 0
        return total - self.own_writes

    def close(self) -> None:
        self.raw.close()


def _value(param: Any) -> Any:
    """SQLite stores a bool as 0/1 in an INTEGER column; PostgreSQL wants the integer."""
    return int(param) if isinstance(param, bool) else param


def open_connection(
    state: StateConfig, *, application: str = "connector"
) -> psycopg.Connection[Any]:
    """A connection of its own (autocommit: the state's code says BEGIN and COMMIT itself).
    An error names the server and database, never the password."""
    try:
        connection = psycopg.connect(
            psycopg.conninfo.make_conninfo(state.url or "", application_name=application)
            + " "
            + KEEPALIVE,
            password=state.password_value(),
            autocommit=True,
        )
    except psycopg.Error as exc:
        raise StateError(f"state.url {state.url}: cannot connect: {_reason(exc)}") from None
    connection.execute(SERVER_KEEPALIVE)
    return connection


def _reason(exc: psycopg.Error) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def connect(state: StateConfig) -> PostgresConnection:
    connection = PostgresConnection(open_connection(state))
    try:
        # Not a table of the schema: a counter of commits, PostgreSQL's alone (outside_writes).
        connection.raw.execute("CREATE SEQUENCE IF NOT EXISTS state_writes")
        found = migrate(connection)
    except psycopg.Error as exc:
        connection.close()
        raise StateError(f"state.url {state.url}: {_reason(exc)}") from None
    except BaseException:
        connection.close()
        raise
    if 0 < found < SCHEMA_VERSION:
        log.info("state.migrated", schema_before=found, schema_now=SCHEMA_VERSION)
    return connection


def connect_readonly(state: StateConfig) -> PostgresConnection | None:
    """For commands that change nothing; None when the database holds no state yet. An older
    schema is not migrated here (a read must not change the database): `sync` or `run` does."""
    connection = PostgresConnection(open_connection(state, application="connector (read)"))
    connection.raw.execute("SET default_transaction_read_only = on")
    found = version_of(connection)
    if found == 0:
        connection.close()
        return None
    if found < SCHEMA_VERSION:
        connection.close()
        raise StateError(
            f"state.url {state.url}: the state is of schema {found}; this connector reads "
            f"{SCHEMA_VERSION}: run `connector sync` or `connector run` once to migrate it"
        )
    return connection


def try_lock(connection: PostgresConnection, key: int) -> bool:
    row = connection.raw.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
    return bool(row and row[0])


def acquire_session_lock(connection: PostgresConnection, where: str) -> None:
    """For a `sync`: apply only when no other process (a leading replica) does."""
    if not try_lock(connection, connection.leader_key):
        raise StateLockedError(
            f"another connector process is using the state at {where}; only one sync or "
            "leading run may apply at a time"
        )


def lock_holder(connection: PostgresConnection, key: int) -> int | None:
    """The backend pid holding a session advisory lock, if any session holds it."""
    row = connection.raw.execute(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = %s AND objid = %s AND objsubid = 1",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    ).fetchone()
    return int(row[0]) if row else None


def vacuum(connection: PostgresConnection) -> None:
    """Reclaim the old versions of rows a scrub replaced or deleted (PostgreSQL keeps them
    until a vacuum: it has no secure_delete). Cheap when nothing changed."""
    connection.raw.execute(f"VACUUM {', '.join(TABLE_NAMES)}")
