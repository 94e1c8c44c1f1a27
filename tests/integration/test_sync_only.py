"""`connector sync --only PERSON`: one person now, nobody else touched."""

from __future__ import annotations

from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A, B = "11111111", "22222222"


def roster() -> list[list[str]]:
    return [student(f"E{i}", f"Elev{i}", "Ek", A if i % 2 else B) for i in range(1, 9)]


def test_only_one_person_is_synced(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.students(roster())
    assert workspace.sync().exit_code == 0
    versions = {u["userName"]: u["meta"]["version"] for u in peek.list("Users")}

    rows = roster()
    rows[0] = student("E1", "Elev1", "Ekström", B)  # renamed and moved to B
    rows[1] = student("E2", "Elev2", "Berg", B)  # renamed too, but not asked for
    del rows[2]  # E3 left: not asked for either
    rows.append(student("E9", "Ny", "Elev", A))  # a newcomer, not asked for
    workspace.students(rows)
    result = workspace.run("sync", "--only", "E1")

    assert result.exit_code == 0, result.stdout + result.stderr
    users = peek.users()
    assert users["e1@edu.example.se"]["name"]["familyName"] == "Ekström"
    assert "e1@edu.example.se" in peek.member_names(peek.groups()[B])
    assert "e1@edu.example.se" not in peek.member_names(peek.groups()[A])
    for name, version in versions.items():
        if name != "e1@edu.example.se":
            assert users[name]["meta"]["version"] == version, f"{name} was touched"
    assert "e9@edu.example.se" not in users
    # a full cycle afterwards still does the rest
    rest = workspace.sync()
    assert rest.event("sync.finished")["applied"]["users_created"] == 1
    assert peek.users()["e3@edu.example.se"]["active"] is False


def test_only_by_email_deactivates_a_leaver_on_demand(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.students(roster())
    workspace.sync()
    workspace.students(roster()[1:])  # E1 left; E2 is still there

    result = workspace.run("sync", "--only", "E1@edu.example.se")

    assert result.exit_code == 0, result.stdout
    users = peek.users()
    assert users["e1@edu.example.se"]["active"] is False
    assert all(u["active"] for n, u in users.items() if n != "e1@edu.example.se")
