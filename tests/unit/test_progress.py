"""The progress tracker: throttled sync.progress events, rate and eta, thread safety; what a
cut-short cycle's outcome is, and how the metrics take both."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from prometheus_client import generate_latest
from structlog.testing import capture_logs

from connector.cycle.result import (
    EXIT_FAILED,
    EXIT_HELD,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CycleResult,
    exit_code_of,
)
from connector.mapping.desired import Desired
from connector.planning.plan import Plan
from connector.progress import Progress, Snapshot
from connector.service.metrics import Metrics
from connector.targets.base import ApplyReport


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Seen:
    """A listener keeping every snapshot it was told."""

    def __init__(self) -> None:
        self.snapshots: list[Snapshot] = []

    def progressed(self, snapshot: Snapshot) -> None:
        self.snapshots.append(snapshot)


def progress_events(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"] == "sync.progress"]


def test_events_come_at_most_every_interval_and_carry_counts_only() -> None:
    clock = FakeClock()
    progress = Progress(5.0, clock=clock)
    with capture_logs() as logs:
        progress.begin("vendor", "apply", 100)
        for _ in range(10):  # 10 operations in 4.5 s: shorter than the interval, no event
            clock.now += 0.45
            progress.advance()
        assert progress_events(logs) == []
        clock.now += 0.5  # 5 s since the phase began
        progress.advance()
        clock.now += 1.0
        progress.advance()  # 1 s after the first event: none
        clock.now += 4.0
        progress.advance()  # 5 s after it: the second
    events = progress_events(logs)
    assert [e["done"] for e in events] == [11, 13]
    first = events[0]
    assert set(first) == {
        "event",
        "log_level",
        "target",
        "phase",
        "done",
        "planned",
        "rate",
        "eta_seconds",
    }
    assert (first["target"], first["phase"], first["planned"]) == ("vendor", "apply", 100)
    assert first["rate"] == 2.2  # 11 in 5 s
    assert first["eta_seconds"] == round(89 / 2.2)


def test_a_new_phase_starts_its_own_count_and_clock() -> None:
    clock = FakeClock()
    progress = Progress(5.0, clock=clock)
    with capture_logs() as logs:
        progress.begin("vendor", "list_users")
        clock.now += 4.0
        progress.update(200, 1000)
        progress.finish()
        progress.begin("vendor", "apply", 3)
        clock.now += 4.0  # 8 s since the cycle's first phase, 4 s into this one: no event
        progress.advance()
        progress.advance()  # after finish, ticks no longer count
        progress.finish()
        progress.advance()
    assert progress_events(logs) == []
    snapshot = progress.snapshot()
    assert (snapshot.phase, snapshot.done, snapshot.planned, snapshot.finished) == (
        "apply",
        2,
        3,
        True,
    )


@pytest.mark.parametrize(
    ("done", "planned", "elapsed", "rate", "eta"),
    [
        (20, 100, 10.0, 2.0, 40.0),
        (0, 100, 10.0, 0.0, None),  # nothing done yet: no estimate
        (5, 100, 0.0, 0.0, None),  # no time has passed
        (100, 100, 50.0, 2.0, 0.0),
        (120, 100, 10.0, 12.0, 0.0),  # more than planned (a listing grew): done
        (30, 0, 3.0, 10.0, 0.0),  # a listing before its total is known
    ],
)
def test_rate_and_eta(
    done: int, planned: int, elapsed: float, rate: float, eta: float | None
) -> None:
    snapshot = Snapshot("t", "apply", done, planned, elapsed)
    assert snapshot.rate == pytest.approx(rate)
    assert snapshot.eta_seconds == (None if eta is None else pytest.approx(eta))


def test_ticks_from_many_threads_are_all_counted_and_told_in_order() -> None:
    seen = Seen()
    progress = Progress(0.001, [seen])
    progress.begin("vendor", "apply", 8 * 2000)
    start = threading.Barrier(8)

    def work() -> None:
        start.wait()
        for _ in range(2000):
            progress.advance()

    threads = [threading.Thread(target=work) for _ in range(8)]
    with capture_logs():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    progress.finish()
    assert progress.snapshot().done == 16_000
    told = [s.done for s in seen.snapshots if not s.finished]
    # Each tick told exactly once, never a smaller count after a larger one.
    assert told == list(range(0, 16_001))
    assert seen.snapshots[-1].finished


def result_with(
    *,
    postponed: int = 0,
    interrupted: bool = False,
    failed: bool = False,
    held: bool = False,
) -> CycleResult:
    result = CycleResult("run", Plan(), Desired(), [], [])
    result.applied = ApplyReport(counts=Counter(postponed=postponed))
    if failed:
        result.applied.failures.append({"op": "create_user", "ref": "x", "error": "no"})
    if held:
        result.held_back = {"deactivate_user": 3}
    result.interrupted = interrupted
    return result


def test_an_interrupted_run_is_its_own_outcome_between_failed_and_held() -> None:
    assert result_with(interrupted=True, postponed=5).outcome == "interrupted"
    assert result_with(interrupted=True, held=True).exit_code == EXIT_INTERRUPTED
    assert result_with(interrupted=True, failed=True).exit_code == EXIT_FAILED
    assert result_with(held=True).outcome == "held"
    assert result_with().outcome == "success"
    interrupted, held, ok = (
        result_with(interrupted=True),
        result_with(held=True),
        result_with(),
    )
    assert exit_code_of([ok, held, interrupted]) == EXIT_INTERRUPTED
    assert exit_code_of([ok, held]) == EXIT_HELD
    assert exit_code_of([ok]) == EXIT_OK
    assert exit_code_of([interrupted, result_with(failed=True)]) == EXIT_FAILED


def test_metrics_take_live_progress_and_never_count_an_interruption_as_success() -> None:
    metrics = Metrics()
    progress = Progress(60.0, [metrics])
    progress.begin("vendor", "list_users")  # a listing is not the plan's operations
    progress.update(50, 500)
    progress.finish()
    progress.begin("vendor", "apply", 40)
    for _ in range(15):
        progress.advance()
    text = generate_latest(metrics.registry).decode()
    assert 'connector_cycle_operations_planned{target="vendor"} 40.0' in text
    assert 'connector_cycle_operations_done{target="vendor"} 15.0' in text
    metrics.observe([result_with(interrupted=True, postponed=25)], [])
    assert metrics.last_success_monotonic is None
    assert metrics.last_outcome == "interrupted"
    text = generate_latest(metrics.registry).decode()
    assert 'connector_cycles_total{outcome="interrupted",target="default"} 1.0' in text
    metrics.observe([result_with()], [])
    assert metrics.last_success_monotonic is not None
