"""Requests a command leaves in the state file for a running daemon: `sync --only PERSON`.

What the operator typed (a source key, an e-mail, a username: personal data) is in the file only
from the request until the daemon takes it: taking it sets it to NULL in the same transaction
(the file overwrites deleted content, `secure_delete`, and the cycle that serves it truncates the
WAL). The result kept for the command is what `sync --only` prints: counts and opaque refs. The
command deletes the row once it has read it; the daemon removes rows nobody collected.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.state.database import Database
from connector.state.links import now_utc

# A request nobody collected (its command gave up or died) is removed after this long.
FORGET_AFTER = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class Request:
    id: str
    query: str
    targets: tuple[str, ...]  # empty: every target
    allow_deprovision: bool


@dataclass(frozen=True, slots=True)
class RequestResult:
    status: str  # pending, running, done
    exit_code: int | None
    text: str | None


class Requests:
    def __init__(self, database: Database) -> None:
        self.database = database
        self._db = database._db

    def add_sync_only(self, query: str, targets: tuple[str, ...], allow_deprovision: bool) -> str:
        ident = uuid.uuid4().hex[:12]
        options = {"targets": list(targets), "allow_deprovision": allow_deprovision}
        with self.database.transaction():
            self._db.execute(
                "INSERT INTO requests (id, kind, query, options, requested_at, status) "
                "VALUES (?, 'sync_only', ?, ?, ?, 'pending')",
                (ident, query, json.dumps(options), now_utc()),
            )
        return ident

    def take(self) -> list[Request]:
        """The daemon: the pending requests, now running; their query is gone from the file."""
        with self.database.transaction():
            rows = self._db.execute(
                "SELECT id, query, options FROM requests WHERE status = 'pending' "
                "ORDER BY requested_at, rowid"
            ).fetchall()
            self._db.executemany(
                "UPDATE requests SET status = 'running', query = NULL WHERE id = ?",
                [(row[0],) for row in rows],
            )
        taken = []
        for ident, query, raw in rows:
            options: dict[str, Any] = json.loads(raw)
            taken.append(
                Request(
                    ident,
                    query or "",
                    tuple(options.get("targets", [])),
                    bool(options.get("allow_deprovision")),
                )
            )
        return taken

    def finish(self, ident: str, exit_code: int, text: str) -> None:
        with self.database.transaction():
            self._db.execute(
                "UPDATE requests SET status = 'done', exit_code = ?, result = ?, finished_at = ? "
                "WHERE id = ?",
                (exit_code, text, now_utc(), ident),
            )

    def result(self, ident: str) -> RequestResult | None:
        row = self._db.execute(
            "SELECT status, exit_code, result FROM requests WHERE id = ?", (ident,)
        ).fetchone()
        return RequestResult(*row) if row else None

    def withdraw(self, ident: str) -> bool:
        """The command gives up: remove the request if no daemon took it yet (True), or its
        row whatever became of it (False: the daemon took it)."""
        with self.database.transaction():
            gone = self._db.execute(
                "DELETE FROM requests WHERE id = ? AND status = 'pending'", (ident,)
            ).rowcount
        return bool(gone)

    def delete(self, ident: str) -> None:
        with self.database.transaction():
            self._db.execute("DELETE FROM requests WHERE id = ?", (ident,))

    def forget_stale(self, now: datetime | None = None) -> None:
        """Requests nobody collected or served in time (their command gave up or died), and
        any a daemon took but never finished (it died)."""
        before = ((now or datetime.now(UTC)) - FORGET_AFTER).isoformat(timespec="seconds")
        with self.database.transaction():
            self._db.execute("DELETE FROM requests WHERE requested_at < ?", (before,))
