"""Unit tests for how owned values reach a vendor: the PATCH that names exactly one value, the
read-modify-replace that keeps every other value, and the mapping's `roles:`/`entitlements:`."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.errors import ConfigError
from connector.mapping.profile import load_mapping
from connector.people.model import Grant, Kind, Person, Placement, School
from connector.targets.scim.values import changed_values, value_filter, values_patch
from tests.support.roles import mapping_with_values

ADMIN_A = {"value": "admin", "display": "Ekeby skola", "type": "11111111"}
HAND = {"value": "admin", "display": "by hand", "type": "99999999"}


def test_a_revoke_names_the_value_and_its_type_or_its_lack_of_one() -> None:
    assert value_filter("roles", ADMIN_A) == 'roles[value eq "admin" and type eq "11111111"]'
    assert (
        value_filter("entitlements", {"value": 'Be"greppa'})
        == 'entitlements[value eq "Be\\"greppa" and not (type pr)]'
    )


def test_a_grant_adds_single_values_and_a_revoke_removes_by_filter() -> None:
    patch = values_patch(add={"roles": [ADMIN_A]}, remove={"entitlements": [{"value": "X"}]})
    assert patch["Operations"] == [
        {"op": "add", "path": "roles", "value": [ADMIN_A]},
        {"op": "remove", "path": 'entitlements[value eq "X" and not (type pr)]'},
    ]


def test_read_modify_replace_keeps_every_value_it_does_not_name() -> None:
    current = {"roles": [HAND, ADMIN_A], "entitlements": [{"value": "Kept"}]}
    assert changed_values(current, {}, {"roles": [ADMIN_A]}) == {"roles": [HAND]}
    added = changed_values(current, {"roles": [ADMIN_A]}, {})
    assert added == {"roles": [HAND, ADMIN_A]}  # already there: not twice
    assert changed_values({"roles": [ADMIN_A]}, {}, {"roles": [ADMIN_A]}) == {"roles": None}


def test_the_mapping_sends_grants_and_products_by_school_form(tmp_path: Path) -> None:
    mapping = load_mapping(
        mapping_with_values(
            tmp_path,
            roles={"attribute": "entitlements"},
            entitlements={"by_school_type": {"gr": ["Begreppa"], "GY": ["ILT"]}},
        )
    )
    person = Person(
        "p1",
        Kind.STAFF,
        "Pia",
        "Persson",
        "pia@edu.example.se",
        None,
        False,
        (Placement("11111111"), Placement("22222222", school_type="GY")),
        grants=(Grant("admin", "11111111", "Ekeby skola", ("duty Rektor",)),),
    )
    schools = {"11111111": School("11111111", "Ekeby skola", ("GR",))}
    attributes = mapping.user_attributes(person, "ext", schools)
    assert attributes["entitlements"] == [
        {"value": "Begreppa", "display": "Begreppa"},
        {"value": "ILT", "display": "ILT"},
        ADMIN_A,
    ]
    assert "roles" not in attributes


def test_without_a_roles_section_no_roles_are_sent(tmp_path: Path) -> None:
    mapping = load_mapping(mapping_with_values(tmp_path))
    person = Person(
        "p1",
        Kind.STAFF,
        "P",
        "P",
        "p@e.se",
        None,
        False,
        (Placement("11111111"),),
        grants=(Grant("admin", "11111111", "Ekeby skola"),),
    )
    assert "roles" not in mapping.user_attributes(person, "ext", {})


def test_an_unsafe_product_name_is_refused_when_loaded(tmp_path: Path) -> None:
    path = mapping_with_values(tmp_path, entitlements={"by_school_type": {"GR": ["=cmd()"]}})
    with pytest.raises(ConfigError, match="spreadsheet formula"):
        load_mapping(path)
