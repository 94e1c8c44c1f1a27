"""An EGIL target's config (`kind: egil`) and the mapping it may use."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from connector.config.builtin import BUILTIN_MAPPINGS
from connector.errors import ConfigError
from connector.mapping.profile import load_mapping
from connector.targets import build_target
from connector.targets.egil.http import API_KEY_HEADER, EgilTransport
from connector.targets.egil.target import EgilTarget, check_mapping
from tests.support.egil import egil_config
from tests.support.paths import DEFAULT_MAPPING, ILT_SCIM_MAPPING


def test_the_default_mapping_is_builtin_egil() -> None:
    config = egil_config()
    data = config.model_dump()
    del data["mapping"]
    assert type(config).model_validate(data).mapping == BUILTIN_MAPPINGS / "egil.yaml"


def test_it_builds_an_egil_target_with_the_api_key_header(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("s3cret-key\n")
    config = egil_config(token=None, api_key_file=str(key_file))
    target = build_target(config)
    try:
        assert isinstance(target, EgilTarget) and target.kind == "egil"
        assert isinstance(target.transport, EgilTransport)
        headers = target.transport._http.headers
        assert headers[API_KEY_HEADER] == "s3cret-key"
        assert "Authorization" not in headers
    finally:
        target.close()


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"school_unit_groups": {"123": "G"}}, "8-digit school unit code"),
        ({"api_key": "a", "api_key_file": "/x"}, "either api_key or api_key_file"),
        ({"employment_roles": {"Lärare": "Teacher"}}, "employment_roles"),
        ({"organisation": {"display_name": "K", "municipality_code": "12"}}, "municipality_code"),
        ({"endpoints": {"students": "Users/x"}}, "endpoints.students"),
        ({"endpoints": {"teachers": "SchoolUnits"}}, "only students and teachers may share"),
        ({"endpoints": {"activities": "StudentGroups"}}, "only students and teachers may share"),
    ],
)
def test_a_wrong_egil_config_is_refused(extra: dict, problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        egil_config(**extra)
    assert problem in str(info.value)


@pytest.mark.parametrize("mapping", [DEFAULT_MAPPING, ILT_SCIM_MAPPING])
def test_a_mapping_with_what_egil_cannot_take_is_refused(mapping: Path) -> None:
    with pytest.raises(ConfigError) as info:
        check_mapping(load_mapping(mapping))
    assert any("EGIL takes only" in p or "not available" in p for p in info.value.problems)


def test_the_builtin_egil_mapping_is_accepted(tmp_path: Path) -> None:
    check_mapping(load_mapping(BUILTIN_MAPPINGS / "egil.yaml"))
    own = tmp_path / "mine.yaml"
    own.write_text(
        yaml.safe_dump(
            {
                "user": {
                    "attributes": {
                        "userName": "{username}",
                        "name.givenName": "{given_name}",
                        "name.familyName": "{family_name}",
                        "displayName": "{family_name}, {given_name}",
                    }
                },
                "group": {"attributes": {"displayName": "{school_name}"}},
            }
        )
    )
    check_mapping(load_mapping(own))


def test_endpoints_default_to_windermeres_users_for_students_and_teachers() -> None:
    endpoints = egil_config().endpoints
    assert (endpoints.students, endpoints.teachers) == ("Users", "Users")
    apart = egil_config(endpoints={"students": "Students", "teachers": "Teachers"}).endpoints
    assert (apart.students, apart.teachers, apart.school_units) == (
        "Students",
        "Teachers",
        "SchoolUnits",
    )
