"""A full reconcile lists the vendor's pages in parallel (within `vendor.concurrency`), and a
listing read that way is believed only when it is whole.

The vendor is a real scim2-server behind the fault proxy, which spoils single pages: one that
fails for good or stalls, one with half its resources gone and totalResults lowered, one that
says "nobody" half-way, one that holds a resource twice. Each makes the listing fail - nothing
unlinked, nothing re-created - and a page that fails or stalls once is simply asked again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.demo.localscim import LocalScimServer
from tests.fakes.faultproxy import FaultProxy
from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

SCHOOLS = ("11111111", "22222222", "33333333")
STUDENTS = 150
PAGE = 20  # 150 users: 8 pages, 7 of them after the first


def town(count: int) -> list[list[str]]:
    return [
        student(f"E{i}", f"Elev{i}", f"Eriksson{i}", SCHOOLS[i % 3], marking="Nej")
        for i in range(count)
    ]


def pages_asked(proxy: FaultProxy) -> int:
    """Pages of the users' listing asked for so far."""
    return sum(1 for m, path in proxy.request_log if m == "GET" and "/Users?startIndex=" in path)


def linked_users(workspace: Workspace) -> int:
    with sqlite3.connect(workspace.state_path) as db:
        return int(db.execute("SELECT COUNT(*) FROM users").fetchone()[0])


@pytest.fixture
def proxied(
    tmp_path: Path, scim_server: LocalScimServer, scim_url: str
) -> Iterator[tuple[Workspace, FaultProxy]]:
    with FaultProxy(scim_server.root, stall_seconds=3.0) as proxy:
        workspace = Workspace(tmp_path, proxy.url_for(scim_url))
        workspace.overrides["reconcile"] = {"page_size": PAGE}
        workspace.overrides["vendor"] = {
            "base_url": workspace.scim_url,
            "token": "${TEST_SCIM_TOKEN}",
            "concurrency": 4,
            "max_retries": 1,
            "timeout_seconds": 2.0,
        }
        workspace.students(town(STUDENTS))
        assert workspace.sync().exit_code == 0
        yield workspace, proxy


def test_a_full_reconcile_reads_the_pages_in_parallel_and_believes_a_whole_listing(
    proxied: tuple[Workspace, FaultProxy], peek: ScimPeek
) -> None:
    workspace, proxy = proxied
    proxy.peak_in_flight = 0
    # The vendor lost one account by hand: the reconcile must see it gone, and re-create it.
    victim = peek.users()["e7@edu.example.se"]["id"]
    peek.delete("Users", victim)

    pages_before = pages_asked(proxy)

    result = workspace.run("sync", "--full")

    assert result.exit_code == 0, result.stdout
    assert pages_asked(proxy) - pages_before == 8  # ceil(149 / 20): each page once
    assert proxy.peak_in_flight > 1, "the pages after the first were asked for one at a time"
    # Only the account gone at the vendor is missing from the listing: nobody else is
    # re-created or re-linked.
    assert result.event("sync.finished")["applied"] == {"users_created": 1, "members_added": 1}
    assert len(peek.users()) == STUDENTS


@pytest.mark.parametrize(
    ("kind", "times"),
    [
        ("500", 5),  # a page that fails, and fails again when asked again
        ("stall", 5),  # a page that never comes
        ("lost_half", 1),  # half a page gone and totalResults lowered to match
        ("empty_list", 1),  # "nobody" half-way through
        ("duplicate", 1),  # one resource twice, one lost, the count as announced
    ],
)
def test_a_broken_page_fails_the_parallel_listing_and_nothing_is_unlinked(
    kind: str, times: int, proxied: tuple[Workspace, FaultProxy], peek: ScimPeek
) -> None:
    workspace, proxy = proxied
    page = f"/Users?startIndex={1 + 3 * PAGE}&"
    proxy.inject(kind, method="GET", path_contains=page, times=times)

    result = workspace.run("sync", "--full")

    assert proxy.faults[kind] >= 1
    assert result.exit_code == 1, result.stdout
    assert "reconcile.failed" in {e["event"] for e in result.log_events()}
    assert linked_users(workspace) == STUDENTS
    after = workspace.sync()
    assert after.exit_code == 0
    assert "POST" not in after.event("sync.finished")["requests"]
    assert len(peek.users()) == STUDENTS


@pytest.mark.parametrize("kind", ["500", "stall", "reset"])
def test_a_page_that_fails_once_is_asked_again_and_the_listing_is_whole(
    kind: str, proxied: tuple[Workspace, FaultProxy], peek: ScimPeek
) -> None:
    workspace, proxy = proxied
    proxy.inject(kind, method="GET", path_contains=f"/Users?startIndex={1 + 5 * PAGE}&")

    result = workspace.run("sync", "--full")

    assert proxy.faults[kind] == 1
    assert result.exit_code == 0, result.stdout
    finished = result.event("sync.finished")
    assert finished["full_reconcile"] is True and finished["planned"] == {}
    assert "POST" not in finished["requests"]
    assert linked_users(workspace) == STUDENTS
