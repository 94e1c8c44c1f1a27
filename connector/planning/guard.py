"""Safety rules on a plan: what must not run this cycle, and why.

- No deprovisioning is derived from a source that failed, or that returned far fewer people
  than its last good read.
- A cycle that would deactivate, delete or remove memberships beyond the thresholds holds back
  all of its deprovisioning until an admin approves it.
- Inside the school-year rollover window, deactivations and deletions caused by missing
  placements wait, so the end-of-year roster drop does not deprovision everyone.
- A cycle that would update more accounts than the limits allow (a mapping edit rewrites
  every account) holds back its updates until an admin approves them.
- A newly protected person is taken off the vendor at once, whatever the other rules say -
  unless so many become protected in one cycle that the marking itself is suspect (an export
  whose values changed): then nothing about them is sent until an admin approves it.
- A re-key (an account moving to its person's new key) waits for an admin's approval under
  `lifecycle.rekey: ask`, and always while a source is unhealthy.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from connector.config import Limit, RolloverHoldConfig, SafetyConfig
from connector.planning.objects import VALUE_PATHS, Known, values_of
from connector.planning.plan import CAUSED_BY_MISSING_PLACEMENTS, DEPROVISIONING, Operation, Plan

SWEDEN = ZoneInfo("Europe/Stockholm")


@dataclass(frozen=True, slots=True)
class Held:
    plan: Plan  # what was held back
    reason: str


def in_rollover_window(window: RolloverHoldConfig, when: datetime) -> bool:
    """Inclusive, by the Swedish calendar date; a window may span New Year."""
    today = when.astimezone(SWEDEN).date()

    def day(month_day: str) -> date:
        # 02-29 is the last day of February: the 29th in a leap year, the 28th otherwise.
        month, day_of_month = (int(x) for x in month_day.split("-"))
        last = calendar.monthrange(today.year, month)[1]
        return date(today.year, month, min(day_of_month, last))

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


# What a safety rule can hold back, and an approval release: one key per step (see below).
GUARDED: frozenset[str] = DEPROVISIONING | {"update_user", "update_group", "rekey_user"}


def approval_keys(plan: Plan) -> frozenset[str]:
    """What approving this (held) plan releases: one key per deprovisioning step or update."""
    keys: set[str] = set()
    for op in plan.operations:
        if op.kind == "remove_members":
            keys.update(f"remove_members:{op.target}:{member}" for member in op.members)
        elif op.kind in GUARDED:
            keys.add(f"{op.kind}:{op.target}")
    return frozenset(keys)


def split_approved(plan: Plan, approved: frozenset[str]) -> tuple[Plan, Plan]:
    """(approved steps, everything else). Approved steps bypass the safety rules."""
    released, rest = Plan(), Plan()
    for op in plan.operations:
        if op.kind == "remove_members":
            ok = tuple(m for m in op.members if f"remove_members:{op.target}:{m}" in approved)
            other = tuple(m for m in op.members if m not in ok)
            if ok:
                released.operations.append(replace(op, members=ok))
            if other:
                rest.operations.append(replace(op, members=other))
        elif op.kind in GUARDED and f"{op.kind}:{op.target}" in approved:
            released.operations.append(op)
        else:
            rest.operations.append(op)
    return released, rest


def _exceeds(count: int, limit: Limit, base: int) -> bool:
    """More than the count *and* more than the percentage of `base`."""
    return count > limit.count and 100 * count / max(base, 1) > limit.percent


def _share(count: int, limit: Limit, base: int, of: str) -> str:
    return (
        f"more than {limit.count}, and {100 * count / max(base, 1):.1f}% of {base} {of} "
        f"is more than {limit.percent:g}%"
    )


def hold_for_newly_protected(plan: Plan, limit: Limit, known: Known) -> tuple[Plan, Held | None]:
    """Hold everything about newly protected persons when there are suspiciously many."""
    concerned = {
        op.target
        for op in plan.operations
        if op.reason == "protected" and op.kind in ("deactivate_user", "delete_user")
    }
    concerned |= {
        member
        for op in plan.operations
        if op.kind == "remove_members" and op.reason == "protected"
        for member in op.members
    }
    base = len(known.users)
    if not _exceeds(len(concerned), limit, base):
        return plan, None

    def hold(op: Operation) -> bool:
        # Their removals, and a group emptied by them: they may not really be protected.
        return op.reason == "protected" or op.kind == "delete_group"

    kept, held = plan.split(hold)
    reason = (
        f"{len(concerned)} newly protected persons ({_share(len(concerned), limit, base, 'users')}"
        "): has the export's protected-identity marking changed? Nothing is sent about them "
        "until approved"
    )
    return kept, (Held(held, reason) if held else None)


def hold_for_updates(plan: Plan, limit: Limit, known: Known) -> tuple[Plan, Held | None]:
    """Hold back every update when a cycle would update more than the limits allow."""
    updates = sum(op.kind in ("update_user", "update_group") for op in plan.operations)
    base = len(known.users) + len(known.groups)
    if not _exceeds(updates, limit, base):
        return plan, None
    kept, held = plan.split(lambda op: op.kind in ("update_user", "update_group"))
    reason = (
        f"threshold: {updates} updates ({_share(updates, limit, base, 'users and groups')}): "
        "a changed mapping or source? `connector approve` shows what would change"
    )
    return kept, Held(held, reason)


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
        (
            "role/entitlement revocations",
            sum(
                len(v)
                for op in counted
                if op.kind == "revoke_values"
                for v in op.attributes.values()
            ),
            safety.max_revocations,
            max(granted_values(known), 1),
            "granted values",
        ),
    )
    tripped = [
        f"{count} {what} ({_share(count, limit, base, of)})"
        for what, count, limit, base, of in checks
        if _exceeds(count, limit, base)
    ]
    if not tripped:
        return plan, None

    def hold(op: Operation) -> bool:
        return op.kind in DEPROVISIONING and op.reason != "protected"

    kept, held = plan.split(hold)
    return kept, Held(held, "threshold: " + "; ".join(tripped))


def granted_values(known: Known) -> int:
    """How many role and entitlement values the connector granted, all users together."""
    return sum(len(values_of(u.attributes, p)) for u in known.users.values() for p in VALUE_PATHS)


def hold_for_rekeys(plan: Plan, ask: bool, unhealthy: dict[str, str]) -> tuple[Plan, Held | None]:
    """Hold re-keys for approval (`ask`), or while a source is unhealthy (its people may seem
    gone only because it failed): each re-key with the memberships of its new key. The old
    account and the new person stay as they are meanwhile (the plan has neither a deactivation
    nor a create for them)."""
    rekeyed = {op.target for op in plan.operations if op.kind == "rekey_user"}
    if not rekeyed or not (ask or unhealthy):
        return plan, None
    kept, held = Plan(), Plan()
    for op in plan.operations:
        theirs = tuple(m for m in op.members if m in rekeyed)
        if op.kind == "rekey_user":
            held.operations.append(op)
        elif theirs:
            held.operations.append(replace(op, members=theirs))
            others = tuple(m for m in op.members if m not in rekeyed)
            if others:
                kept.operations.append(replace(op, members=others))
        else:
            kept.operations.append(op)
    if unhealthy:
        reason = "unhealthy source, re-keys wait: " + "; ".join(
            f"{name} {why}" for name, why in unhealthy.items()
        )
    else:
        reason = (
            f"re-key: {len(rekeyed)} account(s) would move to their person's new key "
            "(lifecycle.rekey: ask); `connector approve` shows them"
        )
    return kept, Held(held, reason)


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
