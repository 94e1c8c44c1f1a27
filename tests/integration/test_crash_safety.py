"""A first sync killed (SIGKILL) at some request, then run again: exactly one account per person,
every school's group right, and a state file SQLite calls sound.

The sync runs as a real subprocess through the fault proxy, which injects no faults here; it
only counts the requests it forwards and, when the n-th has reached the server and been
answered, kills the connector before the answer is passed on: the server did the work, the
connector never heard of it.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.demo.localscim import LocalScimServer
from tests.fakes.faultproxy import FaultProxy, RequestMatch, request_match
from tests.support.ids import opaque_id
from tests.support.paths import REPO
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.workspace import Workspace

SCHOOLS = {"11111111": "Ekeby skola", "22222222": "Björkängsskolan", "33333333": "Centralskolan"}
STUDENTS = 150
GIVEN = ["Åsa", "Erik", "Märta", "Noa", "Liv", "Omar", "Saga", "Elias", "Ebba", "Hugo", "Ines"]
FAMILY = ["Öberg", "Lind", "Ström", "Björk", "Nyström", "Karlsson", "Ali", "Ek", "Åkesson"]


def roster() -> list[list[str]]:
    codes = list(SCHOOLS)
    rows = []
    for i in range(1, STUDENTS + 1):
        school = codes[i % 3]
        rows.append(
            student(f"E{i:03d}", GIVEN[i % 11], FAMILY[i % 9], school, school_name=SCHOOLS[school])
        )
    # a few students are placed at two schools
    for i in (3, 4, 5):
        school = codes[(i + 1) % 3]
        rows.append(
            student(f"E{i:03d}", GIVEN[i % 11], FAMILY[i % 9], school, school_name=SCHOOLS[school])
        )
    return rows


def expected_members() -> dict[str, set[str]]:
    members: dict[str, set[str]] = {code: set() for code in SCHOOLS}
    for row in roster():
        members[row[4]].add(row[3])
    return members


def run_sync(workspace: Workspace, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector", "--config", str(workspace.config_path), "sync", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "TEST_SCIM_TOKEN": SCIM_TOKEN},
        timeout=120,
    )


def finished(process: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    events = [json.loads(line) for line in process.stderr.splitlines() if line.startswith("{")]
    return next(e for e in reversed(events) if e["event"] == "sync.finished")


def integrity(state_path: Path) -> str:
    connection = sqlite3.connect(state_path)
    try:
        return str(connection.execute("PRAGMA integrity_check").fetchone()[0])
    finally:
        connection.close()


@pytest.fixture
def proxy(scim_server: LocalScimServer) -> Iterator[FaultProxy]:
    with FaultProxy(scim_server.root, seed=0, rates={}) as started:
        yield started


@pytest.fixture
def crash_workspace(tmp_path: Path, scim_url: str, proxy: FaultProxy) -> Workspace:
    workspace = Workspace(tmp_path, proxy.url_for(scim_url))
    workspace.students(roster())
    workspace.overrides["vendor"] = {
        "base_url": workspace.scim_url,
        "token": "${TEST_SCIM_TOKEN}",
        "max_retries": 1,
        "timeout_seconds": 10,
        "member_chunk_size": 10,  # 16 membership PATCHes: room to die between them
    }
    workspace.write_config()
    return workspace


MEMBERS: RequestMatch = request_match("PATCH", "/Groups/")
USER_POSTS: RequestMatch = request_match("POST", "/Users")

KILL_POINTS = {
    "request-5": (5, None),  # among the first lookups and group creates
    "request-40": (40, None),
    "request-120": (120, None),
    "request-160": (160, None),  # near the end (the listing spares lookups: ~170 in all)
    "user-create-100": (100, USER_POSTS),  # just after the server created a user
    "member-add-1": (1, MEMBERS),  # the first membership chunk landed, unrecorded
    "member-add-9": (9, MEMBERS),  # in the middle of the membership additions
}


def kill_first_sync(
    workspace: Workspace, proxy: FaultProxy, n: int, match: RequestMatch | None
) -> None:
    """Run `sync` as a subprocess and SIGKILL it when the n-th (matching) request has been
    performed by the server, before the connector sees the answer."""
    started = threading.Event()
    holder: dict[str, subprocess.Popen[str]] = {}

    def kill() -> None:
        started.wait(10)
        holder["process"].send_signal(signal.SIGKILL)
        holder["process"].wait(10)

    proxy.on_forwarded(n, kill, match=match)
    holder["process"] = subprocess.Popen(
        [sys.executable, "-m", "connector", "--config", str(workspace.config_path), "sync"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=REPO,
        env={**os.environ, "TEST_SCIM_TOKEN": SCIM_TOKEN},
    )
    started.set()
    assert holder["process"].wait(120) == -signal.SIGKILL, "the sync ended before the kill point"
    assert proxy.hooks_fired() == 1


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_killed_first_sync_resumes_without_duplicates(
    point: str, crash_workspace: Workspace, proxy: FaultProxy, peek: ScimPeek
) -> None:
    workspace = crash_workspace
    kill_first_sync(workspace, proxy, *KILL_POINTS[point])
    killed_at = proxy.forwarded
    assert integrity(workspace.state_path) == "ok"

    resumed = run_sync(workspace)

    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert integrity(workspace.state_path) == "ok"
    users = peek.list("Users")
    names = sorted(u["userName"] for u in users)
    assert names == sorted({row[3] for row in roster()}), "missing or duplicate accounts"
    externals = sorted(u.get("externalId") or "" for u in users)
    assert externals == sorted({opaque_id(row[0]) for row in roster()}), "duplicate externalId"
    groups = peek.list("Groups")
    assert sorted(g.get("externalId") for g in groups) == sorted(SCHOOLS), "duplicate group"
    by_id = {u["id"]: u["userName"] for u in users}
    want = expected_members()
    for group in groups:
        values = [m["value"] for m in group.get("members") or []]
        assert len(values) == len(set(values)), "a member twice"
        assert {by_id.get(v, v) for v in values} == want[group["externalId"]]
        assert group["displayName"] == SCHOOLS[group["externalId"]]

    # the state file links every person to the one account the server holds for them
    with sqlite3.connect(workspace.state_path) as connection:
        links = dict(connection.execute("SELECT external_id, vendor_id FROM users"))
        group_links = dict(connection.execute("SELECT external_id, vendor_id FROM groups"))
    assert links == {u["externalId"]: u["id"] for u in users}
    assert group_links == {g["externalId"]: g["id"] for g in groups}

    # and nothing is left to do, by the state file or by the server's real state
    again = run_sync(workspace, "--full")
    assert again.returncode == 0, again.stdout + again.stderr
    assert finished(again)["planned"] == {}
    print(f"\n{point}: killed after {killed_at} forwarded requests; resumed and converged")


def test_accounts_created_before_a_crash_are_recorded_as_created(
    crash_workspace: Workspace, proxy: FaultProxy, peek: ScimPeek
) -> None:
    workspace = crash_workspace
    kill_first_sync(workspace, proxy, *KILL_POINTS["user-create-100"])

    assert run_sync(workspace).returncode == 0

    assert len(peek.list("Users")) == STUDENTS  # the server was empty: the connector made all
    with sqlite3.connect(workspace.state_path) as connection:
        origins = dict(connection.execute("SELECT origin, count(*) FROM users GROUP BY origin"))
    assert origins == {"created": STUDENTS}
