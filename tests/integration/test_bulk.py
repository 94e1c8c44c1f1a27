"""SCIM Bulk against the real scim2-server (which advertises Bulk): the same end state as one
request per change, in far fewer requests, and no duplicate when a bulk answer is lost after
the server carried it out."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from connector.demo.localscim import LocalScimServer
from tests.fakes.faultproxy import FaultProxy
from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.town import (
    assert_server_holds,
    expected_state,
    initial_students,
    roster_rows,
    staff_rows,
)
from tests.support.workspace import Workspace, cycles_until_clean

BATCH = 7  # operations per bulk request (the server would take 1,000)
A = "11111111"


def bulk_vendor(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "base_url": url,
        "token": "${TEST_SCIM_TOKEN}",
        "bulk": True,
        "bulk_max_operations": BATCH,
        "member_chunk_size": 10,
        "concurrency": 4,
        **extra,
    }


@pytest.fixture
def bulk_workspace(workspace: Workspace) -> Workspace:
    workspace.overrides["vendor"] = bulk_vendor(workspace.scim_url)
    return workspace


@pytest.fixture
def proxied_bulk(
    tmp_path, scim_server: LocalScimServer, scim_url: str
) -> Iterator[tuple[Workspace, FaultProxy]]:
    with FaultProxy(scim_server.root, seed=7, rates={}, stall_seconds=1.5) as proxy:
        workspace = Workspace(tmp_path, proxy.url_for(scim_url))
        workspace.overrides["vendor"] = bulk_vendor(
            workspace.scim_url, timeout_seconds=1.0, max_retries=2
        )
        workspace.overrides["safety"] = {"min_source_percent": 0, "retry_delay_seconds": 0}
        yield workspace, proxy


def test_a_school_year_in_bulk(bulk_workspace: Workspace, peek: ScimPeek) -> None:
    workspace = bulk_workspace
    students = initial_students()  # 60 students, plus 4 staff at three schools
    workspace.students(roster_rows(students))
    workspace.staff(staff_rows())

    first = workspace.sync()

    assert first.exit_code == 0, first.stdout + first.stderr
    assert_server_holds(peek, *expected_state(students))
    finished = first.event("sync.finished")
    assert finished["applied"]["users_created"] == 64
    assert finished["applied"]["members_added"] == 66  # P4 works at two schools
    # 3 group creates one by one; 64 creates in ceil(64/7) = 10 bulk requests; 9 member
    # chunks (at most 10 members each, per school) in 2 bulk requests; no PATCH on its own.
    assert finished["requests"].get("POST") == 3 + 10 + 2, finished["requests"]
    assert "PATCH" not in finished["requests"]

    students["E05"] = ("Åsa", "Öberg-Lind", students["E05"][2])  # renamed
    students["E10"] = (students["E10"][0], students["E10"][1], ["33333333"])  # moved to C
    leaver = students.pop("E45")
    students["E61"] = ("Selma", "Ängström", ["11111111"])  # new
    workspace.students(roster_rows(students))

    second = workspace.sync()

    assert second.exit_code == 0, second.stdout + second.stderr
    assert_server_holds(peek, *expected_state(students, {"E45": leaver}))
    applied = second.event("sync.finished")["applied"]
    assert applied["users_created"] == 1 and applied["users_deactivated"] == 1
    assert applied["users_updated"] >= 1 and applied["members_removed"] == 2

    quiet = workspace.sync()
    assert quiet.event("sync.finished")["requests"] == {}


def test_lost_bulk_answers_create_no_duplicates(
    proxied_bulk: tuple[Workspace, FaultProxy], peek: ScimPeek
) -> None:
    workspace, proxy = proxied_bulk
    students = initial_students()
    workspace.students(roster_rows(students))
    workspace.staff(staff_rows())
    # The server carries out these bulk requests, and the connector never hears how it went.
    for kind in ("after_500", "after_reset", "truncated", "no_id", "after_stall"):
        proxy.inject(kind, method="POST", path_contains="/Bulk")
    proxy.inject("503", method="POST", path_contains="/Bulk")  # and one it never carries out

    results = cycles_until_clean(workspace)

    assert results[-1].exit_code == 0, results[-1].stdout + results[-1].stderr
    assert_server_holds(peek, *expected_state(students))  # one account per person
    lost = [e for r in results for e in r.log_events() if e.get("event") == "apply.bulk_failed"]
    assert len(lost) >= 4, [e.get("status") for e in lost]
    assert proxy.stats()["faults"] == 6


def test_bulk_off_sends_one_request_per_change(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.students(roster_rows(initial_students()))
    result = workspace.sync()
    assert result.exit_code == 0
    requests = result.event("sync.finished")["requests"]
    assert requests["POST"] == 3 + 60  # the server advertises Bulk, but the config says no


def test_a_bulk_update_refused_by_version_is_reread_and_replanned(
    bulk_workspace: Workspace, peek: ScimPeek
) -> None:
    workspace = bulk_workspace
    workspace.students([student("E1", "Åsa", "Öberg", A), student("E2", "Erik", "Lind", A)])
    workspace.sync()
    for name in ("e1@edu.example.se", "e2@edu.example.se"):
        # someone changes both accounts at the vendor: their versions move on
        peek.set_vendor_attribute(peek.users()[name]["id"], title="Talboksrätt")

    workspace.students([student("E1", "Åsa-Maria", "Öberg", A), student("E2", "Erik", "Ek", A)])
    result = workspace.sync()

    assert result.exit_code == 0, result.stdout
    assert len([e for e in result.log_events() if e.get("event") == "apply.replanned"]) == 2
    users = peek.users()
    assert users["e1@edu.example.se"]["name"]["givenName"] == "Åsa-Maria"
    assert users["e2@edu.example.se"]["name"]["familyName"] == "Ek"
    assert all(u["title"] == "Talboksrätt" for u in users.values())  # not ours: kept
    # one bulk request with both (each refused: 412), then per user a read and a PATCH
    # (and the one GET of /ServiceProviderConfig a process makes)
    assert result.event("sync.finished")["requests"] == {"POST": 1, "GET": 3, "PATCH": 2}
