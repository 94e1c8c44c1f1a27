"""Generated usernames for people without an e-mail (`user.generate_username`): unique at
the vendor and in the state file, given once and kept through renames, checked against
accounts made by hand at the vendor, and not kept for a person who becomes protected."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import yaml

from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A = "11111111"
DOMAIN = "@elev.kommun.se"


def generating_mapping(folder: Path, **rule: object) -> str:
    path = folder / "mapping.yaml"
    mapping = {
        "user": {
            "attributes": {
                "userName": {"template": "{email|lower}", "on": "create"},
                "displayName": "{given_name} {family_name}",
                "emails": "{email|lower}",
            },
            "generate_username": {
                "template": "{given_name|username}.{family_name|username}",
                "max_length": 20,
                "domain": DOMAIN,
                **rule,
            },
        },
        "group": {"attributes": {"displayName": "{school_name}"}},
    }
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return str(path)


def without_email(workspace: Workspace, rows: list[list[str]]) -> None:
    workspace.overrides["mapping"] = generating_mapping(workspace.root)
    workspace.student_required = ["given_name", "family_name", "school_unit_code"]
    workspace.students(rows)


def stored_names(workspace: Workspace) -> list[str]:
    with sqlite3.connect(workspace.state_path) as db:
        return sorted(row[0] for row in db.execute("SELECT user_name FROM usernames"))


def test_two_students_with_one_name_get_distinct_usernames_that_stay_through_renames(
    workspace: Workspace, peek: ScimPeek
) -> None:
    without_email(
        workspace,
        [
            student("E1", "Anna-Karin", "Öberg-D'Souza", A, email=""),
            student("E2", "Anna-Karin", "Öberg-D'Souza", A, email=""),
            student("E3", "Erik", "Lind", A),  # has an e-mail: his userName is that
        ],
    )
    first = workspace.sync()

    assert first.exit_code == 0, first.stdout + first.stderr
    users = peek.users()
    generated = sorted(n for n in users if n.endswith(DOMAIN))
    assert generated == sorted([f"anna-karin.oberg-dso{DOMAIN}", f"anna-karin.oberg-ds2{DOMAIN}"])
    assert "e3@edu.example.se" in users
    assert all(len(n.removesuffix(DOMAIN)) <= 20 for n in generated)
    ids = {n: users[n]["id"] for n in generated}
    assert first.event("username.generated")["count"] == 2

    # Both renamed (one marries, one takes a second given name): their usernames stay.
    workspace.students(
        [
            student("E1", "Anna-Karin", "Berg", A, email=""),
            student("E2", "Anna-Karin Maria", "Öberg-D'Souza", A, email=""),
            student("E3", "Erik", "Lind", A),
        ]
    )
    for args in (("sync",), ("sync", "--full")):
        result = workspace.run(*args)
        assert result.exit_code == 0, result.stdout + result.stderr
        assert not [e for e in result.log_events() if e.get("event") == "username.generated"]

    after = peek.users()
    assert {n: after[n]["id"] for n in generated} == ids
    assert {after[n]["displayName"] for n in generated} == {
        "Anna-Karin Berg",
        "Anna-Karin Maria Öberg-D'Souza",
    }
    assert len(after) == 3
    assert stored_names(workspace) == sorted(generated)


def test_a_name_a_hand_made_vendor_account_holds_is_not_given(
    workspace: Workspace, peek: ScimPeek
) -> None:
    peek.create_user({"userName": f"erik.lind{DOMAIN}", "displayName": "made by hand"})
    without_email(workspace, [student("E1", "Erik", "Lind", A, email="")])

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    users = peek.users()
    assert users[f"erik.lind2{DOMAIN}"]["externalId"]
    assert users[f"erik.lind{DOMAIN}"]["displayName"] == "made by hand"  # untouched
    assert "externalId" not in users[f"erik.lind{DOMAIN}"]


def test_plan_shows_a_generated_username_but_keeps_nothing(
    workspace: Workspace, peek: ScimPeek
) -> None:
    without_email(workspace, [student("E1", "Erik", "Lind", A, email="")])
    workspace.sync()
    workspace.students(
        [student("E1", "Erik", "Lind", A, email=""), student("E2", "Erik", "Lind", A, email="")]
    )

    planned = workspace.run("plan", "--json")
    explained = {key: workspace.run("explain", key).stdout for key in ("E1", "E2")}

    assert planned.exit_code == 0, planned.stdout + planned.stderr
    assert f"erik.lind2{DOMAIN}" in planned.stdout
    assert stored_names(workspace) == [f"erik.lind{DOMAIN}"]
    assert len(peek.users()) == 1
    assert f"userName: erik.lind{DOMAIN}" in explained["E1"]
    assert "the next sync generates one" in explained["E2"]


def test_a_person_who_becomes_protected_keeps_no_generated_name_in_the_state(
    workspace: Workspace, peek: ScimPeek
) -> None:
    without_email(
        workspace,
        [student("E1", "Erik", "Lind", A, email=""), student("E2", "Anna", "Berg", A, email="")],
    )
    workspace.sync()
    assert stored_names(workspace) == [f"anna.berg{DOMAIN}", f"erik.lind{DOMAIN}"]

    workspace.students(
        [
            student("E1", "Erik", "Lind", A, email="", marking="Ja"),
            student("E2", "Anna", "Berg", A, email=""),
        ]
    )
    workspace.sync()

    assert stored_names(workspace) == [f"anna.berg{DOMAIN}"]
    assert "erik" not in workspace.state_path.read_bytes().decode("latin-1").lower()
