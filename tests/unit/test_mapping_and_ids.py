"""Unit tests for connector.mapping.profile (mapping files) and connector.people.externalid (opaque ids)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.config import ExternalIdConfig
from connector.errors import ConfigError
from connector.mapping.profile import Mapping, load_mapping
from connector.people.externalid import ExternalIdMaker, looks_like_personal_identity_number
from connector.people.model import Kind, Person, Placement, School

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MAPPING = REPO / "mappings" / "default.yaml"
EXT = "0123456789abcdef0123456789abcdef"


def person(
    key: str = "E1001",
    *,
    kind: Kind = Kind.STUDENT,
    given: str = "Åsa",
    family: str = "Öberg",
    email: str | None = "Asa.Oberg@Skola.Example.SE",
    roles: tuple[str, ...] = (),
) -> Person:
    placements = (
        tuple(Placement("11111111", role=r) for r in roles) if roles else (Placement("11111111"),)
    )
    return Person(key, kind, given, family, email, None, False, placements)


@pytest.fixture(scope="module")
def mapping() -> Mapping:
    return load_mapping(DEFAULT_MAPPING)


# -- the default mapping -------------------------------------------------------------------------


def test_default_mapping_maps_a_student(mapping: Mapping) -> None:
    attributes = mapping.user_attributes(person(), EXT)
    assert attributes["externalId"] == EXT
    assert attributes["active"] is True
    assert attributes["userName"] == "asa.oberg@skola.example.se"
    assert attributes["name.givenName"] == "Åsa"
    assert attributes["name.familyName"] == "Öberg"
    assert attributes["name.formatted"] == "Öberg, Åsa"
    assert attributes["displayName"] == "Åsa Öberg"
    assert attributes["userType"] == "student"


def test_default_mapping_emails_is_one_primary_work_address(mapping: Mapping) -> None:
    attributes = mapping.user_attributes(person(), EXT)
    assert attributes["emails"] == [
        {"value": "asa.oberg@skola.example.se", "type": "work", "primary": True}
    ]


def test_staff_with_teacher_role_is_teacher(mapping: Mapping) -> None:
    teacher = person("P1", kind=Kind.STAFF, roles=("Lärare",))
    assert mapping.user_type(teacher) == "teacher"
    assert mapping.user_attributes(teacher, EXT)["userType"] == "teacher"


def test_teacher_role_matches_case_insensitively(mapping: Mapping) -> None:
    assert mapping.user_type(person("P1", kind=Kind.STAFF, roles=("LÄRARE",))) == "teacher"


def test_staff_with_other_role_is_staff(mapping: Mapping) -> None:
    janitor = person("P2", kind=Kind.STAFF, roles=("Vaktmästare",))
    assert mapping.user_attributes(janitor, EXT)["userType"] == "staff"


def test_staff_with_any_teacher_role_among_several_is_teacher(mapping: Mapping) -> None:
    both = person("P3", kind=Kind.STAFF, roles=("Vaktmästare", "Rektor"))
    assert mapping.user_type(both) == "teacher"


def test_staff_without_role_is_staff(mapping: Mapping) -> None:
    assert mapping.user_type(person("P4", kind=Kind.STAFF)) == "staff"


@pytest.mark.parametrize("email", ["", None, "   "])
def test_empty_email_gives_value_error(mapping: Mapping, email: str | None) -> None:
    with pytest.raises(ValueError, match="userName is empty"):
        mapping.user_attributes(person(email=email), EXT)


def test_group_attributes_use_school_name(mapping: Mapping) -> None:
    school = School("11111111", "Norrskolan", ("GR",))
    assert mapping.group_attributes(school) == {
        "externalId": "11111111",
        "displayName": "Norrskolan",
    }


def test_mapped_attributes_are_the_managed_ones_plus_the_connectors_own(mapping: Mapping) -> None:
    person = Person("E1", Kind.STUDENT, "Åsa", "Öberg", "asa@skola.example.se", None, False)
    paths = set(mapping.user_attributes(person, "x" * 32))
    assert {"userName", "emails", "active", "externalId"} <= paths
    assert "nickName" not in paths  # not named by the mapping: never touched


# -- broken mapping files --------------------------------------------------------------------


def write_mapping(tmp_path: Path, user_attributes: dict[str, str], **extra: Any) -> Path:
    data: dict[str, Any] = {
        "user": {"attributes": user_attributes},
        "group": {"attributes": {"displayName": "{school_name}"}},
    }
    data.update(extra)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def mapping_problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    assert info.value.file == str(path)
    return info.value.problems


def test_minimal_mapping_file_loads(tmp_path: Path) -> None:
    loaded = load_mapping(write_mapping(tmp_path, {"userName": "{email|lower}"}))
    attributes = loaded.user_attributes(person(), EXT)
    assert set(attributes) == {"externalId", "active", "userName"}


def test_unknown_attribute_is_named(tmp_path: Path) -> None:
    path = write_mapping(tmp_path, {"userName": "{email}", "foo": "{given_name}"})
    problems = mapping_problems(path)
    assert len(problems) == 1
    assert problems[0].startswith("user.attributes.foo: not a SCIM attribute")


def test_mapping_external_id_is_refused(tmp_path: Path) -> None:
    path = write_mapping(tmp_path, {"userName": "{email}", "externalId": "{email}"})
    problems = mapping_problems(path)
    assert problems == ["user.attributes.externalId: is set by the connector and cannot be mapped"]


def test_mapping_active_is_refused(tmp_path: Path) -> None:
    path = write_mapping(tmp_path, {"userName": "{email}", "active": "true"})
    assert mapping_problems(path)[0].startswith("user.attributes.active: is set by the connector")


def test_unknown_template_field_is_named(tmp_path: Path) -> None:
    path = write_mapping(tmp_path, {"userName": "{email}", "displayName": "{nick_name}"})
    problems = mapping_problems(path)
    assert len(problems) == 1
    assert problems[0].startswith("user.attributes.displayName: unknown field 'nick_name'")


def test_code_in_template_is_an_unknown_field(tmp_path: Path) -> None:
    path = write_mapping(tmp_path, {"userName": "{email.__class__}"})
    problems = mapping_problems(path)
    assert problems[0].startswith("user.attributes.userName: unknown field")


def test_missing_user_name_is_named(tmp_path: Path) -> None:
    path = write_mapping(tmp_path, {"displayName": "{given_name}"})
    assert mapping_problems(path) == ["user.attributes.userName: is required"]


def test_missing_group_display_name_is_named(tmp_path: Path) -> None:
    path = write_mapping(tmp_path, {"userName": "{email}"}, group={"attributes": {}})
    assert mapping_problems(path) == ["group.attributes.displayName: is required"]


def test_group_template_cannot_use_user_fields(tmp_path: Path) -> None:
    path = write_mapping(
        tmp_path, {"userName": "{email}"}, group={"attributes": {"displayName": "{email}"}}
    )
    assert mapping_problems(path)[0].startswith("group.attributes.displayName: unknown field")


def test_all_problems_reported_together(tmp_path: Path) -> None:
    path = write_mapping(tmp_path, {"foo": "{x}", "displayName": "{nope}"})
    keys = {p.split(":", 1)[0] for p in mapping_problems(path)}
    assert keys == {
        "user.attributes.foo",
        "user.attributes.displayName",
        "user.attributes.userName",
    }


def test_unknown_section_key_is_named(tmp_path: Path) -> None:
    path = write_mapping(tmp_path, {"userName": "{email}"}, usr={})
    assert any(p.startswith("usr:") for p in mapping_problems(path))


# -- externalId ----------------------------------------------------------------------------


def hmac_maker(key: str = "kommunens-hemliga-nyckel") -> ExternalIdMaker:
    return ExternalIdMaker(ExternalIdConfig.model_validate({"mode": "hmac", "key": key}))


def source_key_maker() -> ExternalIdMaker:
    return ExternalIdMaker(ExternalIdConfig.model_validate({"mode": "source_key"}))


def test_hmac_id_is_stable_for_the_same_person() -> None:
    assert hmac_maker().for_person(person("E1001")) == hmac_maker().for_person(person("E1001"))


def test_hmac_id_ignores_names_and_email() -> None:
    a = person("E1001", given="Anna", email="a@x.se")
    b = person("E1001", given="Berit", email="b@x.se")
    assert hmac_maker().for_person(a) == hmac_maker().for_person(b)


def test_hmac_id_differs_for_different_keys() -> None:
    maker = hmac_maker()
    assert maker.for_person(person("E1001")) != maker.for_person(person("E1002"))


def test_hmac_id_differs_for_different_secrets() -> None:
    p = person("E1001")
    assert hmac_maker("one").for_person(p) != hmac_maker("two").for_person(p)


def test_hmac_id_differs_for_student_and_staff_with_same_key() -> None:
    maker = hmac_maker()
    assert maker.for_person(person("1001")) != maker.for_person(person("1001", kind=Kind.STAFF))


def test_hmac_id_is_32_hex_chars_without_the_source_key() -> None:
    key = "200101011234"
    value = hmac_maker().for_person(person(key))
    assert re.fullmatch(r"[0-9a-f]{32}", value)
    assert key not in value
    assert key[:6] not in value


def test_source_key_mode_returns_the_key() -> None:
    assert source_key_maker().for_person(person("E1001")) == "E1001"


@pytest.mark.parametrize("key", ["200101011234", "010101-1234", "19900101+1234", "0101011234"])
def test_source_key_mode_refuses_personal_identity_numbers(key: str) -> None:
    with pytest.raises(ValueError, match="personal identity number"):
        source_key_maker().for_person(person(key))


@pytest.mark.parametrize(
    "value", ["200101011234", "010101-1234", "19900101+1234", " 010101-1234 ", "010161-T234"]
)
def test_looks_like_personal_identity_number_true(value: str) -> None:
    assert looks_like_personal_identity_number(value) is True


@pytest.mark.parametrize("value", ["E1001", "12345", "abc-1234", "", "1234567890123"])
def test_looks_like_personal_identity_number_false(value: str) -> None:
    assert looks_like_personal_identity_number(value) is False


@pytest.mark.parametrize(
    ("kind", "key", "expected"),
    [
        (Kind.STUDENT, "E1", "db3ed2004a632c2f6512912f89cdf1d0"),
        (Kind.STAFF, "P-4711", "4d904e1f02aba55b6d0185c9346222cb"),
    ],
)
def test_the_external_id_derivation_is_pinned(kind: Kind, key: str, expected: str) -> None:
    # Every account at every vendor is keyed on this value: a changed derivation would re-key
    # them all (duplicates, or orphans). Literal values, computed once, never from the code.
    maker = ExternalIdMaker(ExternalIdConfig(key="kommunens-hemliga-nyckel"))
    person = Person(key, kind, "Åsa", "Öberg", "asa@example.se", None, False)
    assert maker.for_person(person) == expected
