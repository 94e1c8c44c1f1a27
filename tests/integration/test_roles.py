"""Roles and entitlements the connector owns value by value, against a real SCIM server (with
and without PATCH): grants at schools, revokes only of what it granted, values granted by hand
left alone through everything, products by school form, nothing for a protected person."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.demo.localscim import LocalScimServer
from tests.support.roles import grant_by_hand, mapping_with_values, recorded_grants, values_at
from tests.support.rosters import staff, student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A, B, C = "11111111", "22222222", "33333333"
SCHOOLS = [
    {"code": A, "name": "Ekeby skola", "school_types": ["GR"]},
    {"code": B, "name": "Björkängsgymnasiet", "school_types": ["GY"]},
    {"code": C, "name": "Vuxenutbildningen", "school_types": ["VUX"]},
]
RECTOR = "pia@edu.example.se"
# What a vendor admin granted by hand: never the connector's to change.
BY_HAND = [
    {"value": "admin", "type": C, "display": "granted by hand"},
    {"value": "Läromedelsansvarig", "display": "granted by hand"},
]


def rector_rows(*schools: str, duty: str = "Rektor", marking: str = "Nej") -> list[list[str]]:
    rows = [
        staff("P1", "Pia", "Persson", code, duty, marking=marking, email=RECTOR) for code in schools
    ]
    return [*rows, staff("P2", "Per", "Lund", A)]


def configure(workspace: Workspace, tmp_path: Path, **roles: Any) -> None:
    workspace.overrides["schools"] = SCHOOLS
    workspace.overrides["mapping"] = str(
        mapping_with_values(tmp_path, roles={"attribute": "roles"})
    )
    workspace.overrides["roles"] = {
        "rules": [{"value": "admin", "duty": "Rektor"}],
        **roles,
    }


@pytest.fixture(params=["patch", "no_patch"])
def vendor(
    request: pytest.FixtureRequest, scim_server: LocalScimServer, tmp_path: Path
) -> Iterator[tuple[Workspace, ScimPeek]]:
    """A workspace and a peek at a fresh vendor, with PATCH or without (read-modify-replace)."""
    server = (
        scim_server if request.param == "patch" else request.getfixturevalue("no_patch_scim_server")
    )
    url = server.tenant_url("t" + uuid.uuid4().hex[:12])
    with ScimPeek(url) as peek:
        yield Workspace(tmp_path, url), peek


def test_admin_granted_at_two_schools_and_revoked_at_one(
    vendor: tuple[Workspace, ScimPeek], tmp_path: Path
) -> None:
    workspace, peek = vendor
    configure(workspace, tmp_path)
    workspace.staff(rector_rows(A, B))
    assert workspace.sync().exit_code == 0
    pia = peek.users()[RECTOR]
    assert values_at(pia) == {("admin", A), ("admin", B)}
    assert {v["display"] for v in pia["roles"]} == {"Ekeby skola", "Björkängsgymnasiet"}
    assert "roles" not in peek.users()["p2@edu.example.se"]

    # No longer rector at B: grant-only by default, so the value stays (and is recorded).
    workspace.staff([*rector_rows(A), staff("P1", "Pia", "Persson", B, "Lärare", email=RECTOR)])
    quiet = workspace.sync()
    assert quiet.exit_code == 0
    assert values_at(peek.users()[RECTOR]) == {("admin", A), ("admin", B)}
    assert "revoke_values" not in quiet.event("sync.finished")["planned"]

    workspace.overrides["roles"]["revoke"] = True
    revoked = workspace.sync()
    assert revoked.exit_code == 0
    after = peek.users()[RECTOR]
    assert after["id"] == pia["id"]
    assert values_at(after) == {("admin", A)}
    assert revoked.event("sync.finished")["applied"]["values_revoked"] == 1
    (grants,) = [g for g in recorded_grants(workspace.state_path).values() if "roles" in g]
    assert [(v["value"], v["type"]) for v in grants["roles"]] == [("admin", A)]


def test_values_granted_by_hand_are_never_touched(
    vendor: tuple[Workspace, ScimPeek], tmp_path: Path
) -> None:
    workspace, peek = vendor
    configure(workspace, tmp_path, revoke=True)
    workspace.staff(rector_rows(A))
    assert workspace.sync().exit_code == 0
    grant_by_hand(workspace.scim_url, peek.users()[RECTOR], "roles", *BY_HAND)
    by_hand = {("admin", C), ("Läromedelsansvarig", "")}

    workspace.staff(rector_rows(A, B))  # a grant
    assert workspace.sync().exit_code == 0
    assert values_at(peek.users()[RECTOR]) == by_hand | {("admin", A), ("admin", B)}

    workspace.staff(rector_rows(B))  # a revoke (of ours at A)
    assert workspace.sync().exit_code == 0
    assert values_at(peek.users()[RECTOR]) == by_hand | {("admin", B)}

    full = workspace.run("sync", "--full")  # compares only what the connector granted
    assert full.exit_code == 0, full.stdout
    assert full.event("sync.finished")["full_reconcile"] is True
    assert values_at(peek.users()[RECTOR]) == by_hand | {("admin", B)}
    assert not full.event("sync.finished")["planned"]

    workspace.staff([staff("P2", "Per", "Lund", A)])  # a leaver: deactivated, nothing revoked
    assert workspace.sync().exit_code == 0
    assert values_at(peek.users()[RECTOR]) == by_hand | {("admin", B)}


def test_a_granted_value_removed_at_the_vendor_is_granted_again_by_a_full_reconcile(
    workspace: Workspace, peek: ScimPeek, tmp_path: Path
) -> None:
    configure(workspace, tmp_path)
    workspace.staff(rector_rows(A))
    workspace.sync()
    pia = peek.users()[RECTOR]
    peek.set_vendor_attribute(pia["id"], roles=BY_HAND)  # ours replaced by hand

    assert workspace.run("sync", "--full").exit_code == 0
    assert values_at(peek.users()[RECTOR]) == {
        ("admin", C),
        ("Läromedelsansvarig", ""),
        ("admin", A),
    }


def test_entitlements_by_school_form(workspace: Workspace, peek: ScimPeek, tmp_path: Path) -> None:
    products = {"GR": ["Begreppa", "Inläsningstjänst"], "GY": ["Inläsningstjänst"]}
    workspace.overrides["mapping"] = str(
        mapping_with_values(tmp_path, entitlements={"by_school_type": products})
    )
    workspace.overrides["roles"] = {"revoke": True}
    workspace.students(
        [
            student("E1", "Åsa", "Öberg", A, school_type="GR"),
            student("E2", "Märta", "Ström", B, school_type="GY"),
        ]
    )
    assert workspace.sync().exit_code == 0
    users = peek.users()
    assert values_at(users["e1@edu.example.se"], "entitlements") == {
        ("Begreppa", ""),
        ("Inläsningstjänst", ""),
    }
    assert values_at(users["e2@edu.example.se"], "entitlements") == {("Inläsningstjänst", "")}

    # Moving from GR to GY: Begreppa goes, Inläsningstjänst stays without a round trip.
    workspace.students(
        [
            student("E1", "Åsa", "Öberg", B, school_type="GY"),
            student("E2", "Märta", "Ström", B, school_type="GY"),
        ]
    )
    moved = workspace.sync()
    assert moved.exit_code == 0
    assert values_at(peek.users()["e1@edu.example.se"], "entitlements") == {
        ("Inläsningstjänst", "")
    }
    assert moved.event("sync.finished")["applied"]["values_revoked"] == 1
    assert "values_granted" not in moved.event("sync.finished")["applied"]


def test_a_protected_person_gets_no_role_and_leaves_no_trace(
    workspace: Workspace, peek: ScimPeek, tmp_path: Path
) -> None:
    configure(workspace, tmp_path)
    workspace.overrides["roles"]["rules"].append(
        {"value": "admin", "people": ["hemlig@edu.example.se"], "school_unit": A}
    )
    hidden = staff(
        "P9", "Hemlig", "Hemligsson", A, "Rektor", marking="Ja", email="hemlig@edu.example.se"
    )
    workspace.staff([*rector_rows(A), hidden])
    result = workspace.sync()
    assert result.exit_code == 0
    assert set(peek.users()) == {RECTOR, "p2@edu.example.se"}
    assert not any(
        "hemlig" in str(g).casefold() for g in recorded_grants(workspace.state_path).values()
    )
    for text in (result.stdout, result.stderr):
        assert "hemlig" not in text.casefold() and "P9" not in text
    explained = workspace.run("explain", "hemlig@edu.example.se")
    assert "excluded (protected identity)" in explained.stdout
    assert "admin" not in explained.stdout


def test_becoming_protected_takes_the_granted_values_off_a_kept_account(
    workspace: Workspace, peek: ScimPeek, tmp_path: Path
) -> None:
    configure(workspace, tmp_path)
    workspace.overrides["lifecycle"] = {"protected_policy": "deactivate"}
    workspace.staff(rector_rows(A, B))
    workspace.sync()
    pia = peek.users()[RECTOR]
    grant_by_hand(workspace.scim_url, pia, "roles", BY_HAND[0])

    workspace.staff(rector_rows(A, B, marking="Ja"))
    result = workspace.sync()
    assert result.exit_code == 0
    after = {u["id"]: u for u in peek.list("Users")}[pia["id"]]
    assert after["active"] is False
    assert values_at(after) == {("admin", C)}  # ours gone (they name schools); the hand one kept
    record = [g for g in recorded_grants(workspace.state_path).values() if not g.get("userName")]
    assert record == [{}]  # only the link is left: no names, no granted values
    assert RECTOR not in result.stderr


def test_explain_shows_roles_and_entitlements_with_their_reasons(
    workspace: Workspace, tmp_path: Path
) -> None:
    configure(workspace, tmp_path)
    workspace.overrides["mapping"] = str(
        mapping_with_values(
            tmp_path,
            roles={"attribute": "roles"},
            entitlements={"by_school_type": {"GR": ["Begreppa"]}},
        )
    )
    workspace.overrides["roles"] = {
        "divisions": {
            "gr-gy": {"school_types": ["GR", "GY"], "display": "Grundskola och gymnasium"}
        },
        "rules": [
            {"value": "admin", "duty": "Rektor"},
            {"value": "admin", "people": [RECTOR], "division": "gr-gy"},
        ],
    }
    workspace.staff(rector_rows(A))
    result = workspace.run("explain", RECTOR)
    assert result.exit_code == 0, result.stdout
    out = result.stdout
    assert f"admin at {A} (Ekeby skola): duty Rektor at {A}" in out
    assert "admin at gr-gy (Grundskola och gymnasium): listed under roles.rules[1].people" in out
    assert "Begreppa: school form GR" in out
