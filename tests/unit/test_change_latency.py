"""Which confirmed operations count as a change arriving (connector/service/latency.py), and a
joined person's change time: the latest of their sources'."""

from __future__ import annotations

import time

from connector.cycle.result import CycleResult
from connector.mapping.desired import Desired
from connector.people.model import Kind, Modified, Person, latest
from connector.planning.plan import Plan
from connector.service.latency import change_latencies
from connector.service.metrics import Metrics
from connector.sources.ldap_entries import generalized_time
from connector.targets.base import ApplyReport


def test_only_changes_since_the_last_good_cycle_count_and_never_below_zero() -> None:
    modified = {
        "new": Modified("students", 1000.5),
        "old": Modified("students", 900.0),  # seen by the last cycle: another cause now
        "ahead": Modified("sis", 1010.0),  # the source's clock runs ahead of ours
        "unconfirmed": Modified("staff", 1001.0),
    }
    confirmed = {"new": 1004.5, "old": 1004.0, "ahead": 1005.0, "no-time": 1005.0}

    assert sorted(change_latencies(modified, confirmed, since=1000.2)) == [
        ("sis", 0.0),
        ("students", 4.0),
    ]


def test_a_change_in_the_second_the_last_cycle_began_counts() -> None:
    # A directory's modifyTimestamp has whole seconds: 1000 may be 1000.9, after a read at 1000.2.
    assert list(change_latencies({"x": Modified("staff", 1000.0)}, {"x": 1003.0}, 1000.2)) == [
        ("staff", 3.0)
    ]
    # A file's modification time is exact: one just before that start was seen by it.
    assert list(change_latencies({"x": Modified("students", 1000.1)}, {"x": 1003.0}, 1000.2)) == []


def test_the_latest_change_of_a_joined_person_stands() -> None:
    a, b = Modified("roster", 10.0), Modified("directory", 20.0)
    assert latest(a, b) is b and latest(b, a) is b
    assert latest(None, a) is a and latest(a, None) is a and latest(None, None) is None
    person = Person("k", Kind.STUDENT, "A", "B", None, None, False)
    assert person.modified is None


def test_generalized_time_of_openldap_and_active_directory() -> None:
    assert generalized_time(b"20261205031500Z") == 1796440500.0
    assert generalized_time(b"20261205031500.0Z") == 1796440500.0
    assert generalized_time(b"20261205031500+0100") is None
    assert generalized_time(b"garbage") is None


def _result(modified: dict[str, Modified], confirmed: dict[str, float]) -> CycleResult:
    """A successful cycle of the target `default` that took no time to report."""
    report = ApplyReport(confirmed=confirmed)
    return CycleResult("run", Plan(), Desired(modified=modified), [], [], applied=report)


def counted(metrics: Metrics, source: str) -> float:
    value = metrics.registry.get_sample_value(
        "connector_change_latency_seconds_count", {"target": "default", "source": source}
    )
    return value or 0.0


def test_a_change_made_while_a_cycle_ran_counts_in_the_next_cycle() -> None:
    metrics = Metrics()
    metrics.cycle_began()  # the cycle reads the roster as it was...
    written = time.time()  # ...and it changes while that cycle still runs
    metrics.observe([_result({}, {})], [])
    metrics.cycle_began()
    metrics.observe([_result({"e1": Modified("students", written)}, {"e1": written + 0.5})], [])

    assert counted(metrics, "students") == 1
    # The next cycle has an operation for the same person with another cause: not counted.
    metrics.cycle_began()
    metrics.observe([_result({"e1": Modified("students", written)}, {"e1": time.time()})], [])
    assert counted(metrics, "students") == 1
