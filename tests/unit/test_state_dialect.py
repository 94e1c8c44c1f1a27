"""The state's SQL is written once, in SQLite's dialect; these are the only rewrites PostgreSQL
needs (state/dialect.py). Each one is run for real against PostgreSQL by
tests/integration/test_state_postgres.py and the lifecycle suite."""

from __future__ import annotations

import re

from connector.state.dialect import POSTGRES_TABLES, SQLITE_TABLES, postgres_sql
from connector.state.schema import TABLES


def test_placeholders_and_percent_signs() -> None:
    assert postgres_sql("SELECT a FROM t WHERE b = ? AND c LIKE 'x:%'") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x:%%'"
    )
    assert postgres_sql("SELECT '?' FROM t WHERE b = ?") == "SELECT '?' FROM t WHERE b = %s"


def test_insert_or_ignore_and_json_extract() -> None:
    assert postgres_sql("INSERT OR IGNORE INTO m VALUES (?, ?)") == (
        "INSERT INTO m VALUES (%s, %s) ON CONFLICT DO NOTHING"
    )
    assert postgres_sql("SELECT json_extract(attributes, '$.userName') FROM users") == (
        "SELECT (attributes::jsonb ->> 'userName') FROM users"
    )
    assert postgres_sql(SQLITE_TABLES) == POSTGRES_TABLES


def test_tables_keep_or_get_a_rowid_as_in_sqlite() -> None:
    statements = {
        re.search(r"CREATE TABLE IF NOT EXISTS (\w+)", s)[1]: postgres_sql(s)  # type: ignore[index]
        for s in TABLES.split(";")
        if "CREATE TABLE" in s
    }
    assert "WITHOUT ROWID" not in "".join(statements.values())
    assert "rowid BIGINT GENERATED" in statements["runs"]  # listed in the order written
    assert "rowid" not in statements["memberships"]  # WITHOUT ROWID in SQLite
