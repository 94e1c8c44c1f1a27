"""Two `connector run` replicas on one PostgreSQL state: one leads and applies, the other
waits; the leader killed with SIGKILL in the middle of a cycle, the other takes over and
finishes the work - every user at the vendor once, every membership right."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import psycopg

from connector.config import StateConfig
from connector.demo.localscim import free_port
from tests.fakes.postgres import PASSWORD as PG_PASSWORD
from tests.fakes.postgres import PostgresCluster
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

SCHOOLS = [f"{n:08d}" for n in range(10000001, 10000006)]
STUDENTS = 400


def town(workspace: Workspace, postgres_state: StateConfig) -> None:
    workspace.students(
        [
            student(f"E{n}", f"Elev{n}", f"Efternamn{n}", SCHOOLS[n % len(SCHOOLS)])
            for n in range(STUDENTS)
        ]
    )
    workspace.use_postgres(str(postgres_state.url), PG_PASSWORD)
    # One request at a time, no bulk: the first cycle takes a while, long enough to be cut.
    workspace.overrides["vendor"] = {
        **workspace.config()["vendor"],
        "concurrency": 1,
        "bulk": False,
    }
    workspace.overrides["daemon"] = {"interval_seconds": 2, "shutdown_timeout_seconds": 10}


def replica(workspace: Workspace, name: str) -> tuple[DaemonProcess, str]:
    """A `connector run` with a health listener of its own."""
    port = free_port()
    workspace.overrides["health"] = {"listen": f"127.0.0.1:{port}"}
    workspace.write_config()
    process = DaemonProcess(workspace, workspace.environment, log_name=f"{name}.log")
    return process, f"http://127.0.0.1:{port}"


def leader_gauge(health: str) -> float | None:
    for line in httpx.get(f"{health}/metrics", timeout=5).text.splitlines():
        if line.startswith("connector_leader "):
            return float(line.split()[1])
    return None


def exact(peek: ScimPeek) -> bool:
    users = peek.list("Users")
    external_ids = [u.get("externalId") for u in users]
    groups = peek.groups()
    members = sum(len(g.get("members", [])) for g in groups.values())
    return len(users) == STUDENTS == len(set(external_ids)) and members == STUDENTS


def test_the_standby_takes_over_when_the_leader_is_killed_mid_cycle(
    tmp_path: Path, scim_url: str, postgres_state: StateConfig, peek: ScimPeek
) -> None:
    workspace = Workspace(tmp_path, scim_url)
    town(workspace, postgres_state)
    first, first_health = replica(workspace, "first")
    try:
        wait_for(lambda: first.count("leader.acquired"), 30, "the first replica to lead")
        second, second_health = replica(workspace, "second")
        wait_for(lambda: second.count("leader.waiting"), 30, "the second replica to wait")
        ready = httpx.get(f"{second_health}/readyz", timeout=5)
        assert ready.status_code == 200 and "standby" in ready.text
        assert leader_gauge(second_health) == 0 and leader_gauge(first_health) == 1

        # Mid-cycle: some users sent, not all.
        wait_for(lambda: 40 <= len(peek.list("Users")) < STUDENTS, 60, "the first cycle to run")
        assert second.count("sync.started") == 0 and second.count("sync.finished") == 0
        os.kill(first.process.pid, signal.SIGKILL)
        assert first.stop() == -signal.SIGKILL
        sent_by_first = len(peek.list("Users"))
        assert sent_by_first < STUDENTS, "the cycle was not cut"

        wait_for(lambda: second.count("leader.acquired"), 15, "the second replica to lead")
        wait_for(lambda: exact(peek), 30, "the vendor to be exact after the takeover")
        assert leader_gauge(second_health) == 1
        assert second.stop() == 0
        failed = [e for e in second.events() if e["event"] == "scim.request.failed"]
        assert not failed, failed[:3]
    finally:
        first.stop()


def test_a_leader_that_loses_its_lock_stops_applying_and_exits(
    tmp_path: Path,
    scim_url: str,
    postgres_state: StateConfig,
    postgres_cluster: PostgresCluster,
) -> None:
    workspace = Workspace(tmp_path, scim_url)
    town(workspace, postgres_state)
    leader, _health = replica(workspace, "leader")
    try:
        wait_for(lambda: leader.count("leader.acquired"), 30, "the replica to lead")
        database = str(postgres_state.url).rsplit("/", 1)[1]
        with psycopg.connect(postgres_cluster.admin_url(database), autocommit=True) as admin:
            # The database restarted, or an operator cut the lock's session: the lock is gone.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'connector %%:%%' AND datname = %s",
                (database,),
            )
        leader.process.wait(timeout=20)
        assert leader.stop() == 75
        events = leader.events()
        assert any(e["event"] == "leader.lost" for e in events)
        lost_at = next(i for i, e in enumerate(events) if e["event"] == "leader.lost")
        applied_after = [e for e in events[lost_at:] if e["event"] == "sync.started"]
        assert not applied_after
    finally:
        leader.stop()
