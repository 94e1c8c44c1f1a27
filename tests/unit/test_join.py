"""One person per human (connector.people.join): entries of several sources merged by join key.

Two joined sources, a roster and a directory, both of students; beside them a staff list and
an SS 12000 source that take no part in the join. Each test breaks if one rule does: which
source a field comes from, the union of placements, protected if any says so, the joined
identity, the unmatched rules, the conflict of a crowded join key, the failed joined source,
and the unreadable keys that are held rather than taken as gone.
"""

from __future__ import annotations

from typing import Any

from connector.config import Config
from connector.people.join import EXCLUDED_JOIN_CONFLICT, join_persons
from connector.people.model import Kind, Person, Placement, SourceIssue, SourceRead

A, B = "11111111", "22222222"
IN_A = Placement(A, "GR", "7", "7A")
IN_B = Placement(B, "GY", "1", "NA1")


def config(join: dict[str, Any] | None = None) -> Config:
    csv_marking = {"column": "Skyddad", "not_protected_values": ["Nej"]}
    return Config.model_validate(
        {
            "vendor": {"base_url": "https://scim.example.se/v2"},
            "state": {"path": "state.db"},
            "mapping": "mapping.yaml",
            "external_id": {"key": "unit-test-key"},
            "sources": [
                {
                    "name": "roster",
                    "type": "csv",
                    "kind": "student",
                    "path": "students.csv",
                    "columns": {
                        "key": "Elev-ID",
                        "school_unit_code": "Skolenhetskod",
                        "join_key": "Elev-ID",
                    },
                    "protected_identity": csv_marking,
                },
                {
                    "name": "directory",
                    "type": "ldap",
                    "kind": "student",
                    "servers": ["ldap://ldap.example.se"],
                    "base_dns": ["ou=elever,dc=example,dc=se"],
                    "attributes": {"key": "entryUUID", "join_key": "employeeNumber"},
                    "protected_identity": {"assume_not_protected": True},
                },
                {
                    "name": "staff",
                    "type": "csv",
                    "kind": "staff",
                    "path": "staff.csv",
                    "columns": {"key": "Personal-ID", "school_unit_code": "Skolenhetskod"},
                    "protected_identity": csv_marking,
                },
                {
                    "name": "sis",
                    "type": "ss12000",
                    "base_url": "https://sis.example.se/v2.0",
                    "auth": {"token": "sis-token"},
                },
            ],
            "join": join,
        }
    )


JOIN = {"sources": ["roster", "directory"]}


def student(
    key: str,
    join: str | None,
    given: str = "Åsa",
    family: str = "Öberg",
    email: str | None = None,
    username: str | None = None,
    placements: tuple[Placement, ...] = (IN_A,),
    *,
    protected: bool = False,
) -> Person:
    return Person(
        key, Kind.STUDENT, given, family, email, username, protected, placements, join_key=join
    )


def staff(key: str, *placements: Placement, email: str | None = None) -> Person:
    return Person(key, Kind.STAFF, "Karin", "Sjöberg", email, None, False, placements)


def read(source: str, *persons: Person, unreadable: set[str] | None = None) -> SourceRead:
    return SourceRead(source, persons=list(persons), unreadable_keys=unreadable or set())


def by_key(persons: list[Person]) -> dict[str, Person]:
    return {p.source_key: p for p in persons}


# -- merging ---------------------------------------------------------------------------------


def test_entries_with_one_join_key_become_one_person_with_the_joined_identity() -> None:
    roster = student("E1", "J1", "Åsa", "Öberg", email=None, placements=(IN_A,))
    directory = student("uuid-1", "J1", "Åsa-Maria", "Öberg-Lind", "asa@skola.se", "asa01", (IN_B,))

    joined = join_persons(config(JOIN), [read("roster", roster), read("directory", directory)])

    assert joined.persons == [
        Person(
            "join:J1",
            Kind.STUDENT,
            "Åsa",  # the roster is listed first
            "Öberg",
            "asa@skola.se",  # the roster has none: the next source's
            "asa01",
            False,
            (IN_A, IN_B),  # the placements of both
            join_key="J1",
        )
    ]
    assert joined.held == [] and joined.excluded == {} and joined.issues == []


def test_the_order_of_the_join_sources_decides_whose_field_wins() -> None:
    roster = student("E1", "J1", "Åsa", "Öberg", "e1@roster.se")
    directory = student("uuid-1", "J1", "Åsa-Maria", "Öberg-Lind", "asa@skola.se")
    reads = [read("roster", roster), read("directory", directory)]

    joined = join_persons(config({"sources": ["directory", "roster"]}), reads)

    (person,) = joined.persons
    assert (person.given_name, person.family_name, person.email) == (
        "Åsa-Maria",
        "Öberg-Lind",
        "asa@skola.se",
    )


