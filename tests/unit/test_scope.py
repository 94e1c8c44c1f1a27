"""Who is in scope (connector.people.scope): protected identity first and final, then the
school units, school types and staff roles of the config, placement by placement."""

from __future__ import annotations

from collections import Counter
from typing import Any

from connector.config import Config
from connector.people.join import Joined
from connector.people.model import Kind, Person, Placement, School, SourceIssue, SourceRead
from connector.people.scope import (
    EXCLUDED_NO_PLACEMENT,
    EXCLUDED_PROTECTED,
    apply_scope,
    known_schools,
)

A, B, C = "11111111", "22222222", "33333333"


def config(**sections: Any) -> Config:
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
                    "columns": {"key": "Elev-ID", "school_unit_code": "Skolenhetskod"},
                    "protected_identity": {"assume_not_protected": True},
                }
            ],
            **sections,
        }
    )


def student(key: str, *placements: Placement, protected: bool = False) -> Person:
    return Person(key, Kind.STUDENT, "Åsa", "Öberg", None, None, protected, placements)


def staff(key: str, *placements: Placement) -> Person:
    return Person(key, Kind.STAFF, "Karin", "Sjöberg", None, None, False, placements)


def scoped_keys(persons: list[Person]) -> dict[str, tuple[str, ...]]:
    """Each person's key -> the school unit codes of the placements left in scope."""
    return {p.source_key: tuple(pl.school_unit_code for pl in p.placements) for p in persons}


def scope(conf: Config, *persons: Person, schools: tuple[School, ...] = ()) -> Any:
    reads = [SourceRead("roster", schools=list(schools))]
    return apply_scope(conf, reads, Joined(persons=list(persons)))


# -- known schools ---------------------------------------------------------------------------


def test_known_schools_take_the_first_real_name_a_source_gives() -> None:
    reads = [
        SourceRead("a", schools=[School(A, A), School(B, "Björkskolan", ("GR",))]),
        SourceRead("b", schools=[School(A, "Ekeby skola", ("GY",)), School(B, "Other", ())]),
        SourceRead("c", schools=[School(A, "Later name")]),
    ]
    assert known_schools(config(), reads) == {
        A: School(A, "Ekeby skola", ("GY",)),
        B: School(B, "Björkskolan", ("GR",)),
    }


def test_the_configured_schools_override_the_names_and_keep_or_replace_the_types() -> None:
    reads = [SourceRead("a", schools=[School(A, "Ekeby", ("GR",)), School(B, "Björk", ("GR",))])]
    conf = config(
        schools=[
            {"code": A, "name": "Ekeby skola"},
            {"code": B, "name": "Björkskolan", "school_types": ["GY"]},
            {"code": C, "name": "Vuxenutbildningen"},
        ]
    )
    assert known_schools(conf, reads) == {
        A: School(A, "Ekeby skola", ("GR",)),
        B: School(B, "Björkskolan", ("GY",)),
        C: School(C, "Vuxenutbildningen", ()),
    }


# -- protected identity ----------------------------------------------------------------------


def test_a_protected_person_is_left_out_and_counted_whatever_their_placements() -> None:
    hidden = student("E1", Placement(A), protected=True)
    elsewhere = student("E2", Placement(C), protected=True)
    seen = student("E3", Placement(A))
    joined = Joined(persons=[hidden, seen, elsewhere], excluded=Counter({"join conflict": 2}))
    result = apply_scope(config(scope={"school_units": [A]}), [], joined)
    assert result.persons == [seen]
    assert result.protected == [hidden, elsewhere]
    assert result.excluded == Counter({EXCLUDED_PROTECTED: 2, "join conflict": 2})
    assert set(result.schools) == {A}  # a protected person's school is not listed


def test_the_join_s_held_people_issues_and_persons_are_passed_on() -> None:
    held = [student("H1", Placement(A))]
    issues = [SourceIssue("roster", "elever.csv:3", "unreadable")]
    persons = [student("E1", Placement(A)), student("E2", Placement(B), protected=True)]
    joined = Joined(persons=persons, held=held, issues=issues)
    result = apply_scope(config(), [], joined)
    assert result.held == held
    assert result.issues == issues
    assert result.joined == persons


# -- school units, school types, staff roles --------------------------------------------------


def test_no_scope_takes_every_placement() -> None:
    person = student("E1", Placement(A, "GR"), Placement(B))
    result = scope(config(), person)
    assert result.persons == [person]
    assert result.excluded == Counter()


