"""Study groups are for EGIL: a core SCIM target's plan is the same with them as without. The
roster's class column read as a groups column too gives every student a teaching group without
changing the file."""

from __future__ import annotations

from pathlib import Path

from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace


def plans(workspace: Workspace) -> tuple[str, str]:
    """`connector plan` without and with the study groups."""
    workspace.student_columns = {}
    without = workspace.run("plan")
    workspace.student_columns = {"groups": "Klass"}
    with_groups = workspace.run("plan")
    assert without.exit_code == with_groups.exit_code, with_groups.stdout + with_groups.stderr
    return without.stdout, with_groups.stdout


def test_a_scim_plan_is_unchanged_by_study_groups(
    tmp_path: Path, scim_url: str, peek: ScimPeek
) -> None:
    workspace = Workspace(tmp_path, scim_url)
    workspace.students(
        [student("E1", "Åsa", "Öberg", klass="MA7B,EN7B"), student("E2", "Bo", "Ek", klass="7A")]
    )

    before, before_with_groups = plans(workspace)
    assert "create" in before.casefold()  # a plan with something in it
    assert before_with_groups == before

    workspace.student_columns = {}
    assert workspace.sync().exit_code == 0
    synced, synced_groups = peek.users(), peek.groups()
    workspace.student_columns = {"groups": "Klass"}
    assert workspace.sync().exit_code == 0

    # The second sync, with groups, changed nothing (meta.lastModified included).
    assert peek.users() == synced and peek.groups() == synced_groups
    after, after_with_groups = plans(workspace)
    assert after_with_groups == after
