"""The state of a test's workspace read and changed directly, whichever holds it: the SQLite
file or a PostgreSQL database (through the connector's own connection, so the statements are
written once, in SQLite's SQL, as the connector's are)."""

from __future__ import annotations

from typing import Any

from connector.state.schema import TABLE_NAMES
from connector.state.store import StateStore
from tests.support.workspace import Workspace


def state_execute(workspace: Workspace, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
    """One statement in a transaction of its own; the rows it returned."""
    state = StateStore.open(workspace.state_config())
    try:
        with state.transaction():
            cursor = state._db.execute(sql, params)
            return list(cursor) if cursor.description else []
    finally:
        state.close()


def state_contents(workspace: Workspace) -> bytes:
    """Everything the state holds: the SQLite file's bytes (its WAL too), or every row of
    every table in PostgreSQL as text."""
    if workspace.state_url is None:
        return b"".join(
            p.read_bytes() for p in workspace.root.iterdir() if p.name.startswith("state.db")
        )
    rows = []
    for table in TABLE_NAMES:
        every_row = f"SELECT * FROM {table}"  # noqa: S608 (the schema's own names)
        rows += [str(row) for row in state_execute(workspace, every_row)]
    return "\n".join(rows).encode()
