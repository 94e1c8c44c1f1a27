"""Creates an interrupted run sent but never recorded are resolved by lookup, never duplicated."""

from __future__ import annotations

import sqlite3

from connector.state.store import StateStore
from tests.support.ids import opaque_id
from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A = "11111111"


def test_interrupted_creates_are_linked_not_duplicated_or_orphaned(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students([student("E1", "Åsa", "Öberg", A), student("E2", "Erik", "Lind", A)])
    assert workspace.sync().exit_code == 0
    # A run was killed after sending two creates and before recording them: E3 is still in
    # the roster, E4 has left it since.
    for key, name in (("E3", "Märta"), ("E4", "Gone")):
        peek.create_user(
            {
                "userName": f"{key.lower()}@edu.example.se",
                "externalId": opaque_id(key),
                "name": {"givenName": name, "familyName": "X"},
                "active": True,
            }
        )
    state = StateStore.open(workspace.state_path)
    state.target("default").record_intents("user", [opaque_id("E3"), opaque_id("E4")])
    state.close()

    workspace.students(
        [
            student("E1", "Åsa", "Öberg", A),
            student("E2", "Erik", "Lind", A),
            student("E3", "Märta", "Ström", A),
        ]
    )
    result = workspace.sync()

    assert result.exit_code == 0, result.stdout
    users = peek.list("Users")
    assert sorted(u["userName"] for u in users) == [f"e{i}@edu.example.se" for i in range(1, 5)]
    by_name = {u["userName"]: u for u in users}
    assert (
        by_name["e3@edu.example.se"]["name"]["familyName"] == "Ström"
    )  # linked and brought in line
    assert by_name["e4@edu.example.se"]["active"] is False  # linked, then deprovisioned as a leaver
    assert result.event("reconcile.interrupted_creates")["linked"] == 1
    with sqlite3.connect(workspace.state_path) as db:
        assert db.execute("SELECT count(*) FROM intents").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 4
