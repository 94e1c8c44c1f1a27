"""Quiet cycles (connector/cycle/quiet.py), on a real daemon against a real scim2-server: once a
cycle finds nothing to do and nothing changes, the cycles that follow parse nothing, plan
nothing and send nothing; a changed roster, a write to the state from beside, a held plan or
the periodic full plan make a cycle plan everything again, and a change still reaches the
vendor - a newly protected student's account is taken away as promptly as ever."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.ss12000_server import SS12000Server, enrolment
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ldap import directory_source
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.ss12000 import ss12000_workspace
from tests.support.workspace import Workspace

A = "11111111"
ROSTER = [student("E1", "Åsa", "Öberg", A), student("E2", "Erik", "Lind", A)]


@pytest.fixture
def workspace(tmp_path: Path, scim_url: str) -> Workspace:
    workspace = Workspace(tmp_path, scim_url)
    workspace.students(ROSTER)
    workspace.overrides["daemon"] = {"interval_seconds": 1, "shutdown_timeout_seconds": 10}
    workspace.write_config()
    return workspace


@pytest.fixture
def daemon(workspace: Workspace) -> Iterator[DaemonProcess]:
    running = DaemonProcess(workspace, {"TEST_SCIM_TOKEN": SCIM_TOKEN})
    try:
        yield running
    finally:
        running.stop()


def events(daemon: DaemonProcess, name: str) -> list[dict[str, Any]]:
    return [e for e in daemon.events() if e.get("event") == name]


def after(daemon: DaemonProcess, count: int, name: str) -> list[dict[str, Any]]:
    """The events called `name` logged after the first `count` sync.finished events."""
    seen, found = 0, []
    for event in daemon.events():
        if seen >= count and event.get("event") == name:
            found.append(event)
        seen += event.get("event") == "sync.finished"
    return found


def quiet_cycles(daemon: DaemonProcess) -> int:
    return sum(1 for e in events(daemon, "sync.finished") if e.get("quiet"))


def test_once_settled_nothing_is_parsed_planned_or_sent_until_the_roster_changes(
    workspace: Workspace, daemon: DaemonProcess, peek: ScimPeek
) -> None:
    wait_for(lambda: quiet_cycles(daemon) >= 3, what="three quiet cycles")
    finished = events(daemon, "sync.finished")
    quiet = [e for e in finished if e["quiet"]]
    assert all(e["outcome"] == "success" and e["requests"] == {} for e in quiet)
    assert all(e["users_in_scope"] == 2 and e["persons_read"] == 2 for e in quiet)
    # The cycles before the first quiet one: the creates, then a plan that found nothing.
    first_quiet = finished.index(quiet[0])
    assert finished[first_quiet - 1]["planned"] == {}
    assert events(daemon, "source.unchanged")
    assert len(events(daemon, "source.read")) == 1  # parsed once: the file never changed
    assert len(events(daemon, "plan.computed")) == first_quiet

    cycles = len(events(daemon, "sync.finished"))
    workspace.students([*ROSTER, student("E3", "Nils", "Berg", A)])
    wait_for(lambda: "e3@edu.example.se" in peek.users(), what="the new student at the vendor")

    planning = after(daemon, cycles, "sync.planning")
    assert planning and planning[0]["why"] == "a source changed"
    assert set(peek.users()) == {"e1@edu.example.se", "e2@edu.example.se", "e3@edu.example.se"}
    wait_for(
        lambda: any(e.get("quiet") for e in after(daemon, cycles + 2, "sync.finished")),
        what="quiet again after the change",
    )


def test_a_student_who_becomes_protected_is_taken_off_at_once(
    workspace: Workspace, daemon: DaemonProcess, peek: ScimPeek
) -> None:
    wait_for(lambda: quiet_cycles(daemon) >= 1, what="a quiet cycle")
    workspace.students([ROSTER[0], student("E2", "Erik", "Lind", A, marking="Ja")])

    wait_for(lambda: "e2@edu.example.se" not in peek.users(), what="the protected student gone")

    assert set(peek.users()) == {"e1@edu.example.se"}
    assert "Lind" not in "".join(daemon.lines())


def test_a_write_to_the_state_from_beside_makes_the_next_cycle_plan(
    workspace: Workspace, daemon: DaemonProcess
) -> None:
    wait_for(lambda: quiet_cycles(daemon) >= 1, what="a quiet cycle")
    cycles = len(events(daemon, "sync.finished"))

    with sqlite3.connect(workspace.state_path) as beside:  # as `connector approve` would
        beside.execute("INSERT INTO meta (key, value) VALUES ('test.beside', '1')")

    wait_for(lambda: after(daemon, cycles, "sync.planning"), what="a cycle that plans")
    assert after(daemon, cycles, "sync.planning")[0]["why"] == (
        "the state was written by another process"
    )


def test_a_held_plan_is_planned_again_every_cycle(tmp_path: Path, scim_url: str) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.students(ROSTER)
    workspace.overrides["daemon"] = {"interval_seconds": 1, "shutdown_timeout_seconds": 10}
    workspace.overrides["safety"] = {"max_deactivations": {"count": 0, "percent": 0}}
    workspace.write_config()
    with ScimPeek(scim_url) as peek:
        daemon = DaemonProcess(workspace, {"TEST_SCIM_TOKEN": SCIM_TOKEN})
        try:
            held_plan_is_planned_again(workspace, daemon, peek)
        finally:
            assert daemon.stop() == 0


def held_plan_is_planned_again(workspace: Workspace, daemon: DaemonProcess, peek: ScimPeek) -> None:
    wait_for(lambda: quiet_cycles(daemon) >= 1, what="a quiet cycle")
    cycles = len(events(daemon, "sync.finished"))
    workspace.students([student("E1", "Åsa", "Öberg", A)])  # a leaver, held by the limit

    wait_for(lambda: len(after(daemon, cycles, "sync.finished")) >= 4, what="four cycles")

    later = after(daemon, cycles, "sync.finished")
    assert all(e["outcome"] == "held" and not e["quiet"] for e in later)
    assert "e2@edu.example.se" in peek.users()


def test_with_full_plan_every_minutes_zero_no_cycle_is_quiet(tmp_path: Path, scim_url: str) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.students(ROSTER)
    workspace.overrides["daemon"] = {
        "interval_seconds": 1,
        "shutdown_timeout_seconds": 10,
        "full_plan_every_minutes": 0,
    }
    workspace.write_config()
    daemon = DaemonProcess(workspace, {"TEST_SCIM_TOKEN": SCIM_TOKEN})
    try:
        wait_for(lambda: len(events(daemon, "sync.finished")) >= 4, what="four cycles")
    finally:
        assert daemon.stop() == 0
    assert quiet_cycles(daemon) == 0
    reasons = {e["why"] for e in events(daemon, "sync.planning")}
    assert "the periodic full plan is due" in reasons


def test_an_ss12000_source_read_incrementally_lets_cycles_be_quiet_and_its_changes_arrive(
    tmp_path: Path, scim_url: str
) -> None:
    with SS12000Server(token_lifetime=3600) as sis, ScimPeek(scim_url) as peek:
        unit = sis.add_school_unit("Björkskolan", A, ("GR",))
        ids = {
            key: sis.add_person(
                given,
                "Lind",
                security_marking="Ingen",
                emails=[("Skola elev", f"{key}@elev.example.se")],
                enrolments=[enrolment(unit, "GR", 5)],
            )["id"]
            for key, given in (("astrid", "Astrid"), ("bo", "Bo"))
        }
        workspace = ss12000_workspace(tmp_path, scim_url, sis)
        workspace.overrides["daemon"] = {"interval_seconds": 1, "shutdown_timeout_seconds": 10}
        workspace.overrides["reconcile"] = {"full_every_hours": 24}
        workspace.write_config()
        daemon = DaemonProcess(workspace, {"TEST_SCIM_TOKEN": SCIM_TOKEN, **workspace.environment})
        try:
            wait_for(lambda: quiet_cycles(daemon) >= 2, what="quiet cycles", timeout=30)
            sis.update("persons", ids["astrid"], familyName="Åberg")
            sis.update("persons", ids["bo"], securityMarking="Skyddad folkbokföring")

            wait_for(
                lambda: (
                    set(peek.users()) == {"astrid@elev.example.se"}
                    and peek.users()["astrid@elev.example.se"]["name"]["familyName"] == "Åberg"
                ),
                what="the change and the protection at the vendor",
            )
            cycles = len(events(daemon, "sync.finished"))
            wait_for(lambda: any(e["quiet"] for e in after(daemon, cycles, "sync.finished")))
        finally:
            assert daemon.stop() == 0
    incremental = [e for e in events(daemon, "source.read") if e.get("mode") == "incremental"]
    assert incremental and any(e.get("changes") == 0 for e in incremental)
    assert "Öst" not in "".join(daemon.lines()) and "bo@elev" not in "".join(daemon.lines())


def test_a_directory_source_lets_cycles_be_quiet_its_changes_arrive_and_deletions_in_time(
    tmp_path: Path, scim_url: str, slapd_factory: Any
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    karin = slapd.add_person(
        "karin", "Karin", "Sjöberg", mail="karin@edu.example.se", departmentNumber=[A]
    )
    per = slapd.add_person("per", "Per", "Ek", mail="per@edu.example.se", departmentNumber=[A])
    workspace = Workspace(tmp_path, scim_url)
    source = directory_source(slapd)
    source["password"] = "${TEST_LDAP_PASSWORD}"
    workspace.extra_sources = [source]
    workspace.overrides["daemon"] = {
        "interval_seconds": 1,
        "shutdown_timeout_seconds": 10,
        "full_plan_every_minutes": 0.3,  # deletions leave no trace: seen by this full read
    }
    workspace.write_config()
    env = {"TEST_SCIM_TOKEN": SCIM_TOKEN, "TEST_LDAP_PASSWORD": slapd.service_password}
    with ScimPeek(scim_url) as peek:
        daemon = DaemonProcess(workspace, env)
        try:
            wait_for(lambda: quiet_cycles(daemon) >= 2, what="quiet cycles", timeout=30)
            reads_before = len(events(daemon, "source.read"))
            slapd.modify(karin, {"sn": "Lund"})
            wait_for(
                lambda: peek.users()["karin@edu.example.se"]["name"]["familyName"] == "Lund",
                what="the new family name at the vendor",
            )
            assert len(events(daemon, "source.read")) > reads_before
            slapd.delete(per)
            wait_for(
                lambda: peek.users()["per@edu.example.se"]["active"] is False,
                timeout=40,
                what="the deleted entry's account deactivated",
            )
            # A deletion the directory keeps no trace of is seen by the periodic full read:
            # the directory is read whole then, though nothing changed.
            periodic = wait_for(
                lambda: [
                    e
                    for e in events(daemon, "sync.planning")
                    if e["why"] == "the periodic full plan is due"
                ],
                timeout=40,
                what="the periodic full plan",
            )
        finally:
            assert daemon.stop() == 0
    reads = {e["run_id"] for e in events(daemon, "source.read") if e["source"] == "directory"}
    assert periodic[0]["run_id"] in reads
    assert quiet_cycles(daemon) >= 3
