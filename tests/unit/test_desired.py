"""The desired vendor state (connector.mapping.desired): one account per person in scope and one
group per school, the mapping stage's last guard on free text, one userName per person, and the
ids of the people who are protected or held (never their accounts)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import yaml

from connector.config import ExternalIdConfig
from connector.mapping.desired import EXCLUDED_DUPLICATE_USERNAME, EXCLUDED_MAPPING, build_desired
from connector.mapping.profile import Mapping, load_mapping
from connector.people.externalid import ExternalIdMaker
from connector.people.model import Kind, Person, Placement, School, SourceIssue
from connector.people.scope import Scoped
from tests.support.paths import DEFAULT_MAPPING

A, B, C = "11111111", "22222222", "33333333"
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


def test_each_school_is_a_group_whose_members_are_its_people() -> None:
    asa = person("E1")
    bo = Person("E2", Kind.STUDENT, "Bo", "Ek", "e2@skola.example.se", None, False)
    bo = replace(bo, placements=(Placement(A), Placement(B)))
    schools = (School(A, "Norrskolan"), School(B, "Söderskolan"), School(C, "Västerskolan"))

    desired = build_desired(scoped(asa, bo, schools=schools), load_mapping(DEFAULT_MAPPING), IDS)

    asa_id, bo_id = IDS.for_person(asa), IDS.for_person(bo)
    assert set(desired.users) == {asa_id, bo_id}
    assert desired.users[asa_id].attributes["userName"] == "e1@skola.example.se"
    assert desired.groups[A].members == {asa_id, bo_id}
    assert desired.groups[B].members == {bo_id}
    assert desired.groups[C].members == set()  # a school with nobody in it still has its group
    assert desired.groups[B].attributes["displayName"] == "Söderskolan"
    assert desired.excluded == {} and desired.issues == []


def test_what_scope_left_out_and_reported_is_carried_on() -> None:
    issue = SourceIssue("students", "students.csv:3", "no school unit code")
    before = scoped(person("E1"))
    before.excluded = Counter({"protected identity": 2})
    before.issues = [issue]

    desired = build_desired(before, load_mapping(DEFAULT_MAPPING), IDS)

    assert desired.excluded == {"protected identity": 2}
    assert desired.issues == [issue]


def test_protected_and_held_people_are_known_by_their_ids_and_get_no_account() -> None:
    hidden = replace(person("E8"), protected=True)
    waiting = person("E9")
    before = scoped(person("E1"))
    before.protected, before.held = [hidden], [waiting]

    desired = build_desired(before, load_mapping(DEFAULT_MAPPING), IDS)

    assert desired.protected_ids == {IDS.for_person(hidden)}
    assert desired.held_ids == {IDS.for_person(waiting)}
    assert set(desired.users) == {IDS.for_person(person("E1"))}


def test_a_person_without_a_userName_is_left_out_held_and_reported() -> None:
    no_email = replace(person("E2"), email=None)

    desired = build_desired(scoped(person("E1"), no_email), load_mapping(DEFAULT_MAPPING), IDS)

    no_email_id = IDS.for_person(no_email)
    assert set(desired.users) == {IDS.for_person(person("E1"))}
    assert desired.excluded == {EXCLUDED_MAPPING: 1}
    assert desired.issues == [
        SourceIssue(
            "mapping",
            f"user {no_email_id[:12]}",
            "userName is empty (is the e-mail or username missing?)",
        )
    ]
    assert no_email_id not in desired.groups[A].members
    # A record that cannot be mapped is broken input, not a leaver: their account stays.
    assert desired.held_ids == {no_email_id}


def test_a_source_key_that_may_not_be_sent_is_never_sent_nor_named() -> None:
    as_is = ExternalIdMaker(ExternalIdConfig(mode="source_key"))
    civic = person("200501012384")  # looks like a personnummer
    protected_civic = replace(person("199001011234"), protected=True)
    before = scoped(person("E1"), civic)
    before.protected = [protected_civic]

    desired = build_desired(before, load_mapping(DEFAULT_MAPPING), as_is)

    assert set(desired.users) == {"E1"}
    assert desired.excluded == {EXCLUDED_MAPPING: 1}
    (issue,) = desired.issues
    assert issue.location == "a student" and "personal identity number" in issue.reason
    assert "200501012384" not in repr(desired) and "199001011234" not in repr(desired)
    assert desired.protected_ids == frozenset()  # never sent, so nothing to take off


def test_two_people_with_one_userName_the_first_keeps_it_the_other_is_held() -> None:
    first = person("E1")
    second = replace(person("E2", given="Erik"), email="E1@Skola.example.se")

    desired = build_desired(scoped(first, second), load_mapping(DEFAULT_MAPPING), IDS)

    first_id, second_id = IDS.for_person(first), IDS.for_person(second)
    assert set(desired.users) == {first_id}
    assert desired.groups[A].members == {first_id}
    assert desired.excluded == {EXCLUDED_DUPLICATE_USERNAME: 1}
    assert desired.issues == [
        SourceIssue(
            "mapping", f"user {second_id[:12]}", f"userName also used by user {first_id[:12]}"
        )
    ]
    # Neither is gone: whichever of them had an account keeps it until the clash is fixed.
    assert desired.held_ids == {second_id}


def test_userNames_that_differ_only_in_case_are_one_userName(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "user": {"attributes": {"userName": "{username}"}},
                "group": {"attributes": {"displayName": "{school_name}"}},
            }
        )
    )
    first = replace(person("E1"), username="Asa.Oberg")
    second = replace(person("E2"), username="asa.oberg")

    desired = build_desired(scoped(first, second), load_mapping(path), IDS)

    assert set(desired.users) == {IDS.for_person(first)}
    assert desired.excluded == {EXCLUDED_DUPLICATE_USERNAME: 1}
