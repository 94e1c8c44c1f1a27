"""A quiet cycle costs almost nothing: what a running daemon remembers between its cycles, and
when that lets a cycle plan nothing at all.

A cycle is quiet - it reads its sources (cheaply: an unchanged roster file is not parsed
again, an incremental source asks only for what changed) and then plans, sends and records
nothing but its run - when all of this holds:

- the last cycle came to a fixpoint: every target's plan was empty, nothing was held,
  deferred, interrupted or failed, no source failed or looked unhealthy;
- every source says its content is what that cycle read (`SourceRead.unchanged`);
- nothing else wrote to the state since (an approval, a `forget`: SQLite's data_version);
- no target's full reconcile is due, and the last full plan is younger than
  `daemon.full_plan_every_minutes` (the time-based rules - a leaver's grace period, deletion
  after `delete_after` - take effect at the latest that much later than they are due).

Anything else, and the cycle plans everything as it always did. The memory lives in the daemon
only (a `connector sync` process starts without it) and holds no protected person's data that
the cycle did not already hold: the last healthy read of each source whose content can be
fingerprinted, in memory, never written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog

from connector.cycle.result import EXIT_OK, CycleResult, InScope
from connector.people.model import SourceRead

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class CachedRead:
    """A source's last healthy read, and what shows whether its content changed since: a
    file's fingerprint, a directory's change marker, or None (a source that reads
    incrementally instead gets the read back to build on)."""

    fingerprint: Any
    read: SourceRead


@dataclass(slots=True)
class CycleMemory:
    """What the daemon keeps between cycles (in memory only)."""

    full_plan_every: timedelta
    reads: dict[str, CachedRead] = field(default_factory=dict)
    # Per target: how many were in scope at the last full plan (a quiet cycle reports them).
    in_scope: dict[str, InScope] = field(default_factory=dict)
    settled: bool = False  # the last cycle came to a fixpoint
    last_full_plan: datetime | None = None
    state_version: int | None = None  # the state's data_version as the last cycle left it

    def why_not_quiet(
        self,
        reads: list[SourceRead],
        failed_sources: bool,
        targets: list[str],
        full: dict[str, bool],
        state_version: int,
        now: datetime,
    ) -> str | None:
        """None: this cycle may be quiet; else why it must plan (for the log)."""
        if not self.settled or self.last_full_plan is None:
            return "the last cycle did not come to a fixpoint"
        if any(full.values()):
            return "a full reconcile is due"
        if self.full_plan_due(now):
            return "the periodic full plan is due"
        if failed_sources or not all(r.unchanged for r in reads):
            return "a source changed"
        if state_version != self.state_version:
            return "the state was written by another process"
        if set(targets) - self.in_scope.keys():
            return "a target has not been planned yet"
        return None

    def full_plan_due(self, now: datetime) -> bool:
        """Everything is read and planned again (a directory's deletions leave no trace to
        ask for; the time-based rules need a plan)."""
        return self.last_full_plan is None or now - self.last_full_plan >= self.full_plan_every

    def after_cycle(
        self, results: list[CycleResult], quiet: bool, state_version: int, now: datetime
    ) -> None:
        """Remember whether this cycle came to a fixpoint."""
        self.state_version = state_version
        if quiet:
            return
        self.last_full_plan = now
        self.in_scope = {r.target: r.scope for r in results}
        self.settled = bool(results) and all(settled(r) for r in results)


def settled(result: CycleResult) -> bool:
    """The target is where the sources want it: a full plan found nothing to do, and nothing
    is waiting (held, deferred, failing, interrupted, a source unhealthy)."""
    return (
        result.exit_code == EXIT_OK
        and not result.plan.operations
        and not result.held_plan.operations
        and not result.deferred
        and not result.unhealthy_sources
        and not result.source_failures
        and result.vendor_trouble is None
    )