def test_prefer_takes_one_field_from_another_source_and_leaves_the_others() -> None:
    roster = student("E1", "J1", "Åsa", "Öberg", "e1@roster.se", "e1")
    directory = student("uuid-1", "J1", "Åsa-Maria", "Öberg-Lind", "asa@skola.se", "asa01")
    reads = [read("roster", roster), read("directory", directory)]
    join = {**JOIN, "prefer": {"email": ["directory", "roster"], "username": ["directory"]}}

    (person,) = join_persons(config(join), reads).persons

    assert (person.email, person.username) == ("asa@skola.se", "asa01")
    assert (person.given_name, person.family_name) == ("Åsa", "Öberg")


def test_a_preferred_source_without_the_field_gives_way_to_the_next_it_lists() -> None:
    roster = student("E1", "J1", email="e1@roster.se")
    directory = student("uuid-1", "J1", email=None)
    join = {**JOIN, "prefer": {"email": ["directory", "roster"]}}

    (person,) = join_persons(
        config(join), [read("roster", roster), read("directory", directory)]
    ).persons

    assert person.email == "e1@roster.se"


def test_a_placement_in_both_sources_is_kept_once_in_first_seen_order() -> None:
    roster = student("E1", "J1", placements=(IN_B, IN_A))
    directory = student("uuid-1", "J1", placements=(IN_A,))

    (person,) = join_persons(
        config(JOIN), [read("roster", roster), read("directory", directory)]
    ).persons

    assert person.placements == (IN_B, IN_A)


def test_protected_in_either_source_makes_the_joined_person_protected() -> None:
    for roster_says, directory_says in ((True, False), (False, True)):
        roster = student("E1", "J1", protected=roster_says)
        directory = student("uuid-1", "J1", protected=directory_says)

        joined = join_persons(config(JOIN), [read("roster", roster), read("directory", directory)])

        # still among the persons: scope takes them off the vendor and counts them there
        assert [(p.source_key, p.protected) for p in joined.persons] == [("join:J1", True)]


# -- unmatched entries -----------------------------------------------------------------------


def test_an_entry_in_only_one_joined_source_is_skipped_and_counted_by_default() -> None:
    reads = [
        read("roster", student("E1", "J1"), student("E2", "J2")),
        read("directory", student("u1", "J1")),
    ]

    joined = join_persons(config(JOIN), reads)

    assert [p.source_key for p in joined.persons] == ["join:J1"]
    assert joined.excluded == {"only in source roster": 1}
    assert joined.held == []  # skipped, not held: nothing keeps an account for them


def test_unmatched_use_takes_the_entry_as_it_is_under_its_joined_identity() -> None:
    alone = student("E2", "J2", "Bo", "Ek", "bo@roster.se", placements=(IN_B,))
    reads = [read("roster", alone), read("directory", student("u9", "J9"))]
    join = {**JOIN, "unmatched": {"roster": "use"}}

    joined = join_persons(config(join), reads)

    assert by_key(joined.persons)["join:J2"] == Person(
        "join:J2", Kind.STUDENT, "Bo", "Ek", "bo@roster.se", None, False, (IN_B,), join_key="J2"
    )
    # the rule is per source: the directory's lone entry is still skipped
    assert "join:J9" not in by_key(joined.persons)
    assert joined.excluded == {"only in source directory": 1}


def test_a_protected_unmatched_entry_is_kept_even_when_its_source_skips() -> None:
    reads = [read("roster", student("E3", "J3", protected=True)), read("directory")]

    joined = join_persons(config(JOIN), reads)

    assert [(p.source_key, p.protected) for p in joined.persons] == [("join:J3", True)]
    assert joined.excluded == {}


def test_an_entry_without_a_join_key_follows_the_unmatched_rule_under_its_own_key() -> None:
    reads = [read("roster", student("E4", None)), read("directory", student("u4", None))]

    joined = join_persons(config({**JOIN, "unmatched": {"directory": "use"}}), reads)

    assert [p.source_key for p in joined.persons] == ["u4"]
    assert joined.excluded == {"only in source roster": 1}


# -- a join key held by several entries of one source ----------------------------------------


