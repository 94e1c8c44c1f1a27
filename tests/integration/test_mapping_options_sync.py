"""Mapping options against a real SCIM server: attributes set once (`on: create`: set when the
account is created, then the vendor's; a username an admin shortened at the vendor is kept
through `sync --full`), and the mobile number, sent only with `mobile_opt_in`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.ldap import directory_source
from tests.support.rosters import student, write_csv
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A = "11111111"


def mapping_file(folder: Path, user_name: object) -> Path:
    path = folder / "mapping.yaml"
    mapping = {
        "user": {
            "attributes": {
                "userName": user_name,
                "name.familyName": "{family_name}",
                "displayName": "{given_name} {family_name}",
                "emails": "{email|lower}",
            }
        },
        "group": {"attributes": {"displayName": "{school_name}"}},
    }
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("user_name", "kept"),
    [({"template": "{email|lower}", "on": "create"}, True), ("{email|lower}", False)],
    ids=["on-create", "always"],
)
def test_a_username_shortened_at_the_vendor_is_kept_through_full_reconciles(
    workspace: Workspace, peek: ScimPeek, user_name: object, kept: bool
) -> None:
    workspace.overrides["mapping"] = str(mapping_file(workspace.root, user_name))
    workspace.students([student("E1", "Åsa", "Öberg", A), student("E2", "Erik", "Lind", A)])
    assert workspace.sync().exit_code == 0
    account = peek.users()["e1@edu.example.se"]
    peek.set_vendor_attribute(account["id"], userName="asa.o")

    first = workspace.run("sync", "--full")
    second = workspace.run("sync", "--full")

    assert first.exit_code == 0 and second.exit_code == 0, first.stderr + second.stderr
    users = peek.users()
    if kept:
        assert users["asa.o"]["id"] == account["id"]
        assert "e1@edu.example.se" not in users
        # Nothing to do: the state does not fight the vendor's value cycle after cycle.
        for result in (first, second):
            assert result.event("sync.finished")["requests"].get("PATCH") is None
            assert result.event("sync.finished")["requests"].get("POST") is None
    else:
        assert users["e1@edu.example.se"]["id"] == account["id"]  # drift repaired
        assert first.event("sync.finished")["requests"].get("PATCH") == 1


def test_a_create_only_username_stays_when_the_person_changes_and_others_follow(
    workspace: Workspace, peek: ScimPeek
) -> None:
    mapping = mapping_file(workspace.root, {"template": "{email|lower}", "on": "create"})
    workspace.overrides["mapping"] = str(mapping)
    workspace.students([student("E1", "Åsa", "Öberg", A)])
    workspace.sync()
    account = peek.users()["e1@edu.example.se"]
    peek.set_vendor_attribute(account["id"], userName="asa.o")

    # Married, new e-mail address: her other attributes follow, her username does not.
    workspace.students([student("E1", "Åsa", "Lind", A, email="asa.lind@edu.example.se")])
    for args in (("sync",), ("sync", "--full")):
        assert workspace.run(*args).exit_code == 0

    after = peek.users()["asa.o"]
    assert after["id"] == account["id"]
    assert after["name"]["familyName"] == "Lind"
    assert after["displayName"] == "Åsa Lind"
    assert [e["value"] for e in after["emails"]] == ["asa.lind@edu.example.se"]
    assert len(peek.users()) == 1


def staff_with_mobiles(workspace: Workspace, mobile: str) -> None:
    """A staff list with a `Mobil` column, as its own source."""
    path = write_csv(
        workspace.root / "personal.csv",
        ["Personal-ID", "Förnamn", "Efternamn", "E-post", "Skolenhetskod", "Mobil"],
        [["P1", "Karin", "Sjöberg", "karin@edu.example.se", A, mobile]],
    )
    workspace.extra_sources = [
        {
            "name": "staff",
            "type": "csv",
            "kind": "staff",
            "path": str(path),
            "columns": {
                "key": "Personal-ID",
                "given_name": "Förnamn",
                "family_name": "Efternamn",
                "email": "E-post",
                "school_unit_code": "Skolenhetskod",
                "mobile": "Mobil",
            },
            "protected_identity": {"assume_not_protected": True},
        }
    ]


def test_a_mobile_number_reaches_the_vendor_only_with_the_opt_in(
    workspace: Workspace, peek: ScimPeek
) -> None:
    path = workspace.root / "mobile.yaml"
    mapping: dict[str, Any] = {
        "user": {
            "attributes": {"userName": "{email|lower}", "phoneNumbers": "{mobile}"},
            "mobile_opt_in": True,
        },
        "group": {"attributes": {"displayName": "{school_name}"}},
    }
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    workspace.overrides["mapping"] = str(path)
    staff_with_mobiles(workspace, "070-123 45 67")

    assert workspace.sync().exit_code == 0
    (user,) = peek.users().values()
    assert [(p["value"], p["type"]) for p in user["phoneNumbers"]] == [("+46701234567", "mobile")]
    # A new number is a PATCH of the same account; the next full reconcile finds nothing to do.
    staff_with_mobiles(workspace, "+46 70 765 43 21")
    assert workspace.sync().exit_code == 0
    assert workspace.run("sync", "--full").event("sync.finished")["requests"].get("PATCH") is None
    (user,) = peek.users().values()
    assert [p["value"] for p in user["phoneNumbers"]] == ["+46707654321"]

    mapping["user"].pop("mobile_opt_in")
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    refused = workspace.sync()
    assert refused.exit_code == 2
    assert "mobile_opt_in" in refused.stdout + refused.stderr


def test_a_directory_mobile_attribute_reaches_the_vendor_with_the_opt_in(
    workspace: Workspace, peek: ScimPeek, slapd_factory: Any
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    slapd.add_person(
        "karin",
        "Karin",
        "Sjöberg",
        mail="karin@edu.example.se",
        mobile="+46 70 111 22 33",
        departmentNumber=A,
    )
    slapd.add_person("olle", "Olle", "Ek", mail="olle@edu.example.se", departmentNumber=A)
    source = directory_source(slapd)
    source["attributes"]["mobile"] = "mobile"
    workspace.extra_sources = [source]
    path = workspace.root / "mobile.yaml"
    mapping = {
        "user": {
            "attributes": {"userName": "{email|lower}", "phoneNumbers": "{mobile}"},
            "mobile_opt_in": True,
        },
        "group": {"attributes": {"displayName": "{school_name}"}},
    }
    path.write_text(yaml.safe_dump(mapping), encoding="utf-8")
    workspace.overrides["mapping"] = str(path)

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    users = peek.users()
    assert users["karin@edu.example.se"]["phoneNumbers"][0]["value"] == "+46701112233"
    assert not users["olle@edu.example.se"].get("phoneNumbers")
