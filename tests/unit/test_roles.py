"""Unit tests for role rules (config/roles.py) and their resolution (people/roles.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from connector.config import RolesConfig
from connector.people.model import Kind, Person, Placement, School
from connector.people.roles import with_roles

A, B, C = "11111111", "22222222", "33333333"
SCHOOLS = {
    A: School(A, "Ekeby skola", ("GR",)),
    B: School(B, "Björkängsgymnasiet", ("GY",)),
    C: School(C, "Vuxenutbildningen", ("VUX",)),
}
ADMINS_A = "CN=Admin-11111111,OU=Grupper,DC=kommun,DC=example"
CENTRAL = "CN=Centrala admin,OU=Grupper,DC=kommun,DC=example"


def person(key: str = "p1", *placements: Placement, groups: tuple[str, ...] = ()) -> Person:
    return Person(
        key,
        Kind.STAFF,
        "Pia",
        "Persson",
        f"{key}@edu.example.se",
        key.upper(),
        False,
        placements or (Placement(A, role="Lärare"),),
        groups=groups,
    )


def roles(**data: Any) -> RolesConfig:
    return RolesConfig.model_validate(data)


def grants(config: RolesConfig, *persons: Person) -> list[list[tuple[str, str, str]]]:
    resolved = with_roles(config, list(persons), SCHOOLS, [A, B, C])
    return [[(g.value, g.type, g.display) for g in p.grants] for p in resolved]


def test_a_duty_grants_the_value_where_it_is_held() -> None:
    config = roles(rules=[{"value": "admin", "duty": "rektor"}])
    rector = person("p1", Placement(A, role="Rektor"), Placement(B, role="Lärare"))
    teacher = person("p2")
    assert grants(config, rector, teacher) == [[("admin", A, "Ekeby skola")], []]


def test_a_duty_at_a_division_counts_only_schools_in_it() -> None:
    config = roles(
        divisions={"gr-gy": {"school_types": ["GR", "GY"]}, "vux": {"school_units": [C]}},
        rules=[
            {"value": "admin", "duty": "Rektor", "division": "gr-gy"},
            {"value": "admin", "duty": "Rektor", "division": "vux"},
        ],
    )
    at_b = person("p1", Placement(B, role="Rektor"))
    at_c = person("p2", Placement(C, role="Rektor"))
    assert grants(config, at_b, at_c) == [[("admin", "gr-gy", "gr-gy")], [("admin", "vux", "vux")]]


def test_a_group_template_grants_at_its_school_and_a_plain_group_where_placed() -> None:
    config = roles(
        rules=[
            {
                "value": "admin",
                "group": "CN=Admin-{school_unit_code},OU=Grupper,DC=kommun,DC=example",
            },
            {"value": "central", "group": CENTRAL, "school_unit": C},
            {"value": "editor", "group": CENTRAL},
        ]
    )
    member = person(
        "p1",
        Placement(B, role="Lärare"),
        groups=(ADMINS_A.casefold().replace(", ", ","), CENTRAL.casefold()),
    )
    (resolved,) = with_roles(config, [member], SCHOOLS, [A, B, C])
    assert [(g.value, g.type) for g in resolved.grants] == [
        ("admin", A),
        ("central", C),
        ("editor", B),
    ]
    assert resolved.grants[0].reasons == (f"directory group {ADMINS_A}",)
    assert grants(config, person("p2", Placement(A)))[0] == []  # in no group


def test_a_list_of_people_matches_key_email_or_username_in_any_case() -> None:
    config = roles(rules=[{"value": "admin", "people": ["P1@EDU.example.se", "p3", "P4"]}])
    by_email, nobody, by_key = person("p1"), person("p2"), person("p3")
    by_username = person("p4")
    assert grants(config, by_email, nobody, by_key, by_username) == [
        [("admin", A, "Ekeby skola")],
        [],
        [("admin", A, "Ekeby skola")],
        [("admin", A, "Ekeby skola")],
    ]


def test_one_value_at_one_place_is_granted_once_with_every_reason() -> None:
    config = roles(
        rules=[
            {"value": "admin", "duty": "Rektor"},
            {"value": "admin", "people": ["p1"], "school_unit": A},
        ]
    )
    (resolved,) = with_roles(config, [person("p1", Placement(A, role="Rektor"))], SCHOOLS, [])
    (grant,) = resolved.grants
    assert grant.reasons == (f"duty Rektor at {A}", "listed under roles.rules[1].people")


def test_an_unsafe_school_name_is_not_the_display() -> None:
    schools = {A: School(A, "=HYPERLINK(1)")}
    config = roles(rules=[{"value": "admin", "people": ["p1"]}])
    (resolved,) = with_roles(config, [person("p1")], schools, [])
    assert resolved.grants[0].display == A


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"rules": [{"value": "admin"}]}, "exactly one of group, duty, people"),
        ({"rules": [{"value": "admin", "duty": "R", "people": ["x"]}]}, "exactly one"),
        ({"rules": [{"value": "=cmd", "duty": "R"}]}, "spreadsheet formula"),
        ({"rules": [{"value": "admin", "duty": "R", "division": "x"}]}, "not under divisions"),
        (
            {"rules": [{"value": "admin", "duty": "R", "school_unit": A, "division": "x"}]},
            "not both",
        ),
        ({"rules": [{"value": "admin", "group": "CN={x},DC=k"}]}, "is not a placeholder"),
        ({"divisions": {"x": {}}}, "needs school_types, school_units"),
    ],
)
def test_invalid_rules_are_refused(data: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        roles(**data)
