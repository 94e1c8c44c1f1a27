"""What the operator reads: plan, explain and the duplicates report, as a person reads them."""

from __future__ import annotations

from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A, B = "11111111", "22222222"


def test_plan_counts_operations_as_operations_and_members_as_members(
    workspace: Workspace,
) -> None:
    workspace.students([student(f"E{i}", f"Elev{i}", "Ek", A) for i in range(3)])

    plan = workspace.run("plan")

    assert plan.exit_code == 0, plan.stdout
    assert "5 operations: create group: 1, create user: 3, add members: 1 (3 members)" in (
        plan.stdout
    )


def test_plan_with_only_held_operations_does_not_say_nothing_to_do(workspace: Workspace) -> None:
    workspace.overrides["safety"] = {"max_deactivations": {"count": 1, "percent": 1}}
    workspace.students([student(f"E{i}", f"Elev{i}", "Ek", A) for i in range(4)])
    assert workspace.sync().exit_code == 0
    workspace.students([student("E0", "Elev0", "Ek", A)])

    plan = workspace.run("plan")

    assert plan.exit_code == 3
    assert "Nothing to do" not in plan.stdout and "already matches" not in plan.stdout
    assert "Nothing would be sent now" in plan.stdout
    assert "HELD BACK" in plan.stdout and "deactivate user: 3" in plan.stdout


def test_explain_shows_values_as_an_operator_reads_them(workspace: Workspace) -> None:
    workspace.students([student("E1", "Åsa", "Öberg", A)])

    explained = workspace.run("explain", "E1")

    assert explained.exit_code == 0, explained.stdout
    assert "emails: e1@edu.example.se (work, primary)" in explained.stdout
    assert "active: true" in explained.stdout
    assert "True" not in explained.stdout and "[{" not in explained.stdout


def test_duplicates_report_says_whose_account_is_whose(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students([student("E1", "Åsa", "Öberg", A)])
    assert workspace.sync().exit_code == 0
    peek.create_user(
        {"userName": "asa.oberg", "emails": [{"value": "e1@edu.example.se", "type": "work"}]}
    )

    report = workspace.run("report", "duplicates")

    header = report.stdout.splitlines()[1]
    assert header.split() == [
        "VENDOR",
        "ID",
        "ITS",
        "USERNAME",
        "LOOKS",
        "LIKE",
        "OURS",
        "OUR",
        "ID",
        "WHY",
    ]
    assert "NOT OWNED: ID" not in report.stdout
    assert "asa.oberg" in report.stdout and "e1@edu.example.se" in report.stdout
