"""The status page of a real `connector run`, rendered by headless Chromium: the last runs with
their outcomes, one chart bar per cycle, the held plan and why; a screenshot for CI. And the
possible duplicates it shows, counted at a full reconcile as the report lists them."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from connector.demo.localscim import free_port
from connector.service.statuspage import render_page
from connector.state.store import StateStore
from tests.support.browser import artifacts_dir, chromium, dump_dom, screenshot
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.dom import parse
from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

SCHOOLS = ("11111111", "22222222", "33333333")
A = SCHOOLS[0]
SHRUNK_REASON = "students returned 10 persons, 30 at the last good read"


def roster(count: int) -> list[list[str]]:
    return [student(f"E{i}", f"Elev{i}", f"Eriksson{i}", SCHOOLS[i % 3]) for i in range(count)]


def finished(daemon: DaemonProcess, outcome: str) -> list[dict[str, Any]]:
    return [e for e in daemon.events() if e["event"] == "sync.finished" and e["outcome"] == outcome]


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_status_page_in_headless_chromium(tmp_path: Path, scim_url: str) -> None:
    chromium()  # skips (fails in CI) before starting anything when there is none
    workspace = Workspace(tmp_path, scim_url)
    workspace.overrides["safety"] = {}  # the defaults: a roster shrinking by two thirds is held
    workspace.overrides["daemon"] = {"interval_seconds": 1, "shutdown_timeout_seconds": 10}
    workspace.overrides["health"] = {"listen": f"127.0.0.1:{free_port()}"}
    workspace.students(roster(30))
    workspace.write_config()
    url = "http://" + workspace.config()["health"]["listen"] + "/"
    daemon = DaemonProcess(workspace, workspace.environment)
    try:
        wait_for(lambda: finished(daemon, "success"), 60, "a successful first cycle")
        workspace.students(roster(10))
        wait_for(
            lambda: [e for e in finished(daemon, "held") if e["persons_read"] == 10],
            60,
            "a cycle holding the shrunk roster back",
        )
        dom = dump_dom(url, tmp_path / "chromium")
        shot = screenshot(url, artifacts_dir() / "status-page.png", tmp_path / "chromium")
        events = daemon.events()
    finally:
        assert daemon.stop() == 0

    page = parse(dom)
    outcomes = {e["run_id"]: e["outcome"] for e in events if e["event"] == "sync.finished"}
    rows = [
        [cell.text for cell in row.find_all("td")]
        for row in page.find("table", cls="runs").find("tbody").find_all("tr")
    ]
    done = [(row[1], row[5]) for row in rows if row[5] != "-"]  # a cycle in flight has none
    assert {"success", "held"} <= {outcome for _, outcome in done}
    assert all(outcomes[run_id] == outcome for run_id, outcome in done), (done, outcomes)
    assert [row[0] for row in rows] == ["default"] * len(rows)

    bars = page.find("svg", id="chart").find_all("rect", cls="bar")
    assert [bar.attrs["data-run"] for bar in bars] == [row[1] for row in reversed(rows)]
    first_run = next(e["run_id"] for e in events if e["event"] == "sync.finished")
    first = next(bar for bar in bars if bar.attrs["data-run"] == first_run)
    # 30 users and 3 school groups created, 30 memberships added
    assert first.attrs["data-changes"] == "63"

    held = page.find(id="held")
    assert any(SHRUNK_REASON in reason.text for reason in held.find_all("li"))
    assert "deactivate user 20" in held.find("table", cls="held-counts").text
    duplicates = page.find("table", cls="duplicates").text  # counted at the first, full cycle
    assert "default 0 at the full reconcile of" in duplicates
    assert "Eriksson" not in dom and "@edu.example.se" not in dom  # refs only, by default

    assert shot.exists() and shot.stat().st_size > 20_000, shot
    assert png_size(shot) == (1280, 1600)


def test_full_reconcile_counts_possible_duplicates_as_the_report_lists_them(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.overrides["reconcile"] = {"full_every_hours": 0}  # every sync lists the vendor
    workspace.students([student("E1", "Åsa", "Öberg", A), student("E2", "Erik", "Lind", A)])
    assert workspace.sync().exit_code == 0
    assert duplicates_in_state(workspace) == 0
    peek.create_user({"userName": "asa.oberg", "emails": [{"value": "e1@edu.example.se"}]})
    peek.create_user({"userName": "erik.l", "emails": [{"value": "E2@EDU.example.se"}]})
    peek.create_user({"userName": "lind", "name": {"givenName": "Erik", "familyName": "Lind"}})

    assert workspace.sync().exit_code == 0

    assert duplicates_in_state(workspace) == 2  # the same name but at no school is not one
    assert "2 possible duplicate(s)" in workspace.run("report", "duplicates").stdout
    text = parse(render_page(workspace.state_path, None)).find("table", cls="duplicates").text
    assert text.startswith("target possible duplicates default 2 at the full reconcile of")


def duplicates_in_state(workspace: Workspace) -> int | None:
    state = StateStore.open_readonly(workspace.state_path)
    assert state is not None
    try:
        counted = state.target("default").duplicates()
    finally:
        state.close()
    return counted[0] if counted else None
