"""`connector_change_latency_seconds`: the daemon measures how long a person's change took from
the source (by the source's own time) to the vendor, per source kind - a roster file's
modification time, a directory entry's modifyTimestamp, SS 12000's meta.modified.

All real: `connector run` as a process, scim2-server, slapd and the SS 12000 test server, each
changed while the daemon runs. No speed is asserted: only that each change is counted once,
under the right source, and that no latency is longer than the time that really passed.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.demo.localscim import free_port
from tests.fakes.ss12000_server import SS12000Server, enrolment
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.ldap import directory_source
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.ss12000 import ss12000_source
from tests.support.workspace import Workspace

A = "11111111"
SIS_SCHOOL = "12345678"
ROSTER = [student("E1", "Åsa", "Öberg", A), student("E2", "Erik", "Lind", A)]


@pytest.fixture
def three_sources(
    tmp_path: Path, scim_url: str, slapd_factory: Any
) -> Iterator[tuple[Workspace, Any, SS12000Server, dict[str, str]]]:
    slapd = slapd_factory()
    karin = slapd.add_person(
        "karin", "Karin", "Sjöberg", mail="karin@edu.example.se", departmentNumber=[A]
    )
    with SS12000Server(token_lifetime=3600) as sis:
        unit = sis.add_school_unit("Björkskolan", SIS_SCHOOL, ("GR",))
        pupil = sis.add_person(
            "Astrid",
            "Åberg",
            security_marking="Ingen",
            emails=[("Skola elev", "astrid@elev.example.se")],
            enrolments=[enrolment(unit, "GR", 5)],
        )
        workspace = Workspace(tmp_path, scim_url)
        workspace.students(ROSTER)
        directory = directory_source(slapd, name="staff", password="${TEST_LDAP_PASSWORD}")
        workspace.extra_sources = [directory, ss12000_source(sis, name="sis")]
        workspace.environment["TEST_SS12000_SECRET"] = sis.client_secret
        workspace.environment["TEST_LDAP_PASSWORD"] = slapd.service_password
        workspace.overrides["schools"] = [{"code": A, "name": "Ekskolan", "school_types": ["GR"]}]
        workspace.overrides["daemon"] = {"interval_seconds": 1, "shutdown_timeout_seconds": 10}
        workspace.overrides["health"] = {"listen": f"127.0.0.1:{free_port()}"}
        workspace.write_config()
        yield workspace, slapd, sis, {"karin": karin, "pupil": pupil["id"]}


def latency(metrics: str, source: str, what: str) -> float:
    pattern = (
        rf'^connector_change_latency_seconds_{what}\{{source="{source}",target="default"\}} (\S+)$'
    )
    found = re.search(pattern, metrics, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_the_daemon_measures_each_sources_changes_to_the_vendor(
    three_sources: tuple[Workspace, Any, SS12000Server, dict[str, str]], peek: ScimPeek
) -> None:
    workspace, slapd, sis, ids = three_sources
    listen = workspace.overrides["health"]["listen"]
    # The directory's timestamps are whole seconds: what was set up is a second older than
    # the daemon, which counts no change from before it started.
    time.sleep(1.1)
    daemon = DaemonProcess(workspace, {**workspace.environment, "TEST_SCIM_TOKEN": SCIM_TOKEN})
    try:
        wait_for(
            lambda: httpx.get(f"http://{listen}/readyz").status_code == 200,
            timeout=60,
            what="the first cycle",
        )
        wait_for(lambda: len(peek.users()) == 4, what="the first sync's four users")
        first = httpx.get(f"http://{listen}/metrics").text
        for source in ("students", "staff", "sis"):
            # The first sync after the daemon started brings no change it saw happen.
            assert latency(first, source, "count") == 0, source

        written = time.time()
        workspace.students([student("E1", "Åsa", "Öberg-Lind", A), ROSTER[1]])
        slapd.modify(ids["karin"], {"sn": "Sjöberg-Ek"})
        sis.update("persons", ids["pupil"], familyName="Åberg-Holm")

        def arrived() -> bool:
            names = {u["userName"]: u["name"]["familyName"] for u in peek.users().values()}
            return (
                names.get("e1@edu.example.se") == "Öberg-Lind"
                and names.get("karin@edu.example.se") == "Sjöberg-Ek"
                and names.get("astrid@elev.example.se") == "Åberg-Holm"
            )

        wait_for(arrived, timeout=60, what="the three changes at the vendor")
        wait_for(
            lambda: all(
                latency(httpx.get(f"http://{listen}/metrics").text, s, "count") == 1
                for s in ("students", "staff", "sis")
            ),
            what="each change counted",
        )
        time.sleep(2.5)  # more cycles: a change is counted once, not at every cycle
        metrics = httpx.get(f"http://{listen}/metrics").text
        passed = time.time() - written
        for source in ("students", "staff", "sis"):
            assert latency(metrics, source, "count") == 1, source
            # The source's clock is this machine's here (directory timestamps to the second).
            assert 0 <= latency(metrics, source, "sum") <= passed + 1, source
    finally:
        assert daemon.stop() == 0
