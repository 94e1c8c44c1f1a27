"""One cycle, as a story: read the sources, decide who is in scope, map, plan, apply, record."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from connector.config import Config
from connector.errors import SourceError
from connector.mapping.desired import Desired, build_desired
from connector.mapping.profile import Mapping
from connector.people.externalid import ExternalIdMaker
from connector.people.model import ReadContext, SourceIssue, SourceRead
from connector.people.scope import apply_scope
from connector.planning.guard import (
    hold_for_failed_sources,
    hold_for_newly_protected,
    hold_for_rollover,
    hold_for_thresholds,
    hold_for_updates,
    shrunken_sources,
    split_approved,
)
from connector.planning.objects import Known, addresses
from connector.planning.plan import DEPROVISIONING, ORDER, Plan, PlanRules, make_plan
from connector.service import memory
from connector.sources import build_sources
from connector.sources.health import (
    hold_all_but_protected,
    marking_digests,
    read_problem,
    report_new_marking_values,
)
from connector.state.store import StateStore
from connector.targets.scim.apply import Applier, ApplyReport, VendorIndex, failure_key
from connector.targets.scim.client import ScimClient, ScimError
from connector.targets.scim.reconcile import (
    ImplausibleListing,
    Observation,
    observe_vendor,
    resolve_interrupted_creates,
)

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_HELD = 3
LAST_FULL_RECONCILE = "last_full_reconcile"


@dataclass(slots=True)
class SourceFailure:
    source: str
    reason: str


@dataclass(slots=True)
class CycleResult:
    run_id: str
    plan: Plan
    desired: Desired
    reads: list[SourceRead]
    source_failures: list[SourceFailure]
    held_back: dict[str, int] = field(default_factory=dict)
    hold_reasons: list[str] = field(default_factory=list)
    held_plan: Plan = field(default_factory=Plan)
    unhealthy_sources: dict[str, str] = field(default_factory=dict)
    deferred: int = 0
    vendor_unreadable: bool = False  # the vendor could not be listed for a full reconcile
    # Why the vendor could not be listed or worked with this cycle (for the operator).
    vendor_problem: str | None = None
    failing_cycles: int = 0
    degraded: bool = False
    full_reconcile: bool = False
    applied: ApplyReport | None = None
    requests: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0

    @property
    def issues(self) -> list[SourceIssue]:
        return [i for r in self.reads for i in r.issues] + self.desired.issues

    @property
    def vendor_trouble(self) -> str | None:
        """Why the vendor could not be listed, or worked with as a whole, this cycle."""
        return self.vendor_problem or (self.applied.vendor_error if self.applied else None)

    @property
    def exit_code(self) -> int:
        if (
            self.source_failures
            or self.degraded
            or self.vendor_unreadable
            or (self.applied and (self.applied.failures or self.applied.vendor_unavailable))
        ):
            return EXIT_FAILED
        if self.held_back:
            return EXIT_HELD
        return EXIT_OK

    @property
    def outcome(self) -> str:
        return {EXIT_OK: "success", EXIT_FAILED: "failed", EXIT_HELD: "held"}[self.exit_code]

    def summary(self) -> dict[str, Any]:
        persons = sum(len(r.persons) for r in self.reads)
        return {
            "run_id": self.run_id,
            "outcome": self.outcome,
            "persons_read": persons,
            "users_in_scope": len(self.desired.users),
            "groups_in_scope": len(self.desired.groups),
            "excluded": dict(sorted(self.desired.excluded.items())),
            "skipped_records": len(self.issues),
            "source_failures": [f.source for f in self.source_failures],
            "unhealthy_sources": sorted(self.unhealthy_sources),
            "planned": {k: v for k, v in self.plan.counts().items() if v},
            "held_back": self.held_back,
            "hold_reasons": self.hold_reasons,
            "full_reconcile": self.full_reconcile,
            "deferred": self.deferred,
            "degraded": self.degraded,
            "vendor_problem": self.vendor_trouble,
            "applied": dict(sorted(self.applied.counts.items())) if self.applied else {},
            "requests": dict(sorted(self.requests.items())),
            "duration_seconds": round(self.duration_seconds, 3),
        }


def read_sources(
    config: Config, state: StateStore | None = None, *, full: bool = True, only: str | None = None
) -> tuple[list[SourceRead], list[SourceFailure]]:
    """Read every source. `state` lets incremental sources read only what changed (unless
    `full`); they return what to keep for next time in `SourceRead.snapshot`."""
    reads: list[SourceRead] = []
    failures: list[SourceFailure] = []
    for source_config in config.sources:
        marking = getattr(source_config, "protected_identity", None)
        if marking is not None and marking.assume_not_protected:
            log.warning(
                "source.marking_assumed",
                source=source_config.name,
                consequence="this source carries no protected-identity marking; "
                "its people are treated as not protected",
            )
    ids = ExternalIdMaker(config.external_id)
    joined = set(config.join.sources) if config.join else set()
    for source in build_sources(config):
        context = ReadContext(full=full, only=only)
        if state is not None and not full:
            context.snapshot = state.load_snapshot(source.name) or None
            context.checkpoint = state.checkpoint_of(source.name)
        try:
            read = source.read(context)
        except SourceError as exc:
            log.error("source.failed", source=exc.source, reason=exc.reason)
            failures.append(SourceFailure(exc.source, exc.reason))
            continue
        for issue in read.issues:
            log.warning(
                "source.record_skipped",
                source=issue.source,
                location=issue.location,
                reason=issue.reason,
            )
        if only is None:
            # A read for one person is no picture of the whole.
            seen = state.marking_digests(read.source) if state is not None else ()
            report_new_marking_values(read.source, marking_digests(read, ids), seen)
            problem = read_problem(read, config.safety.max_skipped_percent)
            if problem:
                log.error("source.failed", source=read.source, reason=problem)
                failures.append(SourceFailure(read.source, problem))
                if read.source in joined:
                    continue  # a joined source that failed: the join holds everyone
                hold_all_but_protected(read)
        reads.append(read)
    return reads, failures


def plan_rules(config: Config, member_chunk_size: int, now: datetime) -> PlanRules:
    lifecycle = config.lifecycle
    return PlanRules(
        member_chunk_size=member_chunk_size,
        delete_after=timedelta(days=lifecycle.delete_after_days)
        if lifecycle.delete_accounts
        else None,
        protected_policy=lifecycle.protected_policy,
        delete_empty_groups=lifecycle.delete_empty_groups and lifecycle.delete_accounts,
        now=now,
    )


def desired_state(
    config: Config,
    mapping: Mapping,
    state: StateStore | None = None,
    *,
    full: bool = True,
    only: str | None = None,
) -> tuple[list[SourceRead], list[SourceFailure], Desired]:
    """Read the sources and work out what the vendor should hold. Writes nothing."""
    reads, failures = read_sources(config, state, full=full, only=only)
    scoped = apply_scope(config, reads)
    desired = build_desired(scoped, mapping, ExternalIdMaker(config.external_id))
    for issue in desired.issues:
        if issue.source == "join":
            event = "join.conflict"
        elif issue.location.startswith("school "):
            event = "mapping.school_renamed"
        else:
            event = "mapping.person_skipped"
        log.warning(event, location=issue.location, reason=issue.reason)
    return reads, failures, desired


def plan_cycle(
    config: Config,
    run_id: str,
    reads: list[SourceRead],
    failures: list[SourceFailure],
    desired: Desired,
    known: Known,
    now: datetime,
    *,
    last_good: dict[str, int] | None = None,
    approved: frozenset[str] = frozenset(),
    allow_deprovision: bool = False,
    only: frozenset[str] | None = None,
) -> CycleResult:
    """Plan against what is known, then let the safety rules hold back what must wait.

    `only`: the externalIds of the one person an on-demand sync is for.

    `approved` (from `connector approve`) releases exactly those held steps;
    `allow_deprovision` releases all deprovisioning for this cycle.
    """
    rules = plan_rules(config, config.vendor.member_chunk_size, now)
    plan = make_plan(
        desired.users,
        desired.groups,
        known,
        protected=desired.protected_ids,
        keep=desired.held_ids,
        rules=rules,
    )
    if only is not None:
        plan = restrict_to(plan, only, desired)
    result = CycleResult(run_id, plan, desired, reads, failures)
    counts = {r.source: len(r.persons) for r in reads}
    result.unhealthy_sources = shrunken_sources(
        counts, last_good or {}, config.safety.min_source_percent
    )
    for read in reads:
        if read.suspect:  # the source itself says its read may be missing people
            why = "; ".join(read.suspect)
            earlier = result.unhealthy_sources.get(read.source)
            result.unhealthy_sources[read.source] = f"{earlier}; {why}" if earlier else why
    for name, why in result.unhealthy_sources.items():
        log.warning("source.unhealthy", source=name, reason=why)
    released, rest = split_approved(plan, approved)
    if released:
        log.warning(
            "guard.released", reason="approved", **{k: v for k, v in released.counts().items() if v}
        )
    if allow_deprovision:
        # Deprovisioning passes the safety rules for this run; updates keep theirs.
        rest, freed = rest.split(lambda op: op.kind in DEPROVISIONING)
        if freed:
            log.warning(
                "guard.released",
                reason="allowed for this run (--allow-deprovision)",
                **{k: v for k, v in freed.counts().items() if v},
            )
        released.operations.extend(freed.operations)
    unhealthy = {f.source: f"failed ({f.reason})" for f in failures} | result.unhealthy_sources
    safety = config.safety
    rest, held_for_protected = hold_for_newly_protected(rest, safety.max_newly_protected, known)
    rest, held_for_sources = hold_for_failed_sources(rest, unhealthy)
    rest, held_for_rollover = hold_for_rollover(rest, config.lifecycle.rollover_hold, now)
    rest, held_for_thresholds = hold_for_thresholds(rest, safety, known)
    rest, held_for_updates = hold_for_updates(rest, safety.max_updates, known)
    result.plan = Plan(
        sorted(released.operations + rest.operations, key=lambda op: ORDER.index(op.kind))
    )
    for held in (
        held_for_protected,
        held_for_sources,
        held_for_rollover,
        held_for_thresholds,
        held_for_updates,
    ):
        if held is None:
            continue
        result.held_plan.operations.extend(held.plan.operations)
        counts = {k: v for k, v in held.plan.counts().items() if v}
        for kind, count in counts.items():
            result.held_back[kind] = result.held_back.get(kind, 0) + count
        result.hold_reasons.append(held.reason)
        log.warning("guard.held", reason=held.reason, **counts)
    return result


FAILING_CYCLES = "vendor.failing_cycles"
DEGRADED_SINCE = "vendor.degraded_since"


def track_vendor_health(
    state: StateStore, result: CycleResult, vendor_failed: bool, degraded_after: int, now: datetime
) -> None:
    """Count cycles in a row in which the vendor failed; enough of them make us degraded."""
    failing = int(state.get_meta(FAILING_CYCLES) or 0)
    failing = failing + 1 if vendor_failed else 0
    state.set_meta(FAILING_CYCLES, str(failing))
    was_degraded = bool(state.get_meta(DEGRADED_SINCE))
    result.failing_cycles = failing
    result.degraded = failing >= degraded_after
    if result.degraded and not was_degraded:
        state.set_meta(DEGRADED_SINCE, now.isoformat(timespec="seconds"))
        log.error("vendor.degraded", failing_cycles=failing)
    elif not result.degraded and was_degraded:
        state.set_meta(DEGRADED_SINCE, "")
        log.info("vendor.recovered")


def scrub_protected(state: StateStore, known: Known, protected: frozenset[str]) -> None:
    """A person the sources now mark protected keeps, in the state file, only what taking
    their account off the vendor needs (its id, whether it is active) - at once, not only once
    that succeeded, which may take cycles or an approval."""
    for ext in protected & known.users.keys():
        user = known.users[ext]
        if user.attributes.keys() - {"active"}:
            state.scrub_user(ext)
            user.attributes = {"active": user.active}


def restrict_to(plan: Plan, users: frozenset[str], desired: Desired) -> Plan:
    """Only what concerns these users: their account, their memberships, their schools."""
    schools = {code for code, group in desired.groups.items() if group.members & users}
    operations = []
    for op in plan.operations:
        if op.kind in ("create_user", "update_user", "deactivate_user", "delete_user"):
            if op.target in users:
                operations.append(op)
        elif op.kind in ("add_members", "remove_members"):
            members = tuple(m for m in op.members if m in users)
            if members:
                operations.append(dataclasses.replace(op, members=members))
        elif op.kind in ("create_group", "update_group") and op.target in schools:
            operations.append(op)
    return Plan(operations)


def person_refs(
    query: str, config: Config, reads: list[SourceRead], desired: Desired, known: Known
) -> frozenset[str]:
    """The externalIds a query (source key, e-mail, username) can mean, also for someone
    who has left the sources (found in the state file) or is now protected."""
    folded = query.casefold()

    found = {ext for ext, user in desired.users.items() if folded in addresses(user.attributes)}
    found |= {ext for ext, user in known.users.items() if folded in addresses(user.attributes)}
    ids = ExternalIdMaker(config.external_id)
    for read in reads:
        for person in read.persons:
            if query in (person.source_key, person.join_key) or folded in (
                (person.email or "").casefold(),
                (person.username or "").casefold(),
            ):
                candidates = [person]
                if person.join_key:
                    candidates.append(
                        dataclasses.replace(person, source_key=f"join:{person.join_key}")
                    )
                for candidate in candidates:
                    with contextlib.suppress(ValueError):
                        found.add(ids.for_person(candidate))
    return frozenset(found)


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def full_reconcile_due(config: Config, state: StateStore | None, now: datetime) -> bool:
    hours = config.reconcile.full_every_hours
    last = state.get_meta(LAST_FULL_RECONCILE) if state else None
    if hours == 0 or last is None:
        return True
    return now - datetime.fromisoformat(last) >= timedelta(hours=hours)


def observe(config: Config, client: ScimClient, known: Known, desired: Desired) -> Observation:
    """The vendor's real state of what the connector owns, believed only if plausible."""
    return observe_vendor(
        client,
        known,
        desired,
        page_size=config.reconcile.page_size,
        limit=config.safety.max_deletions,
    )


