"""What one cycle did for one target: its plan, what was held back and why, what was applied,
and the summary that `sync.finished`, the runs table and the terminal show."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from connector.mapping.desired import Desired
from connector.people.model import SourceIssue, SourceRead
from connector.planning.plan import Plan
from connector.targets.base import ApplyReport

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_HELD = 3
# Stopped by a signal (SIGTERM, Ctrl-C) before every planned operation was sent: what was sent
# is recorded, the rest is planned again by the next cycle.
EXIT_INTERRUPTED = 4

OUTCOMES = {
    EXIT_OK: "success",
    EXIT_FAILED: "failed",
    EXIT_HELD: "held",
    EXIT_INTERRUPTED: "interrupted",
}


@dataclass(slots=True)
class SourceFailure:
    source: str
    reason: str


@dataclass(frozen=True, slots=True)
class InScope:
    """Who a target's plan covered: counts only (a quiet cycle reports the last plan's)."""

    users: int
    groups: int
    excluded: dict[str, int]
    mapping_issues: tuple[SourceIssue, ...] = ()

    @classmethod
    def of(cls, desired: Desired) -> InScope:
        return cls(
            len(desired.users),
            len(desired.groups),
            dict(sorted(desired.excluded.items())),
            tuple(desired.issues),
        )


@dataclass(slots=True)
class CycleResult:
    run_id: str
    plan: Plan
    desired: Desired
    reads: list[SourceRead]
    source_failures: list[SourceFailure]
    target: str = "default"
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
    full_reconcile_described: str = ""  # what the target's full reconcile did
    # A signal stopped the applying with planned operations left undone (they wait).
    interrupted: bool = False
    applied: ApplyReport | None = None
    # The approval (state's approvals table) whose held steps this run let through, if any.
    approval_id: str | None = None
    # How many approved steps were in this run's plan (and so let through the safety rules).
    approved_steps: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    duration_seconds: float = 0.0
    # A quiet cycle (cycle/quiet.py): nothing planned, who is in scope as the last plan had it.
    quiet_scope: InScope | None = None

    @property
    def quiet(self) -> bool:
        return self.quiet_scope is not None

    @property
    def scope(self) -> InScope:
        return self.quiet_scope or InScope.of(self.desired)

    @property
    def issues(self) -> list[SourceIssue]:
        return [i for r in self.reads for i in r.issues] + list(self.scope.mapping_issues)

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
        if self.interrupted:
            return EXIT_INTERRUPTED
        if self.held_back:
            return EXIT_HELD
        return EXIT_OK

    @property
    def outcome(self) -> str:
        """success, held, interrupted or failed (the worst there is, in this order)."""
        return OUTCOMES[self.exit_code]

    def summary(self) -> dict[str, Any]:
        persons = sum(len(r.persons) for r in self.reads)
        scope = self.scope
        return {
            "run_id": self.run_id,
            "target": self.target,
            "outcome": self.outcome,
            "persons_read": persons,
            "users_in_scope": scope.users,
            "groups_in_scope": scope.groups,
            "excluded": scope.excluded,
            "skipped_records": len(self.issues),
            "source_failures": [f.source for f in self.source_failures],
            "unhealthy_sources": sorted(self.unhealthy_sources),
            "planned": {k: v for k, v in self.plan.counts().items() if v},
            "held_back": self.held_back,
            "hold_reasons": self.hold_reasons,
            "full_reconcile": self.full_reconcile,
            "quiet": self.quiet,
            "deferred": self.deferred,
            "degraded": self.degraded,
            "vendor_problem": self.vendor_trouble,
            "applied": dict(sorted(self.applied.counts.items())) if self.applied else {},
            "requests": dict(sorted(self.requests.items())),
            "duration_seconds": round(self.duration_seconds, 3),
        }


def exit_code_of(results: Iterable[CycleResult]) -> int:
    """A cycle over several targets: failed if any failed, else interrupted if any was, else
    held if any held."""
    codes = {result.exit_code for result in results}
    for code in (EXIT_FAILED, EXIT_INTERRUPTED, EXIT_HELD):
        if code in codes:
            return code
    return EXIT_OK
