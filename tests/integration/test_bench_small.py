"""The benchmark's scenarios at 2,000 persons, for correctness only (no timing is asserted).

The same code as `python -m bench.run` (bench/run.py): a synthetic municipality in a real slapd
and a roster CSV, synced by the real connector (as a subprocess) into a real scim2-server; after
each scenario the vendor is read back and compared with the generated data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import generate as gen
from bench.run import (
    CHANGE_COUNTS,
    Bench,
    Report,
    ScenarioResult,
    expected_vendor,
    list_resources,
    plan_only,
    render,
    throughput,
)
from connector.errors import ConnectorError
from tests.support.servers import missing_server

pytestmark = pytest.mark.integration

PERSONS = 2_000


def _ok(result: ScenarioResult) -> None:
    assert result.measured is not None
    log = result.measured.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
    assert result.measured.exit_code == 0, log
    assert result.verify_problems == [], result.verify_problems


def test_generator_is_deterministic_and_shaped_like_a_municipality() -> None:
    one, two = gen.generate(PERSONS, seed=7), gen.generate(PERSONS, seed=7)
    assert list(one.students.values()) == list(two.students.values())
    assert one.staff == two.staff and one.schools == two.schools
    assert gen.churn(one).counts() == gen.churn(two).counts()
    assert list(one.students.values()) == list(two.students.values())
    data = gen.generate(100_000, seed=1)
    assert len(data.schools) == 300
    assert len(data.students) == 92_000 and len(data.staff) == 8_000
    assert {s.school_type for s in data.schools} == {"GR", "GY", "VUX"}
    protected = sum(s.protected for s in data.students.values())
    assert 0.002 < protected / len(data.students) < 0.004
    two_schools = sum(len(p.schools) == 2 for p in data.staff.values())
    assert 0.12 < two_schools / len(data.staff) < 0.18
    names = " ".join(f"{s.given_name} {s.family_name}" for s in data.students.values())
    assert all(letter in names for letter in "åäöÅÖ-")
    emails = [s.email for s in data.students.values()] + [p.email for p in data.staff.values()]
    assert len(set(emails)) == len(emails) and all(e.isascii() for e in emails)
    assert gen.school_count(2_000) == 6 and gen.school_count(100) == 3


@pytest.fixture
def bench(tmp_path: Path, slapd_factory: Callable[..., object]) -> Iterator[Bench]:
    """A started benchmark town of 2,000 persons (slapd_factory: a missing slapd fails under
    CI=true and skips elsewhere, like a missing scim2-server)."""
    del slapd_factory
    town = Bench(tmp_path / "city", PERSONS)
    try:
        town.__enter__()
    except ConnectorError as exc:
        missing_server(f"scim2-server is not available: {exc}")
    yield town
    town.__exit__(None, None, None)


def test_the_benchmark_scenarios_leave_the_vendor_matching_the_data(
    tmp_path: Path, bench: Bench
) -> None:
    data = bench.data
    protected = sum(s.protected for s in data.students.values())
    assert protected > 0

    first = bench.first_sync()
    _ok(first)
    users, _ = expected_vendor(data)
    assert len(users) == data.persons - protected  # exactly the non-protected persons
    assert len(list_resources(bench.scim.base_url, "Users")) == data.persons - protected
    assert first.applied["users_created"] == data.persons - protected
    assert first.applied["groups_created"] == len(data.schools)

    quiet = bench.quiet_cycle()
    _ok(quiet)
    assert quiet.write_requests == 0, quiet.requests
    assert quiet.changed_objects == 0, quiet.applied

    one = bench.one_person()  # only where `connector sync --only` exists
    if one is not None:
        _ok(one)
        assert one.applied.get("users_updated") == 1, one.applied

    churn = bench.churn()
    _ok(churn)
    assert churn.changes is not None
    counts = churn.changes.counts()
    assert counts["transferred"] == counts["renamed"] == counts["left"] == counts["joined"] == 5
    assert churn.applied.get("users_deactivated", 0) == sum(not d.protected for d in data.departed)
    assert churn.write_requests > 0 and churn.changed_objects > 0

    rollover = bench.rollover()
    _ok(rollover)
    assert rollover.changes is not None
    moved = [k for k in rollover.changes.transferred if not data.students[k].protected]
    assert rollover.applied.get("members_added", 0) == len(moved)
    assert rollover.applied.get("members_removed", 0) == len(moved)

    # A quiet cycle after all of it: still nothing to write, and the vendor still matches.
    again = bench.quiet_cycle()
    _ok(again)
    assert again.write_requests == 0, again.requests  # _ok: the vendor still matches

    report = Report(
        command="test",
        started=datetime.now(UTC),
        persons=PERSONS,
        plan_persons=0,
        throughput_persons=0,
        concurrency=bench.concurrency,
        machine={},
        scenarios=[first, quiet, churn, rollover],
    )
    out = tmp_path / "RESULTS.md"
    out.write_text(render(report), encoding="utf-8")
    text = out.read_text(encoding="utf-8")
    assert "1% churn" in text and "| vendor matches the data | yes |" in text


def test_planning_only_and_the_throughput_comparison(
    tmp_path: Path, slapd_factory: Callable[..., object]
) -> None:
    del slapd_factory
    plan = plan_only(tmp_path / "plan", PERSONS)
    assert plan.measured is not None and plan.measured.exit_code == 0
    data = gen.generate(PERSONS, seed=1)
    protected = sum(s.protected for s in data.students.values())
    assert plan.extra["planned"]["create_user"] == data.persons - protected
    assert plan.extra["excluded"] == {"protected identity": protected}
    assert plan.measured.max_rss_bytes > 0 and plan.measured.cpu_seconds > 0

    try:
        result = throughput(tmp_path / "throughput", 300, rounds=1)
    except ConnectorError as exc:
        missing_server(f"scim2-server is not available: {exc}")
    assert result.measured is not None and result.measured.exit_code == 0
    assert result.extra["connector_users_at_server"] == 300
    assert result.applied["users_created"] == 300
    assert result.extra["bare_rate"] > 0 and result.extra["connector_rate_creates"] > 0
    # the bulk round: the same 300 users in 100-operation bulk requests, one create per school
    # group, and the memberships in bulk too (no PATCH of its own)
    assert result.extra["bulk_users_at_server"] == 300
    bulk_requests = result.extra["bulk_requests"]
    assert bulk_requests["POST"] <= 10 and "PATCH" not in bulk_requests, bulk_requests
    assert set(result.applied) <= {*CHANGE_COUNTS, "members_skipped"}


def test_the_at_scale_town_syncs_in_bulk(
    tmp_path: Path, slapd_factory: Callable[..., object]
) -> None:
    del slapd_factory
    town = Bench(tmp_path / "scale", 1_000, bulk=True, prefix="scale_")
    try:
        town.__enter__()
    except ConnectorError as exc:
        missing_server(f"scim2-server is not available: {exc}")
    try:
        first = town.first_sync()
        _ok(first)
        assert first.name == "scale_first_sync" and "vendor.bulk" in first.title
        created = first.applied["users_created"]
        # 100 operations to a bulk request: creates, then memberships in chunks per school
        assert first.requests["POST"] < created / 50, first.requests
        quiet = town.quiet_cycle()
        _ok(quiet)
        assert quiet.write_requests == 0, quiet.requests
        one = town.one_person()
        assert one is not None
        _ok(one)
        assert one.applied == {"users_updated": 1}, one.applied
    finally:
        town.__exit__(None, None, None)


def test_the_running_daemon_scenario_measures_quiet_cycles_latency_and_the_listing(
    tmp_path: Path, slapd_factory: Callable[..., object]
) -> None:
    del slapd_factory
    from bench.daemon import run_daemon_scenario

    try:
        figures = run_daemon_scenario(tmp_path / "daemon", 1_000, changes=2, interval=2)
    except ConnectorError as exc:
        missing_server(f"scim2-server is not available: {exc}")
    assert len(figures.quiet_cpu_seconds) == 3 and all(c >= 0 for c in figures.quiet_cpu_seconds)
    assert figures.peak_rss_bytes >= figures.rss_bytes > 0
    assert {k: len(v) for k, v in figures.latencies.items()} == {
        "roster": 2,
        "directory": 2,
        "ss12000": 2,
    }
    assert figures.missed == {}
    # The daemon's own histogram counted each change once, under its source's name.
    counted = {source: m["count"] for source, m in figures.metric_latency.items()}
    assert counted == {"students": 2, "staff": 2, "sis": 2}, figures.metric_latency
    listing = figures.listing
    assert listing["users"] == listing["bare_users"] > 900 and listing["ratio"] > 0
    report = Report("test", datetime.now(UTC), 0, 0, 0, 8, {}, daemon_persons=1_000)
    report.daemon = figures
    text = render(report)
    assert "change-to-vendor latency, roster" in text and "The running daemon" in text
    assert "change-to-vendor latency, ss12000" in text
