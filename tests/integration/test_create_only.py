"""Attributes set once (`on: create` in the mapping): set when the account is created, then the
vendor's. A username an admin shortened at the vendor is kept through `sync --full`."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.support.rosters import student
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
