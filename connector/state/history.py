"""The audit trail: what was done to each object (per target and externalId), when, in which
run and under which approval - the names of the attributes changed, never their values.

A change's row is written with the change itself, in the same transaction (or batch): the
applying code writes the row first, and the state change that follows commits both. Rows are
kept `state.history_days` (pruned once per cycle, by the index on `at`), follow an account that
moves to its person's new key, and are deleted with a person who becomes protected (nothing
about a protected person is kept: no row is ever written for their removal either).

The ops: create, link, update, reactivate, deactivate, delete, rekey, grant and revoke (role or
entitlement values: the paths), member_add and member_remove (on the user's history, naming
the group: a school's name and code are no personal data), and for a file target row_add,
row_change (the columns changed) and row_remove. Outcomes: applied, failed, conflict.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.planning.guard import approval_keys
from connector.planning.plan import Operation, Plan
from connector.state.database import Database
from connector.state.links import Links, now_utc


@dataclass(frozen=True, slots=True)
class Change:
    """One row to write: what happened to one object."""

    external_id: str
    op: str
    attributes: tuple[str, ...] = ()
    outcome: str = "applied"
    approval_id: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One row as read back, with who approved it (from `approvals`) where it was approved."""

    target: str
    external_id: str
    at: str
    op: str
    attributes: tuple[str, ...]
    outcome: str
    run_id: str
    approval_id: str | None
    approved_by: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "external_id": self.external_id,
            "at": self.at,
            "op": self.op,
            "attributes": list(self.attributes),
            "outcome": self.outcome,
            "run_id": self.run_id,
            "approval_id": self.approval_id,
            "approved_by": self.approved_by,
        }


_INSERT = (
    "INSERT INTO history (target, external_id, at, op, attributes, outcome, run_id, "
    "approval_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


class TargetHistory:
    """One target's audit trail, written while a plan is applied."""

    def __init__(self, database: Database, target: str) -> None:
        self.database = database
        self.target = target
        self._db = database._db
        self.run_id = ""
        self._approval_id: str | None = None
        self._approved: frozenset[str] = frozenset()

    def begin(
        self, run_id: str, approval_id: str | None = None, approved: frozenset[str] = frozenset()
    ) -> None:
        """The run the rows that follow belong to, and the approval (with the held steps it
        released) that a change is recorded under when it is one of those steps."""
        self.run_id = run_id
        self._approval_id = approval_id
        self._approved = approved if approval_id else frozenset()

    def approval_for(self, op: Operation, member: str | None = None) -> str | None:
        """The approval this operation (for one member: its step) was released by, if any."""
        if not self._approved:
            return None
        one = replace(op, members=(member,)) if member is not None else op
        return self._approval_id if approval_keys(Plan([one])) & self._approved else None

    def record(self, changes: Iterable[Change]) -> None:
        """Write rows: inside the open transaction or batch if there is one, so they commit
        with the change they describe."""
        at = now_utc()
        rows = [
            (
                self.target,
                change.external_id,
                at,
                change.op,
                json.dumps(list(change.attributes), ensure_ascii=False),
                change.outcome,
                self.run_id,
                change.approval_id,
            )
            for change in changes
        ]
        if rows:
            with self._open():
                self._db.executemany(_INSERT, rows)

    def drop(self, external_ids: Iterable[str]) -> None:
        """A person now protected leaves no trail (secure_delete overwrites the rows)."""
        wanted = [(self.target, ext) for ext in external_ids]
        if wanted:
            with self._open():
                self._db.executemany(
                    "DELETE FROM history WHERE target = ? AND external_id = ?", wanted
                )

    def _open(self) -> Any:
        return nullcontext() if self._db.in_transaction else self.database.transaction()


def _entry(row: tuple[Any, ...]) -> HistoryEntry:
    target, ext, at, op, attributes, outcome, run_id, approval_id, approved_by = row
    return HistoryEntry(
        target,
        ext,
        at,
        op,
        tuple(json.loads(attributes)),
        outcome,
        run_id,
        approval_id,
        approved_by,
    )


@dataclass(frozen=True, slots=True)
class KnownObject:
    """An object the state file knows of (or knew of, by its history)."""

    target: str
    kind: str  # user, group, or gone (only its history is left)
    external_id: str


class History:
    """The whole file's audit trail: reading it (`connector history`), and its retention."""

    def __init__(self, database: Database) -> None:
        self._db = database._db
        self.database = database

    def entries(
        self, objects: Iterable[tuple[str, str]], since: datetime | None = None
    ) -> list[HistoryEntry]:
        """The rows of these (target, externalId) in time order (as written, within a
        second); each read by the index on (target, external_id, at)."""
        found: list[tuple[int, HistoryEntry]] = []
        for target, ext in sorted(set(objects)):
            rows = self._db.execute(
                "SELECT h.rowid, h.target, h.external_id, h.at, h.op, h.attributes, h.outcome, "
                "h.run_id, h.approval_id, a.requested_by FROM history h "
                "LEFT JOIN approvals a ON a.id = h.approval_id "
                "WHERE h.target = ? AND h.external_id = ? AND h.at >= ?",
                (target, ext, _iso(since) if since else ""),
            )
            found += [(row[0], _entry(row[1:])) for row in rows]
        found.sort(key=lambda item: (item[1].at, item[0]))
        return [entry for _, entry in found]

    def objects(self, external_id: str, *, prefix: bool = False) -> list[KnownObject]:
        """Objects whose externalId is this one (or, with `prefix`, starts with it)."""
        test, one = (
            ("substr(external_id, 1, ?) = ?", (len(external_id), external_id))
            if prefix
            else ("external_id = ?", (external_id,))
        )
        rows = self._db.execute(
            f"SELECT target, 'user', external_id FROM users WHERE {test} "  # noqa: S608 (fixed)
            f"UNION SELECT target, 'group', external_id FROM groups WHERE {test} "
            f"UNION SELECT DISTINCT target, 'gone', external_id FROM history WHERE {test}",
            one * 3,
        )
        return _without_gone_duplicates(KnownObject(*row) for row in rows)

    def named(self, query: str) -> list[KnownObject]:
        """Users whose recorded userName or an e-mail address is `query` (case-insensitive),
        and people the connector generated that username for (kept after the account is gone,
        so their history is found by it too)."""
        folded = query.casefold()
        targets = [t for (t,) in self._db.execute("SELECT DISTINCT target FROM users")]
        found = {
            KnownObject(target, "user", ext)
            for target in targets
            for ext in Links(self.database, target).named(folded)
        }
        for target, ext, name in self._db.execute(
            "SELECT target, external_id, user_name FROM usernames"
        ):
            if name.casefold() == folded:
                found.add(KnownObject(target, "gone", ext))
        return _without_gone_duplicates(found)

    def prune(self, days: int, now: datetime | None = None) -> int:
        """Delete rows older than `days`; how many went."""
        cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
        with self.database.transaction():
            cursor = self._db.execute("DELETE FROM history WHERE at < ?", (_iso(cutoff),))
        return int(cursor.rowcount)


def _iso(when: datetime) -> str:
    """As `at` is written (UTC, seconds), so rows compare as text."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="seconds")


def _without_gone_duplicates(objects: Iterable[KnownObject]) -> list[KnownObject]:
    """An object still linked is listed once, as a user or group, not also by its history."""
    found = sorted(set(objects), key=lambda o: (o.target, o.external_id, o.kind == "gone"))
    linked = {(o.target, o.external_id) for o in found if o.kind != "gone"}
    return [o for o in found if o.kind != "gone" or (o.target, o.external_id) not in linked]
