"""The status page built from a state file made here: escaping, no names unless asked for, a
missing or broken file, no runs yet; and its HTTP answer (GET only, its safety headers)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from connector.demo.localscim import free_port
from connector.planning.held import HeldPlan
from connector.planning.plan import Operation, Plan
from connector.reports.overview import read_overview
from connector.service.health import HealthServer
from connector.service.metrics import Metrics, SourceHealth
from connector.service.statuspage import render_page
from connector.state.store import StateStore
from tests.support.dom import parse

EVIL = "<script>alert(1)</script>"
ERIK = "f00dfeedcafe0123456789abcdef"  # an opaque externalId; its ref is its first 12
ERIK_NAME, ERIK_MAIL, ERIK_PNR = "Erik Lind", "erik.lind@edu.example.se", "200501012384"
GROUP = "a11ce0000000bbbbbbbb"


def summary(outcome: str, applied: dict[str, int], **extra: object) -> dict[str, object]:
    return {
        "outcome": outcome,
        "applied": applied,
        "persons_read": 3,
        "source_failures": [],
        "duration_seconds": 1.25,
        **extra,
    }


def build_state(path: Path, target: str = "vendor") -> None:
    """Three cycles (success, success, held), a held plan, a failing user, a pending approval."""
    state = StateStore.open(path)
    t = state.target(target)
    attributes = {
        "userName": ERIK_MAIL,
        "displayName": ERIK_NAME,
        "emails": [{"value": ERIK_MAIL}],
        "urn:example:personnummer": ERIK_PNR,
    }
    t.record_user(ERIK, "v-1", "created", attributes)
    t.record_group(GROUP, "g-1", "created", {"displayName": "Skola 11111111"})
    for run_id, outcome, applied in (
        ("run1", "success", {"users_created": 3}),
        ("run2", "success", {"users_updated": 1}),
        ("run3", "held", {}),
    ):
        t.start_run(run_id, "run")
        reasons = [f"students returned 1 persons, 3 at the last good read {EVIL}"]
        t.finish_run(run_id, outcome, summary(outcome, applied, hold_reasons=reasons))
    held = Plan(
        [
            Operation("deactivate_user", ERIK, "v-1", reason="left"),
            Operation("remove_members", GROUP, "g-1", members=(ERIK,), reason="left"),
        ]
    )
    t.set_held_plan(HeldPlan("run3", "2025-03-01T02:00:00+00:00", [f"too many {EVIL}"], held))
    t.record_failure(f"update_user:{ERIK}", 60, 3600)
    with state.transaction():
        state._db.execute(
            "INSERT INTO approvals (id, target, held_run_id, keys, requested_by, requested_at, "
            "status) VALUES ('ap1', ?, 'run3', '[\"a\", \"b\"]', 'operator.olle', "
            "'2025-03-01T08:00:00+00:00', 'pending')",
            (target,),
        )
    state.close()


@pytest.fixture
def state_path(tmp_path: Path) -> Path:
    path = tmp_path / "state.db"
    build_state(path)
    return path


def test_page_shows_runs_chart_held_plan_failures_and_approvals(state_path: Path) -> None:
    page = parse(render_page(state_path, None))

    rows = page.find("table", cls="runs").find("tbody").find_all("tr")
    assert [row.find_all("td")[5].text for row in rows] == ["held", "success", "success"]
    assert "created 3" in rows[2].text and "run1" in rows[2].text
    bars = page.find("svg", id="chart").find_all("rect", cls="bar")
    assert [bar.attrs["data-changes"] for bar in bars] == ["3", "1", "0"]  # oldest first
    held = page.find(id="held")
    assert "too many <script>alert(1)</script>" in held.find("ul", cls="reasons").text
    counts = held.find("table", cls="held-counts").text
    assert "deactivate user 1" in counts and "remove members 1" in counts
    assert ERIK[:12] in held.find("table", cls="objects").text
    assert "ap1" in held.find("table", cls="approvals").text
    failing = page.find(id="failing")
    assert "update user: 1" in failing.text and ERIK[:12] in failing.text
    assert "not counted yet" in page.find(id="duplicates").text


def test_page_escapes_everything_from_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    build_state(path, target=EVIL)

    html = render_page(path, None)

    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert parse(html).find(cls="held-target").attrs["data-target"] == EVIL


def test_no_names_by_default_and_names_when_asked(state_path: Path) -> None:
    html = render_page(state_path, None)
    for personal in (ERIK_NAME, "Erik", ERIK_MAIL, "erik.lind", ERIK_PNR, "operator.olle"):
        assert personal not in html
    assert ERIK not in html  # the ref only, never the whole externalId

    named = parse(render_page(state_path, None, show_names=True))

    assert ERIK_MAIL in named.find(id="held").find("table", cls="objects").text
    assert "Skola 11111111" in named.find(id="held").text  # the group's displayName
    assert ERIK_MAIL in named.find(id="failing").text
    assert "operator.olle" in named.find("table", cls="approvals").text
    assert ERIK_PNR not in named.find(id="held").text  # names only, never other attributes


def test_missing_state_file_says_so(tmp_path: Path) -> None:
    page = parse(render_page(tmp_path / "nothing.db", Metrics()))

    assert "no state file yet" in page.find(id="problem").text
    assert "No runs recorded yet." in page.find(id="runs").text
    assert not page.find_all("svg")


def test_broken_or_busy_state_file_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"this is not a database, just bytes " * 200)
    assert "could not be opened" in parse(render_page(broken, None)).find(id="problem").text

    path = tmp_path / "state.db"
    build_state(path)

    def busy(self: object, limit: int = 10) -> list[object]:  # fault injection
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(StateStore, "last_runs", busy)
    problem = parse(render_page(path, None)).find(id="problem").text
    assert "could not be read just now" in problem and "database is locked" in problem


def test_no_runs_yet(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore.open(path).close()

    page = parse(render_page(path, None))

    assert "No runs recorded yet." in page.find(id="runs").text
    assert "Nothing is held back." in page.find(id="held").text
    assert read_overview(path).problem is None


def test_sources_and_uptime_come_from_the_daemon(state_path: Path) -> None:
    metrics = Metrics()
    metrics.sources = {
        "students": SourceHealth("up", None, 812),
        "staff": SourceHealth("failed", "file not found: /srv/exports/staff.csv", None),
    }
    metrics.last_outcome = "held"

    page = parse(render_page(state_path, metrics))

    rows = page.find("table", cls="sources").find("tbody").find_all("tr")
    assert [r.find_all("td")[1].text for r in rows] == ["up", "failed"]
    assert "812" in rows[0].text and "file not found" in rows[1].text
    header = page.find(id="daemon").text
    assert "version" in header and "up " in header and "last cycle: held" in header


def test_duplicates_count_is_shown_with_its_time(state_path: Path) -> None:
    from datetime import UTC, datetime

    state = StateStore.open(state_path)
    state.target("vendor").set_duplicates(4, datetime(2025, 3, 2, 2, 0, tzinfo=UTC))
    state.close()

    text = parse(render_page(state_path, None)).find(id="duplicates").text

    assert "4" in text and "2025-03-02T02:00:00+00:00" in text


def test_http_answer_is_get_only_with_safety_headers(state_path: Path) -> None:
    server = HealthServer(f"127.0.0.1:{free_port()}", Metrics(), 60, state_path=state_path)
    server.start()
    try:
        base = f"http://{server.address}"
        answer = httpx.get(base + "/")
        posted = httpx.post(base + "/", content=b"x")
        metrics = httpx.get(base + "/metrics")
    finally:
        server.stop()
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    csp = answer.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src" not in csp
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"
    assert '<meta http-equiv="refresh" content="30">' in answer.text
    assert posted.status_code == 501
    assert metrics.status_code == 200


def test_a_rejected_config_is_shown_until_a_good_one_is_loaded(state_path: Path) -> None:
    state = StateStore.open(state_path)
    state.set_config_rejected("2025-03-02T09:00:00+00:00", "daemon.intervall_seconds: unknown key")
    state.close()

    rejected = parse(render_page(state_path, None)).find("p", cls="rejected")

    assert "daemon.intervall_seconds: unknown key" in rejected.text
    state = StateStore.open(state_path)
    state.set_config_rejected(None)
    state.close()
    assert parse(render_page(state_path, None)).find_all("p", cls="rejected") == []
