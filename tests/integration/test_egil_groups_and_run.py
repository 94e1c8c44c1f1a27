"""EGIL from the sources' study groups, and EGIL beside a core-SCIM vendor in one daemon:
teaching groups (Undervisning) with their students and an Activity with its teachers'
employments arrive at the faithful EGIL server, a protected student in none of them; and one
`connector run` delivers the same roster to a scim2-server tenant and the EGIL server, reading
the roster once per cycle."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.demo.localscim import LocalScimServer
from connector.people.model import Kind, Person
from tests.fakes.egil import EgilServer
from tests.support.daemon import DaemonProcess, wait_for
from tests.support.egil import API_KEY, EGIL_IDS, IDS, EgilWorkspace
from tests.support.paths import DEFAULT_MAPPING
from tests.support.scim import SCIM_TOKEN, ScimPeek

NORR = "11111111"
PROTECTED_NAME = "Skyddad"


@pytest.fixture
def server() -> Iterator[EgilServer]:
    with EgilServer(api_key=API_KEY) as running:
        yield running


def person(key: str, kind: Kind) -> str:
    return EGIL_IDS.person(IDS.for_person(Person(key, kind, "", "", None, None, False)))


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, delimiter=";")
        writer.writerow(header)
        writer.writerows(rows)


def grouped_sources(root: Path) -> list[dict[str, Any]]:
    """Students with their teaching groups and a teacher with the groups she teaches."""
    students, teachers = root / "elever.csv", root / "larare.csv"
    header = ["Id", "Förnamn", "Efternamn", "E-post", "Skolenhet", "Klass", "Grupper", "Skydd"]
    write(
        students,
        header,
        [
            ["S1", "Anna", "Ek", "s1@edu.example.se", NORR, "7A", "MA7,EN7", "Nej"],
            ["S2", "Bo", "Al", "s2@edu.example.se", NORR, "7A", "MA7", "Nej"],
            ["S3", PROTECTED_NAME, "Person", "s3@edu.example.se", NORR, "7A", "MA7", "Ja"],
        ],
    )
    write(
        teachers,
        ["Id", "Förnamn", "Efternamn", "E-post", "Skolenhet", "Roll", "Grupper", "Skydd"],
        [["T1", "Lena", "Lund", "t1@edu.example.se", NORR, "Lärare", "MA7", "Nej"]],
    )
    columns = {
        "key": "Id",
        "given_name": "Förnamn",
        "family_name": "Efternamn",
        "email": "E-post",
        "school_unit_code": "Skolenhet",
        "groups": "Grupper",
    }
    marking = {"column": "Skydd", "not_protected_values": ["Nej"]}
    return [
        {
            "name": "elever",
            "type": "csv",
            "kind": "student",
            "path": str(students),
            "columns": {**columns, "class_name": "Klass"},
            "protected_identity": marking,
        },
        {
            "name": "larare",
            "type": "csv",
            "kind": "staff",
            "path": str(teachers),
            "columns": {**columns, "role": "Roll"},
            "protected_identity": marking,
        },
    ]


def test_teaching_groups_and_activities_from_the_sources(
    tmp_path: Path, server: EgilServer
) -> None:
    workspace = EgilWorkspace(tmp_path, server.url)
    workspace.extra_sources = grouped_sources(tmp_path)

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    assert server.rejected == []
    math = EGIL_IDS.student_group(NORR, "Undervisning", "MA7")
    english = EGIL_IDS.student_group(NORR, "Undervisning", "EN7")
    groups = server.objects("StudentGroups")
    assert {m["value"] for m in groups[math]["studentMemberships"]} == {
        person("S1", Kind.STUDENT),
        person("S2", Kind.STUDENT),
    }
    assert groups[math]["studentGroupType"] == "Undervisning"
    assert {m["value"] for m in groups[english]["studentMemberships"]} == {
        person("S1", Kind.STUDENT)
    }
    activity = server.objects("Activities")[EGIL_IDS.activity(math)]
    assert [g["value"] for g in activity["groups"]] == [math]
    teacher_employment = EGIL_IDS.employment(person("T1", Kind.STAFF), NORR)
    assert [t["value"] for t in activity["teachers"]] == [teacher_employment]
    # The protected student is in no object at all.
    protected = person("S3", Kind.STUDENT)
    everything = repr([server.objects(e) for e in ("Users", "StudentGroups", "Activities")])
    assert protected not in everything and PROTECTED_NAME not in everything


def test_one_run_feeds_a_scim_vendor_and_an_egil_server(
    tmp_path: Path, server: EgilServer, scim_url: str, scim_server: LocalScimServer
) -> None:
    workspace = EgilWorkspace(tmp_path, server.url)
    workspace.extra_sources = grouped_sources(tmp_path)
    scim = {
        "name": "scim",
        "base_url": scim_url,
        "mapping": str(DEFAULT_MAPPING),
        "token": "${TEST_SCIM_TOKEN}",
        "max_retries": 0,
    }
    workspace.other_targets = [scim]
    workspace.overrides = {"daemon": {"interval_seconds": 1, "shutdown_timeout_seconds": 10}}
    workspace.write_config()
    daemon = DaemonProcess(workspace, {"TEST_SCIM_TOKEN": SCIM_TOKEN})
    try:
        expected = {"s1@edu.example.se", "s2@edu.example.se", "t1@edu.example.se"}
        wait_for(lambda: len(server.objects("Users")) == 3, what="the EGIL server's users")
        assert {u["userName"] for u in server.objects("Users").values()} == expected
        with ScimPeek(scim_url) as peek:
            wait_for(lambda: len(peek.users()) == 3, what="the SCIM vendor's users")
            assert set(peek.users()) == expected
        wait_for(lambda: daemon.count("sync.finished") >= 4, what="two cycles")
    finally:
        assert daemon.stop() == 0
    events = daemon.events()
    finished = Counter(e["run_id"] for e in events if e.get("event") == "sync.finished")
    looked = ("source.read", "source.unchanged")  # parsed, or found unchanged (cycle/quiet.py)
    reads = Counter(e["run_id"] for e in events if e.get("event") in looked)
    assert finished and all(count == 2 for count in finished.values())
    assert all(reads[run] == 2 for run in finished)  # each of the two rosters once a cycle
    assert server.rejected == []
