"""Approvals between `connector approve` and the cycle that applies them.

Beside a running daemon, `approve` records an approval (state/approvals.py) and wakes the daemon;
its next cycle takes every pending approval of each target (`take_approvals`), lets exactly the
approved steps through the safety rules, and marks them applied with its run id
(`settle_approvals`). An approval expires instead when none of the steps it approved is held
back, or in the cycle's plan, any more (the source recovered, or `--allow-deprovision` let them
through), or when no cycle took it within `APPROVAL_MAX_AGE` (24 hours): what an operator saw
and approved a day ago is not what they would approve now.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog

from connector.cycle.result import CycleResult
from connector.planning.guard import approval_keys
from connector.planning.held import HeldPlan
from connector.state.approvals import Approval
from connector.state.store import StateStore

log = structlog.get_logger(__name__)

APPROVAL_MAX_AGE = timedelta(hours=24)


@dataclass(slots=True)
class Taken:
    """What a cycle applies: the approved steps and approvals' ids, per target."""

    approved: dict[str, frozenset[str]] = field(default_factory=dict)
    # The newest approval per target (the one a change applied is recorded under).
    approval_ids: dict[str, str] = field(default_factory=dict)
    # Every approval taken, per target (all are settled with the run).
    taken: dict[str, list[str]] = field(default_factory=dict)


def expiry_reason(approval: Approval, held: HeldPlan | None, now: datetime) -> str | None:
    """Why a pending approval is no longer to be applied; None if it is."""
    requested = datetime.fromisoformat(approval.requested_at)
    if now - requested > APPROVAL_MAX_AGE:
        hours = APPROVAL_MAX_AGE.total_seconds() / 3600
        return f"not applied within {hours:g} hours"
    if held is None or not approval.keys & approval_keys(held.plan):
        return "nothing it approved is held back any more"
    return None


def take_approvals(state: StateStore, targets: list[str], now: datetime | None = None) -> Taken:
    """The pending approvals of these targets a cycle is to apply; the stale ones expire."""
    now = now or datetime.now(UTC)
    taken = Taken()
    for name in targets:
        tstate = state.target(name)
        pending = tstate.pending_approvals()
        if not pending:
            continue
        held = tstate.held_plan()
        for approval in pending:
            why = expiry_reason(approval, held, now)
            if why is not None:
                tstate.settle_approvals([approval.id], "expired")
                log.warning("approval.expired", approval_id=approval.id, target=name, reason=why)
                continue
            taken.approved[name] = taken.approved.get(name, frozenset()) | approval.keys
            taken.approval_ids[name] = approval.id
            taken.taken.setdefault(name, []).append(approval.id)
    return taken


def settle_approvals(state: StateStore, taken: Taken, results: list[CycleResult]) -> None:
    """After the cycle: the approvals it took are applied in its run - or expired, when none of
    the steps they approved was in its plan any more (nothing left for them to let through)."""
    for result in results:
        ids = taken.taken.get(result.target)
        if not ids:
            continue
        tstate = state.target(result.target)
        if not result.approved_steps:
            tstate.settle_approvals(ids, "expired")
            for ident in ids:
                log.warning(
                    "approval.expired",
                    approval_id=ident,
                    target=result.target,
                    reason="none of the steps it approved was still to be done",
                )
            continue
        tstate.settle_approvals(ids, "applied", result.run_id)
        for ident in ids:
            log.info(
                "approval.applied",
                approval_id=ident,
                target=result.target,
                run_id=result.run_id,
                outcome=result.outcome,
                operations=result.approved_steps,
            )
