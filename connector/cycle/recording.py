"""What a target's run leaves for the next cycle, `approve` and the operator: the vendor's
health (degraded after failing cycles in a row), the last full reconcile, what was held back."""

from __future__ import annotations

from datetime import datetime

import structlog

from connector.cycle.result import CycleResult
from connector.planning.held import HeldPlan
from connector.state.target import TargetState
from connector.targets.base import Target

log = structlog.get_logger(__name__)


def record(
    result: CycleResult,
    state: TargetState,
    target: Target,
    now: datetime,
    *,
    sources_failed: bool,
    whole_picture: bool,
) -> None:
    """What the next cycle and `approve` need: the vendor's health, the last full reconcile,
    what was held back (`whole_picture`: not an on-demand sync of one person)."""
    report = result.applied
    assert report is not None
    vendor_failed = (
        result.vendor_unreadable
        or report.vendor_unavailable
        or (report.transient_failures > 0 and report.succeeded == 0)
    )
    track_vendor_health(
        state, result, vendor_failed, target.config.safety.degraded_after_cycles, now
    )
    # Cut short, the repairs it found are not all made: the next cycle lists the vendor again.
    if result.full_reconcile and not sources_failed and not result.interrupted:
        state.set_last_full_reconcile(now)
    if whole_picture:
        held = None
        if result.held_plan:
            held = HeldPlan(
                result.run_id,
                now.isoformat(timespec="seconds"),
                result.hold_reasons,
                result.held_plan,
            )
        state.set_held_plan(held)


def track_vendor_health(
    state: TargetState, result: CycleResult, vendor_failed: bool, degraded_after: int, now: datetime
) -> None:
    """Count cycles in a row in which the vendor failed; enough of them make us degraded."""
    failing = state.failing_cycles() + 1 if vendor_failed else 0
    state.set_failing_cycles(failing)
    was_degraded = state.degraded_since() is not None
    result.failing_cycles = failing
    result.degraded = failing >= degraded_after
    if result.degraded and not was_degraded:
        state.set_degraded_since(now)
        log.error("vendor.degraded", failing_cycles=failing)
    elif not result.degraded and was_degraded:
        state.set_degraded_since(None)
        log.info("vendor.recovered")
