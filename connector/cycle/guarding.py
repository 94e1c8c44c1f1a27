"""Between the plan and the target: the lifecycle rules a plan is made with, and the safety
rules that hold back what must wait (see planning/guard.py for the rules themselves)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

import structlog

from connector.config import Config, TargetConfig
from connector.cycle.result import CycleResult, SourceFailure
from connector.mapping.desired import Desired
from connector.people.model import SourceRead
from connector.planning.guard import (
    Held,
    approval_keys,
    hold_for_failed_sources,
    hold_for_newly_protected,
    hold_for_rekeys,
    hold_for_rollover,
    hold_for_thresholds,
    hold_for_updates,
    shrunken_sources,
    split_approved,
)
from connector.planning.objects import Known
from connector.planning.plan import DEPROVISIONING, ORDER, Plan, PlanRules

log = structlog.get_logger(__name__)


def plan_rules(config: Config, member_chunk_size: int, now: datetime) -> PlanRules:
    lifecycle = config.lifecycle
    return PlanRules(
        member_chunk_size=member_chunk_size,
        delete_after=timedelta(days=lifecycle.delete_after_days)
        if lifecycle.delete_accounts
        else None,
        protected_policy=lifecycle.protected_policy,
        delete_empty_groups=lifecycle.delete_empty_groups and lifecycle.delete_accounts,
        revoke_values=config.roles.revoke,
        now=now,
    )


def unhealthy_sources(
    reads: list[SourceRead], last_good: dict[str, int], min_percent: float
) -> dict[str, str]:
    """Sources that shrank since their last good read, or that say their read may be missing
    people: source name -> why."""
    unhealthy = shrunken_sources({r.source: len(r.persons) for r in reads}, last_good, min_percent)
    for read in reads:
        if read.suspect:
            why = "; ".join(read.suspect)
            earlier = unhealthy.get(read.source)
            unhealthy[read.source] = f"{earlier}; {why}" if earlier else why
    for name, why in unhealthy.items():
        log.warning("source.unhealthy", source=name, reason=why)
    return unhealthy


def release(plan: Plan, approved: frozenset[str], allow_deprovision: bool) -> tuple[Plan, Plan]:
    """(what passes the safety rules this cycle: approved steps, and with
    `--allow-deprovision` all deprovisioning; the rest)."""
    released, rest = split_approved(plan, approved)
    if released:
        log.warning("guard.released", reason="approved", **_counts(released))
    if allow_deprovision:
        # Deprovisioning passes the safety rules for this run; updates keep theirs.
        rest, freed = rest.split(lambda op: op.kind in DEPROVISIONING)
        if freed:
            log.warning(
                "guard.released",
                reason="allowed for this run (--allow-deprovision)",
                **_counts(freed),
            )
        released.operations.extend(freed.operations)
    return released, rest


def hold(
    plan: Plan,
    config: Config,
    target: TargetConfig,
    known: Known,
    unhealthy: dict[str, str],
    now: datetime,
) -> tuple[Plan, list[Held]]:
    """Every safety rule in turn: (what may run, what each rule held back)."""
    safety = target.safety
    held: list[Held | None] = []
    plan, one = hold_for_rekeys(plan, config.lifecycle.rekey == "ask", unhealthy)
    held.append(one)
    plan, one = hold_for_newly_protected(plan, safety.max_newly_protected, known)
    held.append(one)
    plan, one = hold_for_failed_sources(plan, unhealthy)
    held.append(one)
    plan, one = hold_for_rollover(plan, config.lifecycle.rollover_hold, now)
    held.append(one)
    plan, one = hold_for_thresholds(plan, safety, known)
    held.append(one)
    plan, one = hold_for_updates(plan, safety.max_updates, known)
    held.append(one)
    return plan, [h for h in held if h is not None]


def guard(
    result: CycleResult,
    config: Config,
    target: TargetConfig,
    known: Known,
    now: datetime,
    *,
    last_good: dict[str, int],
    approved: frozenset[str] = frozenset(),
    allow_deprovision: bool = False,
) -> None:
    """Let the safety rules hold back what must wait in `result.plan`; record what and why."""
    result.unhealthy_sources = unhealthy_sources(
        result.reads, last_good, config.safety.min_source_percent
    )
    released, rest = release(result.plan, approved, allow_deprovision)
    result.approved_steps = len(approval_keys(released) & approved) if approved else 0
    failed = {f.source: f"failed ({f.reason})" for f in result.source_failures}
    rest, held = hold(rest, config, target, known, failed | result.unhealthy_sources, now)
    result.plan = Plan(
        sorted(released.operations + rest.operations, key=lambda op: ORDER.index(op.kind))
    )
    for one in held:
        result.held_plan.operations.extend(one.plan.operations)
        counts = _counts(one.plan)
        for kind, count in counts.items():
            result.held_back[kind] = result.held_back.get(kind, 0) + count
        result.hold_reasons.append(one.reason)
        log.warning("guard.held", reason=one.reason, **counts)


def _counts(plan: Plan) -> dict[str, int]:
    return {kind: count for kind, count in plan.counts().items() if count}


def restrict_to(plan: Plan, users: frozenset[str], desired: Desired) -> Plan:
    """Only what concerns these users: their account, their memberships, their schools."""
    schools = {code for code, group in desired.groups.items() if group.members & users}
    operations = []
    for op in plan.operations:
        if op.kind in (
            "create_user",
            "rekey_user",
            "update_user",
            "grant_values",
            "revoke_values",
            "deactivate_user",
            "delete_user",
        ):
            if op.target in users:
                operations.append(op)
        elif op.kind in ("add_members", "remove_members"):
            members = tuple(m for m in op.members if m in users)
            if members:
                operations.append(dataclasses.replace(op, members=members))
        elif op.kind in ("create_group", "update_group") and op.target in schools:
            operations.append(op)
    return Plan(operations)


__all__ = ["SourceFailure", "guard", "plan_rules", "restrict_to"]
