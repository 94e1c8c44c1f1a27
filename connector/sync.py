"""One cycle, as a story: read the sources, decide who is in scope, map, plan, apply, record."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import structlog

from connector.apply import Applier, ApplyReport
from connector.config import Config
from connector.desired import Desired, build_desired
from connector.errors import SourceError
from connector.externalid import ExternalIdMaker
from connector.mapping import Mapping
from connector.model import SourceIssue, SourceRead
from connector.plan import Plan, make_plan
from connector.scim.client import ScimClient
from connector.scope import apply_scope
from connector.sources import build_sources
from connector.state import Known, StateStore

log = structlog.get_logger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_HELD = 3


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
    hold_reason: str | None = None
    applied: ApplyReport | None = None
    requests: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0

    @property
    def issues(self) -> list[SourceIssue]:
        return [i for r in self.reads for i in r.issues] + self.desired.issues

    @property
    def exit_code(self) -> int:
        if self.source_failures or (self.applied and self.applied.failures):
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
            "planned": {k: v for k, v in self.plan.counts().items() if v},
            "held_back": self.held_back,
            "applied": dict(sorted(self.applied.counts.items())) if self.applied else {},
            "requests": dict(sorted(self.requests.items())),
            "duration_seconds": round(self.duration_seconds, 3),
        }


def read_sources(config: Config) -> tuple[list[SourceRead], list[SourceFailure]]:
    reads: list[SourceRead] = []
    failures: list[SourceFailure] = []
    for source_config in config.sources:
        if source_config.protected_identity.assume_not_protected:
            log.warning(
                "source.marking_assumed",
                source=source_config.name,
                consequence="this source carries no protected-identity marking; "
                "its people are treated as not protected",
            )
    for source in build_sources(config):
        try:
            read = source.read()
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
        if not read.persons:
            # An export with nobody in it is a broken export far more often than an empty town.
            reason = "returned no persons"
            log.error("source.failed", source=read.source, reason=reason)
            failures.append(SourceFailure(read.source, reason))
        reads.append(read)
    return reads, failures


def compute_cycle(config: Config, mapping: Mapping, known: Known, run_id: str) -> CycleResult:
    """Everything up to the plan. Reads the sources; writes nothing anywhere."""
    reads, failures = read_sources(config)
    scoped = apply_scope(config, reads)
    desired = build_desired(scoped, mapping, ExternalIdMaker(config.external_id))
    for issue in desired.issues:
        log.warning("mapping.person_skipped", location=issue.location, reason=issue.reason)
    plan = make_plan(
        desired.users, desired.groups, known, member_chunk_size=config.vendor.member_chunk_size
    )
    result = CycleResult(run_id, plan, desired, reads, failures)
    if failures:
        # No deprovisioning is ever derived from a source that failed.
        held = {
            k: v
            for k, v in plan.counts().items()
            if k in ("remove_members", "deactivate_user") and v
        }
        if held:
            result.held_back = held
            result.hold_reason = "a source failed: " + ", ".join(f.source for f in failures)
            result.plan = plan.without_deprovisioning()
            log.warning("guard.held", reason=result.hold_reason, **held)
    return result


def new_run_id() -> str:
    return uuid.uuid4().hex[:16]


def plan_only(config: Config, mapping: Mapping) -> CycleResult:
    """What a sync would do, from the state file as it is; changes nothing anywhere."""
    run_id = new_run_id()
    structlog.contextvars.bind_contextvars(run_id=run_id)
    state = StateStore.open_readonly(config.state.path)
    try:
        known = state.load_known() if state else Known()
    finally:
        if state:
            state.close()
    return compute_cycle(config, mapping, known, run_id)


def run_sync(
    config: Config, mapping: Mapping, state: StateStore, client: ScimClient, command: str = "sync"
) -> CycleResult:
    """One full cycle: read, plan, apply, record. The caller holds the state lock."""
    run_id = new_run_id()
    structlog.contextvars.bind_contextvars(run_id=run_id)
    started = time.monotonic()
    state.start_run(run_id, command)
    log.info("sync.started", command=command)
    requests_before = Counter(client.requests_by_method)
    known = state.load_known()
    result = compute_cycle(config, mapping, known, run_id)
    log.info("plan.computed", **{k: v for k, v in result.plan.counts().items() if v})
    applier = Applier(
        client,
        state,
        known,
        managed_user_paths=mapping.managed_user_paths,
        concurrency=config.vendor.concurrency,
    )
    result.applied = applier.apply(result.plan)
    result.requests = dict(Counter(client.requests_by_method) - requests_before)
    result.duration_seconds = time.monotonic() - started
    summary = result.summary()
    state.finish_run(run_id, result.outcome, summary)
    log.info("sync.finished", **{k: v for k, v in summary.items() if k != "run_id"})
    structlog.contextvars.unbind_contextvars("run_id")
    return result
