"""Mapping options of issue 16: attributes set once (`on: create`), generated usernames, the
mobile-number opt-in, and a personnummer that no mapping, column or attribute can send."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from connector.config import ExternalIdConfig
from connector.config.sources import CsvColumns, LdapAttributes
from connector.errors import ConfigError
from connector.mapping.desired import EXCLUDED_MAPPING, build_desired
from connector.mapping.profile import Mapping, UnsafeTextError, load_mapping
from connector.mapping.usernames import AssignedName, UsernameNeeded
from connector.people.externalid import ExternalIdMaker, contains_personal_identity_number
from connector.people.model import Kind, Person, Placement, School
from connector.people.phones import normalize_mobile
from connector.people.scope import Scoped
from connector.planning.objects import DesiredUser, Known, KnownUser
from connector.planning.plan import make_plan
from connector.state.schema import SCHEMA_VERSION
from connector.state.store import StateStore
from connector.targets.scim.resources import user_payload
from tests.support.paths import ILT_SCIM_MAPPING

A = "11111111"
IDS = ExternalIdMaker(ExternalIdConfig(key="test-key"))


def mapping(tmp_path: Path, attributes: dict[str, Any], **user: Any) -> Mapping:
    path = tmp_path / "mapping.yaml"
    data = {
        "user": {"attributes": attributes, **user},
        "group": {"attributes": {"displayName": "{school_name}"}},
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return load_mapping(path)


def problems(tmp_path: Path, attributes: dict[str, Any], **user: Any) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        mapping(tmp_path, attributes, **user)
    return refused.value.problems


def person(key: str = "E1", email: str | None = None, **fields: Any) -> Person:
    values: dict[str, Any] = {"given_name": "Åsa", "family_name": "Öberg", **fields}
    return Person(
        key,
        Kind.STUDENT,
        email=email,
        username=None,
        protected=False,
        placements=(Placement(A),),
        **values,
    )


# -- on: create --------------------------------------------------------------------------------


def test_on_create_is_read_from_a_yaml_file_as_written(tmp_path: Path) -> None:
    # `on` unquoted is the boolean true in YAML 1.1: the mapping still reads it as `on`.
    path = tmp_path / "mapping.yaml"
    path.write_text(
        "user:\n  attributes:\n    userName: {template: '{email|lower}', on: create}\n"
        "    displayName: '{given_name}'\ngroup:\n  attributes:\n    displayName: '{school_name}'\n",
        encoding="utf-8",
    )
    loaded = load_mapping(path)
    assert loaded.create_only == frozenset({"userName"})
    assert loaded.user_attributes(person(email="a@s.se"), "x")["userName"] == "a@s.se"


def test_on_takes_only_create_or_always(tmp_path: Path) -> None:
    found = problems(tmp_path, {"userName": {"template": "{email}", "on": "sometimes"}})
    assert any("userName" in p and "on" in p for p in found), found


def test_the_planner_never_updates_a_create_only_attribute_but_others_still() -> None:
    desired = {"u": DesiredUser("u", {"userName": "long.name@s.se", "displayName": "New"})}
    known = Known(
        users={
            "u": KnownUser("u", "v", "created", True, {"userName": "short", "displayName": "Old"})
        }
    )

    always = make_plan(desired, {}, known)
    once = make_plan(desired, {}, known, create_only=frozenset({"userName"}))

    assert [op.attributes for op in always.operations] == [
        {"userName": "long.name@s.se", "displayName": "New"}
    ]
    assert [op.attributes for op in once.operations] == [{"displayName": "New"}]
    assert make_plan({}, {}, Known(), create_only=frozenset({"userName"})).operations == []
    created = make_plan(desired, {}, Known(), create_only=frozenset({"userName"}))
    assert created.operations[0].attributes["userName"] == "long.name@s.se"


# -- generated usernames ----------------------------------------------------------------------

RULE = {"template": "{given_name|username}.{family_name|username}", "max_length": 12}


def test_a_person_without_email_needs_a_username_only_where_one_is_generated(
    tmp_path: Path,
) -> None:
    plain = mapping(tmp_path, {"userName": "{email|lower}"})
    with pytest.raises(ValueError, match="userName is empty") as refused:
        plain.user_attributes(person(), "x")
    assert not isinstance(refused.value, UsernameNeeded)

    generating = mapping(tmp_path, {"userName": "{email|lower}"}, generate_username=RULE)
    with pytest.raises(UsernameNeeded) as needed:
        generating.user_attributes(person(given_name="Anna-Lena", family_name="D'Souza Ek"), "x")
    assert needed.value.base == "anna-lena.ds"
    assert "userName" not in needed.value.attributes


def test_candidates_are_ascii_cut_to_length_and_numbered(tmp_path: Path) -> None:
    rule = mapping(tmp_path, {"userName": "{email}"}, generate_username=RULE).username_rule
    assert rule is not None
    base = rule.base({"given_name": "Zoë", "family_name": "Ångström Ärlig"})
    names = list(rule.candidates(base))
    assert names[:3] == ["zoe.angstrom", "zoe.angstro2", "zoe.angstro3"]
    assert names[9] == "zoe.angstr10"
    assert all(len(n) <= 12 and n.isascii() and "'" not in n for n in names)
    assert list(rule.candidates(rule.base({"given_name": "李", "family_name": "'"}))) == []


def test_a_username_domain_must_look_like_one(tmp_path: Path) -> None:
    found = problems(
        tmp_path, {"userName": "{email}"}, generate_username={**RULE, "domain": "elev.se"}
    )
    assert any("generate_username.domain" in p for p in found), found


def test_a_given_username_is_used_and_a_rename_keeps_it_unless_configured(tmp_path: Path) -> None:
    def desired_for(rule: dict[str, Any], given: str) -> Any:
        m = mapping(tmp_path, {"userName": "{email}"}, generate_username=rule)
        renamed = person(given_name=given, family_name="Lind")
        ext = IDS.for_person(renamed)
        given_before = {ext: AssignedName("erik.lind", "erik.lind")}
        scoped = Scoped(persons=[renamed], schools={A: School(A, "Ekeby")})
        return ext, build_desired(scoped, m, IDS, given_before)

    ext, kept = desired_for(RULE, "Eric")
    assert kept.users[ext].attributes["userName"] == "erik.lind"
    assert kept.pending_usernames == {}
    assert ext in kept.groups[A].members

    ext, again = desired_for({**RULE, "regenerate_on_rename": True}, "Eric")
    assert ext not in again.users and again.pending_usernames[ext].base == "eric.lind"


# -- the mobile number ------------------------------------------------------------------------


def test_a_mobile_number_is_mapped_only_with_the_opt_in(tmp_path: Path) -> None:
    attributes = {"userName": "{email}", "phoneNumbers": "{mobile}", "title": "{mobile}"}
    found = problems(tmp_path, attributes)
    assert sorted(found) == [
        "user.attributes.phoneNumbers: a mobile number is sent only with user.mobile_opt_in: true",
        "user.attributes.title: a mobile number is sent only with user.mobile_opt_in: true",
    ]
    opted = mapping(
        tmp_path, {"userName": "{email}", "phoneNumbers": "{mobile}"}, mobile_opt_in=True
    )
    attrs = opted.user_attributes(person(email="a@s.se", mobile="070-123 45 67"), "x")
    assert attrs["phoneNumbers"] == [{"value": "+46701234567", "type": "mobile"}]
    assert user_payload(attrs)["phoneNumbers"][0]["value"] == "+46701234567"
    assert "phoneNumbers" not in opted.user_attributes(person(email="a@s.se"), "x")


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("070-123 45 67", "+46701234567"),
        ("0046 70 1234567", "+46701234567"),
        ("+47 412 34 567", "+4741234567"),
    ],
)
def test_mobile_numbers_are_written_as_e164(raw: str, normalized: str) -> None:
    assert normalize_mobile(raw) == normalized


@pytest.mark.parametrize("raw", ["070-123 45 67 ring", "=1+1", "12", "+0701234567"])
def test_what_is_not_a_mobile_number_is_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        normalize_mobile(raw)


# -- a personnummer is never sent -------------------------------------------------------------


def test_no_template_can_name_a_personnummer_or_the_keys(tmp_path: Path) -> None:
    for field in ("personnummer", "civic_no", "join_key", "source_key", "key"):
        found = problems(tmp_path, {"userName": f"{{{field}}}"})
        assert any(f"unknown field {field!r}" in p for p in found), found


@pytest.mark.parametrize("field", ["email", "username", "given_name", "mobile", "class_name"])
@pytest.mark.parametrize("header", ["Personnummer", "PNR", "Person-nr", "civicNo"])
def test_a_csv_column_named_like_a_personnummer_is_refused_for_a_mapped_field(
    field: str, header: str
) -> None:
    with pytest.raises(ValidationError, match="looks like a personnummer"):
        CsvColumns.model_validate({"key": "Elev-ID", "school_unit_code": "Skola", field: header})


def test_a_personnummer_column_may_still_be_the_key_or_the_join_key() -> None:
    CsvColumns.model_validate(
        {
            "key": "Personnummer",
            "join_key": "Personnummer",
            "school_unit_code": "Skola",
            "email": "E-post",
            "given_name": "Förnamn",
        }
    )
    LdapAttributes.model_validate({"key": "entryUUID", "join_key": "norEduPersonNIN"})
    with pytest.raises(ValidationError, match="looks like a personnummer"):
        LdapAttributes.model_validate({"key": "entryUUID", "username": "norEduPersonNIN"})


def test_a_mapped_value_holding_a_personnummer_leaves_the_person_out(tmp_path: Path) -> None:
    m = mapping(tmp_path, {"userName": "{username}"})
    leaky = Person("E1", Kind.STUDENT, "Åsa", "Öberg", None, "811218-9876", False, (Placement(A),))
    with pytest.raises(UnsafeTextError, match="personnummer"):
        m.user_attributes(leaky, "x")
    desired = build_desired(Scoped(persons=[leaky], schools={A: School(A, "Ekeby")}), m, IDS)
    assert desired.users == {} and desired.excluded == {EXCLUDED_MAPPING: 1}
    assert "811218" not in repr(desired.issues)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("198112189876@skola.se", True),
        ("x 811218-9876", True),
        ("811218-9875", False),
        ("+46701234567", False),
        ("e1001@skola.se", False),
        ("anna.lind2", False),
    ],
)
def test_a_personnummer_is_found_by_its_date_and_check_digit(text: str, found: bool) -> None:
    assert contains_personal_identity_number(text) is found


# -- the state file ---------------------------------------------------------------------------


def test_a_version_2_state_file_gets_the_usernames_table(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    StateStore.open(path).close()
    with sqlite3.connect(path) as db:  # as a version-2 connector left it
        db.execute("DROP TABLE usernames")
        db.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")

    state = StateStore.open(path)
    target = state.target("ilt")
    target.assign_username("u1", AssignedName("erik.lind", "erik.lind"))
    assert target.generated_usernames() == {"u1": AssignedName("erik.lind", "erik.lind")}
    assert target.usernames_in_use() == {"erik.lind"}
    assert state.target("other").generated_usernames() == {}
    target.drop_usernames(["u1"])
    assert target.generated_usernames() == {}
    state.close()
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            str(SCHEMA_VERSION),
        )


# -- the ILT profile --------------------------------------------------------------------------


def test_the_ilt_profile_sets_its_username_once_and_names_roles_in_swedish() -> None:
    ilt = load_mapping(ILT_SCIM_MAPPING)
    assert ilt.create_only == frozenset({"userName"})
    teacher = Person(
        "P1",
        Kind.STAFF,
        "Karin",
        "Sjöberg",
        "karin@s.se",
        None,
        False,
        (Placement(A, role="Lärare"),),
    )
    attributes = ilt.user_attributes(teacher, "x")
    assert (attributes["displayName"], attributes["userType"]) == ("Sjöberg, Karin", "Lärare")
    assert ilt.user_attributes(person(email="a@s.se"), "x")["userType"] == "Elev"
    with pytest.raises(UsernameNeeded) as needed:
        ilt.user_attributes(person(given_name="Anna Maria", family_name="D'Souza"), "x")
    assert list(ilt.username_rule.candidates(needed.value.base))[:2] == [  # type: ignore[union-attr]
        "anna.dsouza@elev.kommun.se",
        "anna.dsouza2@elev.kommun.se",
    ]