def test_school_units_narrow_the_placements_and_leave_out_who_has_none() -> None:
    both = student("E1", Placement(A), Placement(B))
    other = student("E2", Placement(C))
    result = scope(config(scope={"school_units": [A, C]}), both, other, student("E3", Placement(B)))
    assert scoped_keys(result.persons) == {"E1": (A,), "E2": (C,)}
    assert result.excluded == Counter({EXCLUDED_NO_PLACEMENT: 1})


def test_a_placement_out_of_scope_does_not_hide_the_ones_after_it() -> None:
    conf = config(scope={"school_units": [A], "staff_roles": ["Lärare"]})
    pupil = student("E1", Placement(B), Placement(A))
    teacher = staff("P1", Placement(A, role="Rektor"), Placement(A, "GR", role="Lärare"))
    assert scoped_keys(scope(conf, pupil, teacher).persons) == {"E1": (A,), "P1": (A,)}


def test_a_placement_s_own_school_type_counts_whatever_its_case() -> None:
    person = student("E1", Placement(A, "gr"), Placement(B, "GY"), Placement(C, "Gr"))
    result = scope(config(scope={"school_types": ["GR"]}), person)
    assert scoped_keys(result.persons) == {"E1": (A, C)}


def test_a_placement_without_a_school_type_takes_its_school_s_types() -> None:
    schools = (School(A, "Ekeby", ("GY", "gr")), School(B, "Björk", ("GY",)))
    person = student("E1", Placement(A), Placement(B), Placement(C))
    result = scope(config(scope={"school_types": ["Gr"]}), person, schools=schools)
    assert scoped_keys(result.persons) == {"E1": (A,)}


def test_a_placement_s_own_school_type_wins_over_its_school_s() -> None:
    schools = (School(A, "Ekeby", ("GR",)),)
    first = student("E1", Placement(A, "GY"))
    second = student("E2", Placement(A))
    third = student("E3", Placement(A, "GY"))
    result = scope(config(scope={"school_types": ["GR"]}), first, second, third, schools=schools)
    assert scoped_keys(result.persons) == {"E2": (A,)}
    assert result.excluded == Counter({EXCLUDED_NO_PLACEMENT: 2})


def test_staff_roles_narrow_staff_only_whatever_the_case() -> None:
    teacher = staff("P1", Placement(A, role="lärare"), Placement(B, role="Vaktmästare"))
    no_role = staff("P2", Placement(A))
    pupil = student("E1", Placement(A))
    result = scope(config(scope={"staff_roles": ["Lärare"]}), teacher, no_role, pupil)
    assert scoped_keys(result.persons) == {"P1": (A,), "E1": (A,)}
    assert result.excluded == Counter({EXCLUDED_NO_PLACEMENT: 1})


def test_every_rule_must_hold_for_a_placement() -> None:
    conf = config(scope={"school_units": [A, B], "school_types": ["GR"], "staff_roles": ["Lärare"]})
    teacher = staff(
        "P1",
        Placement(A, "GR", role="Lärare"),
        Placement(B, "GY", role="Lärare"),
        Placement(C, "GR", role="Lärare"),
        Placement(B, "GR", role="Rektor"),
    )
    assert scoped_keys(scope(conf, teacher).persons) == {"P1": (A,)}


def test_a_person_wholly_in_scope_is_passed_on_as_they_are() -> None:
    person = student("E1", Placement(A), Placement(B))
    (result,) = scope(config(scope={"school_units": [A, B]}), person).persons
    assert result is person


# -- schools in scope and role values ----------------------------------------------------------


def test_the_schools_in_scope_are_those_placed_in_named_when_known() -> None:
    schools = (School(A, "Ekeby skola", ("GR",)),)
    people = [student("E1", Placement(A)), student("E2", Placement(A), Placement(B))]
    result = scope(config(scope={"school_units": [A, B]}), *people, schools=schools)
    assert result.schools == {A: schools[0], B: School(B, B)}


def test_role_values_are_granted_with_the_known_school_names() -> None:
    conf = config(
        roles={"rules": [{"value": "admin", "duty": "rektor"}]},
        schools=[{"code": A, "name": "Ekeby skola"}],
    )
    rector = staff("P1", Placement(A, role="Rektor"))
    (person,) = scope(conf, rector).persons
    assert [(g.value, g.type, g.display) for g in person.grants] == [("admin", A, "Ekeby skola")]
