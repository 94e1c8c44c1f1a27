"""Safety rules on a plan: what must not run this cycle, and why.

- No deprovisioning is derived from a source that failed, or that returned far fewer people
  than its last good read.
- A cycle that would deactivate, delete or remove memberships beyond the thresholds holds back
  all of its deprovisioning until an admin approves it.
- Inside the school-year rollover window, deactivations and deletions caused by missing
  placements wait, so the end-of-year roster drop does not deprovision everyone.
Taking a protected person off the vendor is never held back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from connector.config import RolloverHoldConfig, SafetyConfig
from connector.plan import CAUSED_BY_MISSING_PLACEMENTS, DEPROVISIONING, Operation, Plan
from connector.state import Known

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


def hold_for_failed_sources(plan: Plan, failed: dict[str, str]) -> tuple[Plan, Held | None]:
    """`failed`: source name -> why it is not healthy."""
    if not failed:
        return plan, None

    def hold(op: Operation) -> bool:
        return op.kind in DEPROVISIONING and op.reason != "protected"

    kept, held = plan.split(hold)
    reason = "unhealthy source: " + "; ".join(f"{name} {why}" for name, why in failed.items())
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


def approval_keys(plan: Plan) -> frozenset[str]:
    """What approving this (held) plan releases: one key per deprovisioning step."""
    keys = set()
    for op in plan.operations:
        if op.kind == "remove_members":
            keys.update(f"remove_members:{op.target}:{member}" for member in op.members)
        elif op.kind in DEPROVISIONING:
            keys.add(f"{op.kind}:{op.target}")
    return frozenset(keys)


def split_approved(plan: Plan, approved: frozenset[str]) -> tuple[Plan, Plan]:
    """(approved deprovisioning, everything else). Approved steps bypass the safety rules."""
    released, rest = Plan(), Plan()
    for op in plan.operations:
        if op.kind == "remove_members":
            ok = tuple(m for m in op.members if f"remove_members:{op.target}:{m}" in approved)
            other = tuple(m for m in op.members if m not in ok)
            if ok:
                released.operations.append(replace(op, members=ok))
            if other:
                rest.operations.append(replace(op, members=other))
        elif op.kind in DEPROVISIONING and f"{op.kind}:{op.target}" in approved:
            released.operations.append(op)
        else:
            rest.operations.append(op)
    return released, rest


def hold_for_thresholds(plan: Plan, safety: SafetyConfig, known: Known) -> tuple[Plan, Held | None]:
    """Hold back all deprovisioning when a cycle would take away more than the limits allow."""
    counted = [op for op in plan.operations if op.reason != "protected"]
    users = max(len(known.users), 1)
    memberships = max(sum(len(g.members) for g in known.groups.values()), 1)
    checks = (
        (
            "deactivations",
            sum(op.kind == "deactivate_user" for op in counted),
            safety.max_deactivations,
            users,
            "users",
        ),
        (
            "deletions",
            sum(op.kind == "delete_user" for op in counted),
            safety.max_deletions,
            users,
            "users",
        ),
        (
            "membership removals",
            sum(len(op.members) for op in counted if op.kind == "remove_members"),
            safety.max_membership_removals,
            memberships,
            "memberships",
        ),
    )
    tripped = [
        f"{count} {what} (more than {limit.count}, and {100 * count / base:.1f}% of {base} {of} "
        f"is more than {limit.percent:g}%)"
        for what, count, limit, base, of in checks
        if count > limit.count and 100 * count / base > limit.percent
    ]
    if not tripped:
        return plan, None

    def hold(op: Operation) -> bool:
        return op.kind in DEPROVISIONING and op.reason != "protected"

    kept, held = plan.split(hold)
    return kept, Held(held, "threshold: " + "; ".join(tripped))


def shrunken_sources(
    counts: dict[str, int], last_good: dict[str, int], min_percent: float
) -> dict[str, str]:
    """Sources that returned far fewer people than their last good read, with the reason."""
    unhealthy = {}
    for source, count in counts.items():
        previous = last_good.get(source)
        if previous and count < previous * min_percent / 100:
            unhealthy[source] = (
                f"returned {count} persons, {previous} at the last good read "
                f"(below {min_percent:g}%)"
            )
    return unhealthy