def test_a_join_key_shared_by_two_entries_of_one_source_merges_and_sends_nobody() -> None:
    reads = [
        read("roster", student("E1", "J1"), student("E2", "J2")),
        read("directory", student("u1", "J1"), student("u1b", "J1"), student("u2", "J2")),
    ]

    joined = join_persons(config(JOIN), reads)

    assert [p.source_key for p in joined.persons] == ["join:J2"]  # the others still join
    assert joined.issues == [
        SourceIssue("join", "directory", "3 entries share one join key; nobody merged or sent")
    ]
    assert joined.excluded == {EXCLUDED_JOIN_CONFLICT: 1}
    # held, not gone: nothing is deprovisioned for them while the conflict lasts
    assert [p.source_key for p in joined.held] == ["join:J1"]


def test_a_conflict_names_every_source_that_is_crowded() -> None:
    reads = [
        read("roster", student("E1", "J1"), student("E1b", "J1")),
        read("directory", student("u1", "J1"), student("u1b", "J1")),
    ]

    joined = join_persons(config(JOIN), reads)

    assert [(i.location, i.reason) for i in joined.issues] == [
        ("roster, directory", "4 entries share one join key; nobody merged or sent")
    ]


def test_a_protected_person_in_a_conflict_is_still_taken_off() -> None:
    reads = [
        read("roster", student("E1", "J1")),
        read("directory", student("u1", "J1", protected=True), student("u1b", "J1")),
    ]

    joined = join_persons(config(JOIN), reads)

    assert [(p.source_key, p.protected) for p in joined.persons] == [("join:J1", True)]
    assert joined.held == []
    assert joined.excluded == {EXCLUDED_JOIN_CONFLICT: 1}


# -- a joined source that failed -------------------------------------------------------------


def test_a_failed_joined_source_holds_everyone_joined_but_not_the_other_sources() -> None:
    reads = [
        read(
            "roster", student("E1", "J1"), student("E2", "J2"), student("E3", "J3", protected=True)
        ),
        read("staff", staff("P1", IN_A)),
    ]  # the directory failed: it has no read

    joined = join_persons(config(JOIN), reads)

    assert [p.source_key for p in joined.held] == ["join:J1", "join:J2"]
    # a protected person is taken off whatever else fails; the staff list is not joined
    assert [(p.source_key, p.protected) for p in joined.persons] == [
        ("P1", False),
        ("join:J3", True),
    ]
    assert joined.excluded == {"held: joined source directory failed": 3}


def test_everyone_is_held_when_the_first_joined_source_failed_too() -> None:
    reads = [read("directory", student("u1", "J1", "Åsa-Maria", email="asa@skola.se"))]

    joined = join_persons(config(JOIN), reads)

    assert joined.persons == []
    assert [(p.source_key, p.email) for p in joined.held] == [("join:J1", "asa@skola.se")]
    assert joined.excluded == {"held: joined source roster failed": 1}


# -- sources outside the join, and unreadable records ----------------------------------------


def test_without_a_join_records_of_one_key_merge_into_one_person() -> None:
    first = staff("P1", IN_A)
    second = Person(
        "P1", Kind.STAFF, "Karin", "Sjöberg", "karin@skola.se", "ks", True, (IN_B, IN_A)
    )

    joined = join_persons(config(), [read("staff", first, second)])

    assert joined.persons == [
        Person("P1", Kind.STAFF, "Karin", "Sjöberg", "karin@skola.se", "ks", True, (IN_A, IN_B))
    ]


def test_one_key_in_two_kinds_stays_two_persons() -> None:
    reads = [read("roster", student("X1", None)), read("staff", staff("X1", IN_A))]

    joined = join_persons(config(), reads)

    assert sorted((p.kind.value, p.source_key) for p in joined.persons) == [
        ("staff", "X1"),
        ("student", "X1"),
    ]


def test_an_unreadable_record_of_a_source_outside_the_join_is_held_under_its_kind() -> None:
    reads = [
        read("roster", student("E1", "J1")),
        read("directory", student("u1", "J1")),
        read("staff", staff("P1", IN_A), unreadable={"P9", "P1"}),
        read("sis", unreadable={"sis-7"}),
    ]

    joined = join_persons(config(JOIN), reads)

    held = sorted((p.kind.value, p.source_key) for p in joined.held)
    # P1 was read from another row: not held. SS 12000 has no fixed kind: both are held.
    assert held == [("staff", "P9"), ("staff", "sis-7"), ("student", "sis-7")]
    assert all(not p.protected and p.placements == () for p in joined.held)


def test_an_unreadable_record_of_a_joined_source_is_left_to_the_join() -> None:
    reads = [
        read("roster", student("E1", "J1"), unreadable={"E7"}),
        read("directory", student("u1", "J1")),
    ]

    joined = join_persons(config(JOIN), reads)

    # its joined identity is unknown: no guess is held under the source key
    assert joined.held == []
    assert [p.source_key for p in joined.persons] == ["join:J1"]