def plan_only(config: Config, mapping: Mapping, client: ScimClient | None = None) -> CycleResult:
    """What a sync would do; changes nothing anywhere. With a client, compares with the
    vendor's real state (read-only), as a full reconcile would."""
    run_id = new_run_id()
    structlog.contextvars.bind_contextvars(run_id=run_id)
    now = datetime.now(UTC)
    state = StateStore.open_readonly(config.state.path)
    try:
        known = state.load_known() if state else Known()
        last_good = state.source_counts() if state else {}
    finally:
        if state:
            state.close()
    memory.planning()
    reads, failures, desired = desired_state(config, mapping)
    if client is not None:
        known = observe(config, client, known, desired).known
    return plan_cycle(config, run_id, reads, failures, desired, known, now, last_good=last_good)


def run_sync(
    config: Config,
    mapping: Mapping,
    state: StateStore,
    client: ScimClient,
    command: str = "sync",
    *,
    full: bool | None = None,
    stop: threading.Event | None = None,
    approved: frozenset[str] = frozenset(),
    allow_deprovision: bool = False,
    only: str | None = None,
) -> CycleResult:
    """One cycle: read, plan, apply, record. The caller holds the state lock.

    `only`: an on-demand sync of one person (source key, e-mail or username): sources read
    only what can be theirs, and only their account and memberships change.

    `full`: compare with the vendor's real state (drift repair); None: when it is due.
    """
    run_id = new_run_id()
    structlog.contextvars.bind_contextvars(run_id=run_id)
    started = time.monotonic()
    now = datetime.now(UTC)
    full = full_reconcile_due(config, state, now) if full is None else full
    if only is not None:
        full = False  # one person needs no listing of the whole vendor
    state.start_run(run_id, command)
    log.info("sync.started", command=command, full_reconcile=full)
    requests_before = Counter(client.requests_by_method)
    memory.planning()
    reads, failures, desired = desired_state(config, mapping, state, full=bool(full), only=only)
    vendor_problem: str | None = None
    index = None
    if state.intents():
        try:
            resolve_interrupted_creates(state, client, desired)
        except ScimError as exc:
            log.error("reconcile.failed", error=str(exc))
            vendor_problem = str(exc)
    if only is None:
        known = state.load_known()
    else:
        # Only what can be this person's: loading all 100,000 users took seconds.
        from_sources = person_refs(only, config, reads, desired, Known())
        known = state.load_known_for(from_sources, named=only)
    if full:
        try:
            observation = observe(config, client, known, desired)
        except (ScimError, ImplausibleListing) as exc:
            # The cycle goes on from the state file; the full reconcile waits for the next one.
            log.error("reconcile.failed", error=str(exc))
            full, vendor_problem = False, f"full reconcile failed: {exc}"
        else:
            for ext in observation.vanished_users:
                state.forget_user(ext)  # gone at the vendor; re-created below if still wanted
            for ext in observation.vanished_groups:
                state.forget_group(ext)
            for ext, vendor_id in observation.relinked_users.items():
                state.relink_user(ext, vendor_id)
            known = observation.known
            # The whole vendor was just listed: creates can link from it without lookups.
            index = VendorIndex(
                observation.vendor_users.values(), observation.vendor_groups.values()
            )
    scrub_protected(state, known, desired.protected_ids)
    result = plan_cycle(
        config,
        run_id,
        reads,
        failures,
        desired,
        known,
        now,
        last_good=state.source_counts() if only is None else {},
        approved=approved,
        allow_deprovision=allow_deprovision,
        only=person_refs(only, config, reads, desired, known) if only is not None else None,
    )
    result.full_reconcile = full
    result.vendor_unreadable = vendor_problem is not None
    result.vendor_problem = vendor_problem
    backing_off = state.backing_off(now)
    if backing_off:
        # Objects that keep failing wait, with a growing delay, instead of failing every cycle.
        result.plan, deferred = result.plan.split(lambda op: failure_key(op) in backing_off)
        result.deferred = len(deferred.operations)
        if result.deferred:
            log.info("plan.deferred", operations=result.deferred)
    log.info("plan.computed", **{k: v for k, v in result.plan.counts().items() if v})
    safety = config.safety
    applier = Applier(
        client,
        state,
        known,
        concurrency=config.vendor.concurrency,
        stop=stop,
        retry_delay=safety.retry_delay_seconds,
        max_retry_delay=safety.max_retry_delay_seconds,
        index=index,
        bulk_max_operations=config.vendor.bulk_max_operations if config.vendor.bulk else None,
    )
    memory.applying()
    result.applied = applier.apply(result.plan)
    report = result.applied
    vendor_failed = (
        result.vendor_unreadable
        or report.vendor_unavailable
        or (report.transient_failures > 0 and report.succeeded == 0)
    )
    track_vendor_health(state, result, vendor_failed, safety.degraded_after_cycles, now)
    if full and not failures:
        state.set_meta(LAST_FULL_RECONCILE, now.isoformat())
    # A read for one person is no picture of the whole: keep nothing of it but the changes.
    failed = {f.source for f in failures}
    ids = ExternalIdMaker(config.external_id)
    for read in reads if only is None else []:
        state.remember_marking_digests(read.source, marking_digests(read, ids))
        healthy = read.source not in result.unhealthy_sources and read.source not in failed
        if healthy or allow_deprovision or approved:
            state.set_source_count(read.source, len(read.persons))
        if read.snapshot is not None and read.source not in failed:
            state.save_snapshot(read.source, read.snapshot.objects, read.snapshot.checkpoint)
    if only is None:
        state.set_held_plan(
            {
                "run_id": run_id,
                "held_at": now.isoformat(timespec="seconds"),
                "reasons": result.hold_reasons,
                "operations": [op.as_dict(values=False) for op in result.held_plan.operations],
            }
            if result.held_plan
            else None
        )
    result.requests = dict(Counter(client.requests_by_method) - requests_before)
    result.duration_seconds = time.monotonic() - started
    summary = result.summary()
    state.finish_run(run_id, result.outcome, summary)
    state.checkpoint()
    log.info("sync.finished", **{k: v for k, v in summary.items() if k != "run_id"})
    structlog.contextvars.unbind_contextvars("run_id")
    return result
