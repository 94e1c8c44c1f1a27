"""Approvals of held plans in the state file: who approved what, when, and what became of it.

`connector approve` records one (beside a running daemon it stays `pending` until the daemon's
next cycle of that target takes it; without a daemon the command applies it at once), and the
cycle that applied it marks it `applied` with its run id - or `expired`, when what it approved
is no longer held back or it waited too long (see connector/cycle/approvals.py). `applied_at`
is when it was settled either way. `keys` are the approved steps (planning/guard.py
`approval_keys`): operation kinds and opaque externalIds, never a name.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from connector.state.dialect import StateConnection
from connector.state.links import now_utc

ApprovalStatus = Literal["pending", "applied", "expired"]

_COLUMNS = (
    "id, target, held_run_id, keys, requested_by, requested_at, status, applied_at, applied_run_id"
)


@dataclass(frozen=True, slots=True)
class Approval:
    id: str
    target: str
    held_run_id: str
    keys: frozenset[str]
    requested_by: str
    requested_at: str  # ISO 8601, UTC
    status: ApprovalStatus
    applied_at: str | None = None
    applied_run_id: str | None = None


def _approval(row: tuple[Any, ...]) -> Approval:
    ident, target, held_run_id, keys, by, at, status, applied_at, applied_run_id = row
    return Approval(
        ident,
        target,
        held_run_id,
        frozenset(json.loads(keys)),
        by,
        at,
        status,
        applied_at,
        applied_run_id,
    )


def new_approval_id() -> str:
    return uuid.uuid4().hex[:12]


class ApprovalRecords:
    """One target's approvals (mixed into TargetState)."""

    target: str
    _db: StateConnection

    if TYPE_CHECKING:

        def transaction(self) -> Any: ...

    def record_approval(
        self, held_run_id: str, keys: frozenset[str], requested_by: str
    ) -> Approval:
        """A new pending approval of these held steps."""
        approval = Approval(
            new_approval_id(), self.target, held_run_id, keys, requested_by, now_utc(), "pending"
        )
        with self.transaction():
            self._db.execute(
                f"INSERT INTO approvals ({_COLUMNS}) "  # noqa: S608 (fixed)
                "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)",
                (
                    approval.id,
                    approval.target,
                    held_run_id,
                    json.dumps(sorted(keys)),
                    requested_by,
                    approval.requested_at,
                    approval.status,
                ),
            )
        return approval

    def pending_approvals(self) -> list[Approval]:
        """This target's approvals no cycle has taken yet, oldest first."""
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM approvals "  # noqa: S608 (fixed)
            "WHERE target = ? AND status = 'pending' ORDER BY requested_at, rowid",
            (self.target,),
        ).fetchall()
        return [_approval(row) for row in rows]

    def settle_approvals(
        self, ids: list[str], status: ApprovalStatus, run_id: str | None = None
    ) -> None:
        """Mark pending approvals applied (in run `run_id`) or expired, now."""
        with self.transaction():
            self._db.executemany(
                "UPDATE approvals SET status = ?, applied_at = ?, applied_run_id = ? "
                "WHERE id = ? AND target = ? AND status = 'pending'",
                [(status, now_utc(), run_id, ident, self.target) for ident in ids],
            )


def recent_approvals(db: StateConnection, settled: int = 5) -> list[Approval]:
    """Every pending approval, and the last `settled` applied or expired ones; newest first."""
    pending = db.execute(
        f"SELECT {_COLUMNS} FROM approvals WHERE status = 'pending' "  # noqa: S608 (fixed)
        "ORDER BY requested_at DESC, rowid DESC"
    ).fetchall()
    done = db.execute(
        f"SELECT {_COLUMNS} FROM approvals WHERE status != 'pending' "  # noqa: S608 (fixed)
        "ORDER BY applied_at DESC, rowid DESC LIMIT ?",
        (settled,),
    ).fetchall()
    return [_approval(row) for row in pending + done]
