"""The desired vendor state (connector.mapping.desired): the mapping stage's last guard on free text."""

from __future__ import annotations

from pathlib import Path

import yaml

from connector.config import ExternalIdConfig
from connector.mapping.desired import EXCLUDED_MAPPING, build_desired
from connector.mapping.profile import Mapping, load_mapping
from connector.people.externalid import ExternalIdMaker
from connector.people.model import Kind, Person, Placement, School
from connector.people.scope import Scoped

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MAPPING = REPO / "mappings" / "default.yaml"
A, B = "11111111", "22222222"
IDS = ExternalIdMaker(ExternalIdConfig(key="test-key"))
HYPERLINK = '=HYPERLINK("http://evil.example","x")'


def person(key: str, given: str = "Åsa", family: str = "Öberg", school: str = A) -> Person:
    email = f"{key.lower()}@skola.example.se"
    return Person(key, Kind.STUDENT, given, family, email, None, False, (Placement(school),))


def scoped(*persons: Person, schools: tuple[School, ...] = (School(A, "Norrskolan"),)) -> Scoped:
    return Scoped(persons=list(persons), schools={s.code: s for s in schools})


def test_a_person_whose_mapped_values_are_unsafe_is_left_out_held_and_reported() -> None:
    bad = person("E2", given="Ås\u200ba")  # a zero-width space no source refused
    desired = build_desired(scoped(person("E1"), bad), load_mapping(DEFAULT_MAPPING), IDS)

    bad_id = IDS.for_person(bad)
    assert set(desired.users) == {IDS.for_person(person("E1"))}
    assert desired.excluded == {EXCLUDED_MAPPING: 1}
    assert [(i.source, i.location, i.reason) for i in desired.issues] == [
        ("mapping", f"user {bad_id[:12]}", "name.givenName holds zero-width characters")
    ]
    # Still there in the sources, only unsendable: nothing is taken away from them.
    assert bad_id in desired.held_ids
    assert bad_id not in desired.groups[A].members


def test_what_a_template_renders_is_checked_not_only_the_fields(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    attributes = {"userName": "{email|lower}", "displayName": "={given_name}"}
    path.write_text(
        yaml.safe_dump(
            {
                "user": {"attributes": attributes},
                "group": {"attributes": {"displayName": "{school_name}"}},
            }
        )
    )

    desired = build_desired(scoped(person("E1")), load_mapping(path), IDS)

    assert desired.users == {}
    assert [i.reason for i in desired.issues] == [
        "displayName starts like a spreadsheet formula (=, +, -, @)"
    ]


def test_a_school_whose_name_is_unsafe_gets_its_group_named_by_its_code() -> None:
    schools = (School(A, HYPERLINK), School(B, "Söder\u202eskolan"))
    students = (person("E1"), person("E2", school=B))
    mapping: Mapping = load_mapping(DEFAULT_MAPPING)

    desired = build_desired(scoped(*students, schools=schools), mapping, IDS)

    assert desired.groups[A].attributes["displayName"] == A
    assert desired.groups[B].attributes["displayName"] == B
    assert desired.groups[A].members == {IDS.for_person(students[0])}
    assert len(desired.users) == 2  # its students are not held up by it
    assert sorted((i.source, i.location, i.reason) for i in desired.issues) == [
        (
            "mapping",
            f"school {A}",
            "displayName starts like a spreadsheet formula (=, +, -, @); "
            "the group is named by its school unit code",
        ),
        (
            "mapping",
            f"school {B}",
            "displayName holds bidirectional text controls; "
            "the group is named by its school unit code",
        ),
    ]
