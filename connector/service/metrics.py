"""Prometheus metrics of the daemon. Labels carry operation kinds, outcomes, reasons and source
names from the config: never anything about a person."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.process_collector import ProcessCollector

from connector.cycle.run import CycleResult


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        r = self.registry
        self.cycles = Counter(
            "connector_cycles", "Sync cycles by outcome.", ["outcome"], registry=r
        )
        self.operations = Counter(
            "connector_operations",
            "Operations applied, by kind and result.",
            ["result"],
            registry=r,
        )
        self.last_operations = Gauge(
            "connector_last_cycle_operations",
            "Operations applied in the last cycle, by result.",
            ["result"],
            registry=r,
        )
        self.duration = Histogram(
            "connector_cycle_duration_seconds",
            "How long a cycle took.",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
            registry=r,
        )
        self.last_success = Gauge(
            "connector_last_success_timestamp_seconds",
            "When the last successful cycle finished (Unix time).",
            registry=r,
        )
        self.held_back = Gauge(
            "connector_held_back",
            "Operations held back by safety rules in the last cycle, by kind.",
            ["op"],
            registry=r,
        )
        self.excluded = Gauge(
            "connector_persons_excluded",
            "Persons left out in the last cycle, by reason.",
            ["reason"],
            registry=r,
        )
        self.source_up = Gauge(
            "connector_source_up",
            "1 if the source was read in the last cycle.",
            ["source"],
            registry=r,
        )
        self.in_scope = Gauge(
            "connector_users_in_scope", "Users the vendor should hold.", registry=r
        )
        self.degraded = Gauge(
            "connector_degraded",
            "1 while the vendor has failed several cycles in a row (cycles are slowed down).",
            registry=r,
        )
        self.deferred = Gauge(
            "connector_deferred_operations",
            "Operations waiting for their next try after failing, in the last cycle.",
            registry=r,
        )
        self.is_degraded = False
        self.last_success_monotonic: float | None = None
        self.last_outcome: str | None = None

    def observe(self, result: CycleResult, source_names: list[str]) -> None:
        self.cycles.labels(result.outcome).inc()
        self.duration.observe(result.duration_seconds)
        self.last_operations.clear()
        for key, count in (result.applied.counts if result.applied else {}).items():
            self.operations.labels(key).inc(count)
            self.last_operations.labels(key).set(count)
        self.held_back.clear()
        for kind, count in result.held_back.items():
            self.held_back.labels(kind).set(count)
        self.excluded.clear()
        for reason, count in result.desired.excluded.items():
            self.excluded.labels(reason).set(count)
        failed = {f.source for f in result.source_failures}
        for name in source_names:
            self.source_up.labels(name).set(0 if name in failed else 1)
        self.in_scope.set(len(result.desired.users))
        self.degraded.set(1 if result.degraded else 0)
        self.is_degraded = result.degraded
        self.deferred.set(result.deferred)
        self.last_outcome = result.outcome
        if result.outcome in ("success", "held"):
            self.last_success.set(time.time())
            self.last_success_monotonic = time.monotonic()

    def failed_cycle(self) -> None:
        """A cycle that ended in an error before it could produce a result."""
        self.cycles.labels("error").inc()
        self.last_outcome = "error"
