"""Roles from directory groups: a real slapd (memberOf), through the connector, into a real
SCIM server. A person carries only the groups role rules name; a protected entry none."""

from __future__ import annotations

from typing import Any

from connector.config import load_config
from connector.sources import build_sources
from tests.fakes.slapd import Slapd
from tests.support.ldap import directory_source
from tests.support.roles import mapping_with_values, values_at
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.workspace import Workspace

A, B = "11111111", "22222222"


def add(slapd: Slapd, uid: str, school: str, **attributes: Any) -> str:
    return slapd.add_person(
        uid,
        uid.capitalize(),
        "Lind",
        mail=f"{uid}@edu.example.se",
        departmentNumber=[school],
        title="Lärare",
        employeeType=attributes.pop("employeeType", "Ingen"),
        **attributes,
    )


def test_admins_by_directory_group_per_school_and_centrally(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory, monkeypatch
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    slapd.add_ou("groups")
    karin, olle = add(slapd, "karin", A), add(slapd, "olle", B)
    hemlig = add(slapd, "hemlig", A, employeeType="Skyddad")
    slapd.add_group("admin-11111111", [karin, hemlig])
    slapd.add_group("central-admins", [olle, hemlig])
    slapd.add_group("unrelated", [karin, olle, hemlig])
    workspace = Workspace(tmp_path, scim_url)
    source = directory_source(
        slapd, protected_identity={"attribute": "employeeType", "not_protected_values": ["Ingen"]}
    )
    workspace.extra_sources = [source]
    workspace.overrides["schools"] = [
        {"code": A, "name": "Ekeby skola", "school_types": ["GR"]},
        {"code": B, "name": "Björkängsgymnasiet", "school_types": ["GY"]},
    ]
    workspace.overrides["mapping"] = str(mapping_with_values(tmp_path, roles={}))
    workspace.overrides["roles"] = {
        "divisions": {"gr-gy": {"school_types": ["GR", "GY"]}},
        "rules": [
            {"value": "admin", "group": f"cn=admin-{{school_unit_code}},ou=groups,{slapd.suffix}"},
            {
                "value": "admin",
                "group": f"CN=Central-Admins, OU=groups, {slapd.suffix.upper()}",
                "division": "gr-gy",
            },
        ],
    }

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    users = peek.users()
    assert set(users) == {"karin@edu.example.se", "olle@edu.example.se"}
    assert values_at(users["karin@edu.example.se"]) == {("admin", A)}
    assert values_at(users["olle@edu.example.se"]) == {("admin", "gr-gy")}
    assert "hemlig" not in result.stdout + result.stderr

    # What the source carries: the role-rule groups alone, none for a protected entry.
    monkeypatch.setenv("TEST_SCIM_TOKEN", SCIM_TOKEN)
    config = load_config(workspace.write_config())
    (directory,) = build_sources(config)
    persons = {p.username: p for p in directory.read().persons}
    assert persons["karin"].groups == (f"cn=admin-11111111,ou=groups,{slapd.suffix}".casefold(),)
    assert persons["olle"].groups == (f"cn=central-admins,ou=groups,{slapd.suffix}".casefold(),)
    assert persons["hemlig"].protected and persons["hemlig"].groups == ()
