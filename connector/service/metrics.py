"""Prometheus metrics of the daemon. Labels carry operation kinds, outcomes, reasons, and source
and target names from the config: never anything about a person."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector

from connector.cycle.result import CycleResult
from connector.progress import Snapshot
from connector.service.latency import LATENCY_BUCKETS, change_latencies

# Gauges of the last cycle: attribute -> (metric name, help, labels).
_GAUGES: dict[str, tuple[str, str, list[str]]] = {
    "last_operations": (
        "connector_last_cycle_operations",
        "Operations applied in the last cycle, by target and result.",
        ["target", "result"],
    ),
    "last_success": (
        "connector_last_success_timestamp_seconds",
        "When the last successful cycle finished for the target (Unix time).",
        ["target"],
    ),
    "held_back": (
        "connector_held_back",
        "Operations held back by safety rules in the last cycle, by target and kind.",
        ["target", "op"],
    ),
    "excluded": (
        "connector_persons_excluded",
        "Persons left out in the last cycle, by target and reason.",
        ["target", "reason"],
    ),
    "source_up": (
        "connector_source_up",
        "1 if the source was read in the last cycle.",
        ["source"],
    ),
    "in_scope": ("connector_users_in_scope", "Users the target should hold.", ["target"]),
    "degraded": (
        "connector_degraded",
        "1 while the target has failed several cycles in a row (cycles are slowed down).",
        ["target"],
    ),
    "deferred": (
        "connector_deferred_operations",
        "Operations waiting for their next try after failing, in the last cycle.",
        ["target"],
    ),
    # Live, while a cycle runs (and the last cycle's final values after it).
    "planned": (
        "connector_cycle_operations_planned",
        "Operations the target's plan holds in the cycle running (or the last one).",
        ["target"],
    ),
    "done": (
        "connector_cycle_operations_done",
        "Operations of that plan done so far (failed ones too; not those left for later).",
        ["target"],
    ),
    "running": ("connector_cycle_running", "1 while a cycle runs.", []),
    "leader": (
        "connector_leader",
        "1 while this process applies (the leader, or the only process); 0 while it waits as "
        "a standby replica (the state in PostgreSQL).",
        [],
    ),
}


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """One source in the last cycle, for the status page: up, unhealthy (read, but not to be
    trusted for deprovisioning) or failed, why (reasons name configuration, never a person),
    and how many persons it returned."""

    state: str
    reason: str | None
    persons: int | None


class Metrics:
    last_operations: Gauge
    last_success: Gauge
    held_back: Gauge
    excluded: Gauge
    source_up: Gauge
    in_scope: Gauge
    degraded: Gauge
    deferred: Gauge
    planned: Gauge
    done: Gauge
    running: Gauge
    leader: Gauge

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.cycles = Counter(
            "connector_cycles",
            "Sync cycles by target and outcome.",
            ["target", "outcome"],
            registry=r,
        )
        self.operations = Counter(
            "connector_operations",
            "Operations applied, by target and result.",
            ["target", "result"],
            registry=r,
        )
        self.duration = Histogram(
            "connector_cycle_duration_seconds",
            "How long a target's part of a cycle took.",
            ["target"],
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=r,
        )
        self.change_latency = Histogram(
            "connector_change_latency_seconds",
            "From a person's change in a source (the source's own time: a roster file's "
            "modification time, a directory entry's modifyTimestamp, SS 12000's meta.modified) "
            "to the vendor confirming it, by target and source.",
            ["target", "source"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        # Target -> when its last successful cycle began: a change older than that was seen
        # by it, so a later operation for that person is not that change arriving.
        self._seen_since: dict[str, float] = {}
        self._cycle_began: float | None = None
        self.config_rejected = Gauge(
            "connector_config_rejected",
            "1 while the config file on disk was rejected and the daemon runs on an older one.",
            registry=r,
        )
        self.config_reloads = Counter(
            "connector_config_reloads",
            "Config reloads (SIGHUP or a changed file), by result: applied or rejected.",
            ["result"],
            registry=r,
        )
        for attribute, (name, text, labels) in _GAUGES.items():
            setattr(self, attribute, Gauge(name, text, labels, registry=r))
        self.is_degraded = False
        self.standby = False  # a replica waiting to lead
        self.leader.set(1)
        self.last_success_monotonic: float | None = None
        self.last_outcome: str | None = None
        self.started_at = time.time()
        self.started_monotonic = time.monotonic()
        # source name -> its health in the last cycle (replaced whole, read by the page).
        self.sources: dict[str, SourceHealth] = {}

    def observe(self, results: list[CycleResult], source_names: list[str]) -> None:
        """The last cycle: one result per target."""
        self.last_operations.clear()
        self.held_back.clear()
        self.excluded.clear()
        for result in results:
            self._observe_target(result)
        failed = {f.source for result in results for f in result.source_failures}
        for name in source_names:
            self.source_up.labels(name).set(0 if name in failed else 1)
        self.sources = _source_health(results, source_names)
        self.is_degraded = any(result.degraded for result in results)
        outcomes = {result.outcome for result in results}
        self.last_outcome = next(
            (o for o in ("failed", "interrupted", "held") if o in outcomes), "success"
        )
        if outcomes <= {"success", "held"}:  # an interrupted cycle is no success
            self.last_success_monotonic = time.monotonic()

    def _observe_target(self, result: CycleResult) -> None:
        target = result.target
        self.cycles.labels(target, result.outcome).inc()
        self.duration.labels(target).observe(result.duration_seconds)
        for key, count in (result.applied.counts if result.applied else {}).items():
            self.operations.labels(target, key).inc(count)
            self.last_operations.labels(target, key).set(count)
        for kind, count in result.held_back.items():
            self.held_back.labels(target, kind).set(count)
        for reason, count in result.scope.excluded.items():
            self.excluded.labels(target, reason).set(count)
        self.in_scope.labels(target).set(result.scope.users)
        self.degraded.labels(target).set(1 if result.degraded else 0)
        self.deferred.labels(target).set(result.deferred)
        self._observe_latency(result)
        if result.outcome in ("success", "held"):
            self.last_success.labels(target).set(time.time())

    def _observe_latency(self, result: CycleResult) -> None:
        target = result.target
        since = self._seen_since.get(target, self.started_at)
        if result.applied is not None:
            for source, seconds in change_latencies(
                result.desired.modified, result.applied.confirmed, since
            ):
                self.change_latency.labels(target, source).observe(seconds)
        if result.outcome == "success":
            self._seen_since[target] = self._cycle_began or time.time() - result.duration_seconds

    def cycle_began(self) -> None:
        """A cycle starts (before it reads the sources): the live gauge, and the moment a
        change must be newer than to be this cycle's news (see latency.py)."""
        self.running.set(1)
        self._cycle_began = time.time()

    def progressed(self, snapshot: Snapshot) -> None:
        """A tick of the cycle's progress tracker: the plan's operations, live."""
        if snapshot.phase == "apply":
            self.planned.labels(snapshot.target).set(snapshot.planned)
            self.done.labels(snapshot.target).set(snapshot.done)

    def config_reload(self, applied: bool) -> None:
        self.config_reloads.labels("applied" if applied else "rejected").inc()
        self.config_rejected.set(0 if applied else 1)

    def failed_cycle(self) -> None:
        """A cycle that ended in an error before it could produce a result."""
        self.cycles.labels("", "error").inc()
        self.last_outcome = "error"


def _source_health(results: list[CycleResult], names: list[str]) -> dict[str, SourceHealth]:
    persons = {read.source: len(read.persons) for read in results[0].reads} if results else {}
    failed = {f.source: f.reason for result in results for f in result.source_failures}
    unhealthy = {n: why for result in results for n, why in result.unhealthy_sources.items()}
    health = {}
    for name in names:
        if name in failed:
            health[name] = SourceHealth("failed", failed[name], persons.get(name))
        elif name in unhealthy:
            health[name] = SourceHealth("unhealthy", unhealthy[name], persons.get(name))
        else:
            health[name] = SourceHealth("up", None, persons.get(name))
    return health
