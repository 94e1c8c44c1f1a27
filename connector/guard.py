"""Safety rules on a plan: what must not run this cycle, and why.

- No deprovisioning is derived from a source that failed.
- Inside the school-year rollover window, deactivations and deletions caused by missing
  placements wait, so the end-of-year roster drop does not deprovision everyone.
Taking a protected person off the vendor is never held back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from connector.config import RolloverHoldConfig
from connector.plan import CAUSED_BY_MISSING_PLACEMENTS, DEPROVISIONING, Operation, Plan

SWEDEN = ZoneInfo("Europe/Stockholm")


@dataclass(frozen=True, slots=True)
class Held:
    plan: Plan  # what was held back
    reason: str


def in_rollover_window(window: RolloverHoldConfig, when: datetime) -> bool:
    """Inclusive, by the Swedish calendar date; a window may span New Year."""
    today = when.astimezone(SWEDEN).date()

    def day(month_day: str) -> date:
        month, day_of_month = (int(x) for x in month_day.split("-"))
        return date(today.year, month, min(day_of_month, 28 if month == 2 else day_of_month))

    start, end = day(window.start), day(window.end)
    if start <= end:
        return start <= today <= end
    return today >= start or today <= end


def hold_for_failed_sources(plan: Plan, failed: list[str]) -> tuple[Plan, Held | None]:
    if not failed:
        return plan, None

    def hold(op: Operation) -> bool:
        return op.kind in DEPROVISIONING and op.reason != "protected"

    kept, held = plan.split(hold)
    reason = "source failed: " + ", ".join(failed)
    return kept, (Held(held, reason) if held else None)


def hold_for_rollover(
    plan: Plan, window: RolloverHoldConfig | None, now: datetime
) -> tuple[Plan, Held | None]:
    if window is None or not in_rollover_window(window, now):
        return plan, None

    def hold(op: Operation) -> bool:
        return op.kind in DEPROVISIONING and op.reason in CAUSED_BY_MISSING_PLACEMENTS

    kept, held = plan.split(hold)
    reason = f"school-year rollover window {window.start} to {window.end}"
    return kept, (Held(held, reason) if held else None)
