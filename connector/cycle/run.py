"""One cycle, as a story: read the sources once, decide who is in scope, then for each target:
map, recall what it holds, observe it (full reconcile), plan, guard, apply, record.

A target that fails - its vendor down, a bug - never stops the others: its result says why.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import structlog

from connector.config import Config
from connector.cycle.guarding import guard, plan_rules, restrict_to
from connector.cycle.quiet import CycleMemory
from connector.cycle.recording import record, track_vendor_health
from connector.cycle.rekeying import recognise_rekeys
from connector.cycle.result import CycleResult
from connector.cycle.sources import Sources, read_all, remember
from connector.errors import TargetError
from connector.mapping.desired import Desired
from connector.people.externalid import ExternalIdMaker
from connector.people.lookup import external_ids_for
from connector.planning.objects import VALUE_PATHS, Known
from connector.planning.plan import Plan
from connector.progress import Progress
from connector.reports.duplicates import remember_count
from connector.service import memory
from connector.state.store import StateStore
from connector.state.target import TargetState
from connector.targets.base import ApplyReport, Observation, Target
from connector.targets.egil.ids import EgilIds, is_egil_uuid

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Options:
    """What the command asks of a cycle."""

    command: str = "sync"
    # Compare with the vendor's real state (drift repair); None: when it is due per target.
    full: bool | None = None
    stop: threading.Event | None = None
    # From `connector approve`: exactly these held steps pass, per target...
    approved: dict[str, frozenset[str]] = field(default_factory=dict)
    # The approval (its id in the state's `approvals`) each target's approved steps come from:
    # recorded with every change it released, in the history.
    approval_ids: dict[str, str] = field(default_factory=dict)
    allow_deprovision: bool = False
    # On-demand sync of one person (source key, e-mail or username).
    only: str | None = None
    # How far the cycle has come (sync.progress, metrics, a progress bar); None: a tracker
    # that only logs, every `logging.progress_seconds`.
    progress: Progress | None = None
    # What a daemon remembers between its cycles: lets a cycle in which nothing changed be
    # quiet (cycle/quiet.py). None: every cycle reads and plans everything.
    memory: CycleMemory | None = None

    @property
    def stopping(self) -> bool:
        """A signal asked the cycle to stop: what has not started waits for the next one."""
        return self.stop is not None and self.stop.is_set()


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def full_reconcile_due(config: Config, state: TargetState | None, now: datetime) -> bool:
    hours = config.reconcile.full_every_hours
    last = state.last_full_reconcile() if state else None
    if hours == 0 or last is None:
        return True
    return now - last >= timedelta(hours=hours)


def desire(
    config: Config,
    target: Target,
    sources: Sources,
    state: TargetState | None = None,
    *,
    dry_run: bool = False,
) -> Desired:
    """What this target should hold: the people in scope, through its own mapping."""
    ids = ExternalIdMaker(config.external_id)
    desired = target.desire(sources.scoped, ids, state, dry_run=dry_run)
    for issue in desired.issues:
        if issue.source == "join":
            event = "join.conflict"
        elif issue.location.startswith("school "):
            event = "mapping.school_renamed"
        else:
            event = "mapping.person_skipped"
        log.warning(event, location=issue.location, reason=issue.reason)
    return desired


def person_refs(config: Config, query: str, sources: Sources, known: Known) -> frozenset[str]:
    """The externalIds an on-demand query can mean, also for someone who has left the sources
    (found in the state file) or is now protected."""
    persons = [p for read in sources.reads for p in read.persons]
    accounts = [(ext, user.attributes) for ext, user in known.users.items()]
    ids = ExternalIdMaker(config.external_id)
    found = external_ids_for(query, persons, ids, accounts)
    # An EGIL target keys the same people by the UUID form of their externalIds.
    return found | {EgilIds(ids).person(ext) for ext in found if not is_egil_uuid(ext)}


def run_cycle(
    config: Config, targets: list[Target], state: StateStore, options: Options | None = None
) -> list[CycleResult]:
    """One cycle for every target given. The caller holds the state lock."""
    options = options or Options()
    if options.progress is None:
        options = replace(options, progress=Progress(config.logging.progress_seconds))
    run_id = new_run_id()
    structlog.contextvars.bind_contextvars(run_id=run_id)
    now = datetime.now(UTC)
    full = {
        t.name: options.full
        if options.full is not None
        else full_reconcile_due(config, state.target(t.name), now)
        for t in targets
    }
    if options.only is not None:
        full = dict.fromkeys(full, False)  # one person needs no listing of the whole vendor
    memory.planning()
    kept = options.memory if options.only is None else None
    sources = read_all(
        config,
        state,
        full=any(full.values()),
        only=options.only,
        memory=kept,
        refresh=kept is not None and kept.full_plan_due(now),
    )
    quiet = False
    if kept is not None:
        names = [t.name for t in targets]
        why = kept.why_not_quiet(
            sources.reads, bool(sources.failures), names, full, state.outside_writes(), now
        )
        quiet = why is None
        log.info("sync.quiet" if quiet else "sync.planning", **({} if quiet else {"why": why}))
    results = [
        run_target(config, target, sources, state, run_id, now, full[target.name], options, quiet)
        for target in targets
    ]
    if kept is not None:
        kept.after_cycle(results, quiet, state.outside_writes(), now)
    remember(config, state, sources, _counts_to_keep(sources, results, options))
    prune_history(state, config.state.history_days)
    state.checkpoint()
    structlog.contextvars.unbind_contextvars("run_id")
    return results


def _counts_to_keep(sources: Sources, results: list[CycleResult], options: Options) -> set[str]:
    """A source's count is kept as its last good one when no target found it unhealthy (or an
    operator let its deprovisioning through)."""
    failed = {f.source for f in sources.failures}
    unhealthy = {name for result in results for name in result.unhealthy_sources}
    released = options.allow_deprovision or any(options.approved.values())
    return {r.source for r in sources.reads if released or r.source not in failed | unhealthy}


def run_target(
    config: Config,
    target: Target,
    sources: Sources,
    state: StateStore,
    run_id: str,
    now: datetime,
    full: bool,
    options: Options,
    quiet: bool = False,
) -> CycleResult:
    """One target's part of a cycle, recorded as its run. `quiet`: nothing changed since the
    last cycle came to a fixpoint, so nothing is planned (cycle/quiet.py)."""
    structlog.contextvars.bind_contextvars(target=target.name)
    started = time.monotonic()
    tstate = state.target(target.name)
    tstate.start_run(run_id, options.command)
    tstate.history.begin(
        run_id,
        options.approval_ids.get(target.name),
        options.approved.get(target.name, frozenset()),
    )
    log.info("sync.started", command=options.command, full_reconcile=full)
    requests_before = target.requests()
    try:
        if quiet and options.memory is not None:
            result = _quiet_target(target, sources, tstate, run_id, now, options.memory)
        else:
            result = _sync_target(
                config, target, sources, state, tstate, run_id, now, full, options
            )
    except Exception as exc:  # one target's bug must not stop the others
        log.exception("target.crashed", error=type(exc).__name__)
        result = CycleResult(run_id, Plan(), Desired(), sources.reads, sources.failures)
        result.target, result.vendor_unreadable = target.name, True
        result.vendor_problem = f"the target's run crashed ({type(exc).__name__}); see the log"
    result.requests = dict(target.requests() - requests_before)
    result.duration_seconds = time.monotonic() - started
    summary = result.summary()
    tstate.finish_run(run_id, result.outcome, summary)
    log.info("sync.finished", **{k: v for k, v in summary.items() if k not in ("run_id", "target")})
    structlog.contextvars.unbind_contextvars("target")
    return result


def _sync_target(
    config: Config,
    target: Target,
    sources: Sources,
    state: StateStore,
    tstate: TargetState,
    run_id: str,
    now: datetime,
    full: bool,
    options: Options,
) -> CycleResult:
    desired = desire(config, target, sources, tstate)
    known, observation, problem = recall(config, target, sources, tstate, desired, full, options)
    if observation is not None:
        remember_count(tstate, observation, desired, now)  # possible duplicates, for the page
    recognise_rekeys(config, desired, known, sources.scoped)
    scrub_protected(tstate, known, desired.protected_ids)
    plan = target.plan(desired, known, plan_rules(config, target.config.member_chunk_size, now))
    if options.only is not None:
        plan = restrict_to(plan, person_refs(config, options.only, sources, known), desired)
    result = CycleResult(run_id, plan, desired, sources.reads, sources.failures, target.name)
    result.approval_id = options.approval_ids.get(target.name)
    guard(
        result,
        config,
        target.config,
        known,
        now,
        last_good=state.source_counts() if options.only is None else {},
        approved=options.approved.get(target.name, frozenset()),
        allow_deprovision=options.allow_deprovision,
    )
    result.full_reconcile = observation is not None
    result.full_reconcile_described = observation.described if observation else ""
    result.vendor_unreadable, result.vendor_problem = problem is not None, problem
    defer_backing_off(result, tstate, now)
    log.info("plan.computed", **{k: v for k, v in result.plan.counts().items() if v})
    memory.applying()
    result.applied = apply_plan(target, result, tstate, known, observation, options)
    record(
        result,
        tstate,
        target,
        now,
        sources_failed=bool(sources.failures),
        whole_picture=options.only is None,
    )
    return result


def _quiet_target(
    target: Target,
    sources: Sources,
    tstate: TargetState,
    run_id: str,
    now: datetime,
    memory: CycleMemory,
) -> CycleResult:
    """Nothing to plan: the run is recorded as a success that did nothing."""
    result = CycleResult(run_id, Plan(), Desired(), sources.reads, sources.failures, target.name)
    result.quiet_scope = memory.in_scope[target.name]
    result.applied = ApplyReport()
    track_vendor_health(tstate, result, False, target.config.safety.degraded_after_cycles, now)
    return result


def apply_plan(
    target: Target,
    result: CycleResult,
    tstate: TargetState,
    known: Known,
    observation: Observation | None,
    options: Options,
) -> ApplyReport:
    """Apply the guarded plan, its progress told as it goes. A signal that stops it with
    operations left undone makes the run `interrupted`: the rest is planned again next cycle
    (a create's intent is recorded before it is sent, so none is ever sent twice)."""
    progress = options.progress or Progress()
    # Counted as the plan counts them (plan.computed, sync.finished): a membership per member.
    progress.begin(target.name, "apply", sum(result.plan.counts().values()))
    try:
        report = target.apply(result.plan, tstate, known, observation, options.stop, progress)
    finally:
        progress.finish()
    result.interrupted = options.stopping and report.counts.get("postponed", 0) > 0
    return report


def recall(
    config: Config,
    target: Target,
    sources: Sources,
    tstate: TargetState,
    desired: Desired,
    full: bool,
    options: Options,
) -> tuple[Known, Observation | None, str | None]:
    """What the target holds: from the state file, or - in a full reconcile - from the vendor
    itself. (known, the observation if there was one, why the vendor could not be read)."""
    problem = None
    try:
        target.resolve_interrupted(tstate, desired)
    except TargetError as exc:
        log.error("reconcile.failed", error=str(exc))
        problem = str(exc)
    if options.only is None:
        # Users recorded as the plan wants them share its attributes: half the memory.
        known = tstate.load_known(desired.users)
    else:
        # Only what can be this person's: loading all 100,000 users took seconds.
        from_sources = person_refs(config, options.only, sources, Known())
        known = tstate.load_known_for(from_sources, named=options.only)
    if not full or options.stopping:  # stopping: no long listing that nothing would use
        return known, None, problem
    try:
        observation = target.observe(
            known, desired, page_size=config.reconcile.page_size, progress=options.progress
        )
    except TargetError as exc:
        # The cycle goes on from the state file; the full reconcile waits for the next one.
        log.error("reconcile.failed", error=str(exc))
        return known, None, f"full reconcile failed: {exc}"
    observation.record(tstate)
    return observation.known, observation, problem


def scrub_protected(state: TargetState, known: Known, protected: frozenset[str]) -> None:
    """A person the sources now mark protected keeps, in the state file, only what taking
    their account off the vendor needs (its id, whether it is active) - at once, not only once
    that succeeded, which may take cycles or an approval."""
    state.drop_usernames(protected)  # a generated name is theirs: not kept either
    state.history.drop(protected)  # and what was done to them: no trail either
    for ext in protected & known.users.keys():
        user = known.users[ext]
        if user.attributes.keys() - {"active"}:
            state.scrub_user(ext)
            # The values the connector granted them stay in memory, for this cycle only, so
            # the plan can take them away from an account that is kept (deactivated).
            granted = {p: user.attributes[p] for p in VALUE_PATHS if p in user.attributes}
            user.attributes = {"active": user.active, **granted}


def prune_history(state: StateStore, days: int) -> None:
    """Rows older than `state.history_days` go, once per cycle (by the index on `at`)."""
    pruned = state.history.prune(days)
    if pruned:
        log.info("history.pruned", rows=pruned, days=days)


def defer_backing_off(result: CycleResult, state: TargetState, now: datetime) -> None:
    """Objects that keep failing wait, with a growing delay, instead of failing every cycle."""
    backing_off = state.backing_off(now)
    if not backing_off:
        return
    result.plan, deferred = result.plan.split(lambda op: f"{op.kind}:{op.target}" in backing_off)
    result.deferred = len(deferred.operations)
    if result.deferred:
        log.info("plan.deferred", operations=result.deferred)
