"""Nothing wrongly removed: thresholds, source health, approve, --allow-deprovision."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support.ldap import add_staff, directory_source
from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

SCHOOLS = ("11111111", "22222222", "33333333")


def roster(count: int) -> list[list[str]]:
    return [student(f"E{i}", f"Elev{i}", f"Eriksson{i}", SCHOOLS[i % 3]) for i in range(count)]


def active_count(peek: ScimPeek) -> int:
    return sum(1 for u in peek.list("Users") if u.get("active"))


def guarded_workspace(tmp_path: Path, scim_url: str) -> Workspace:
    workspace = Workspace(tmp_path, scim_url)
    workspace.overrides["safety"] = {}  # the defaults, as in production
    workspace.overrides["vendor"] = {**workspace.config()["vendor"], "concurrency": 8}
    return workspace


def test_roster_shrinking_from_1000_to_10_is_held_until_approved(
    tmp_path: Path, scim_url: str, peek: ScimPeek
) -> None:
    workspace = guarded_workspace(tmp_path, scim_url)
    workspace.students(roster(1000))
    assert workspace.sync().exit_code == 0
    assert active_count(peek) == 1000

    workspace.students(roster(10))
    held = workspace.sync()

    assert held.exit_code == 3
    assert active_count(peek) == 1000
    reasons = [e["reason"] for e in held.log_events() if e["event"] == "guard.held"]
    assert any("students returned 10 persons, 1000 at the last good read" in r for r in reasons)
    assert held.event("sync.finished")["held_back"]["deactivate_user"] == 990
    status = workspace.run("status")
    assert "Held back in the last run" in status.stdout and "deactivate user: 990" in status.stdout

    approved = workspace.run("approve", "--yes")

    assert approved.exit_code == 0, approved.stdout
    assert "deactivate user: 990" in approved.stdout
    assert active_count(peek) == 10
    assert workspace.sync().event("sync.finished")["held_back"] == {}
    assert "Nothing is held back." in workspace.run("approve", "--yes").stdout


def test_empty_roster_file_deactivates_nobody(
    tmp_path: Path, scim_url: str, peek: ScimPeek
) -> None:
    workspace = guarded_workspace(tmp_path, scim_url)
    workspace.students(roster(30))
    workspace.sync()

    workspace.students([])
    result = workspace.sync()

    assert result.exit_code == 1
    assert result.event("source.failed")["reason"] == "returned no persons"
    assert "guard.held" in {e["event"] for e in result.log_events()}
    assert active_count(peek) == 30

    approved = workspace.run("approve", "--yes")
    assert approved.exit_code == 1  # the source is still empty: a failed source, but approved
    assert active_count(peek) == 0


def test_unreachable_directory_deactivates_nobody_until_approved(
    tmp_path: Path, scim_url: str, peek: ScimPeek, slapd_factory: Any
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    add_staff(slapd, 5)
    workspace = guarded_workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd)]
    assert workspace.sync().exit_code == 0

    slapd.stop()
    result = workspace.sync()

    assert result.exit_code == 1
    assert result.event("source.failed")["source"] == "directory"
    assert active_count(peek) == 5
    approved = workspace.run("approve", "--yes")
    assert active_count(peek) == 0, approved.stdout


def test_threshold_trips_and_allow_deprovision_releases_one_run(
    tmp_path: Path, scim_url: str, peek: ScimPeek
) -> None:
    workspace = guarded_workspace(tmp_path, scim_url)
    workspace.overrides["safety"] = {"min_source_percent": 0}  # only the thresholds
    workspace.students(roster(200))
    workspace.sync()

    workspace.students(roster(140))  # 60 leave: more than 50, and 30% of 200
    held = workspace.sync()

    assert held.exit_code == 3
    guard = held.event("guard.held")
    assert guard["deactivate_user"] == 60 and guard["remove_members"] == 60
    assert guard["reason"].startswith(
        "threshold: 60 deactivations (more than 50, and 30.0% of 200 users is more than 5%)"
    )
    assert active_count(peek) == 200

    released = workspace.run("sync", "--allow-deprovision")
    assert released.exit_code == 0
    assert active_count(peek) == 140

    workspace.students(roster(70))  # the next big drop is guarded again
    assert workspace.sync().exit_code == 3
    assert active_count(peek) == 140


def test_small_changes_pass_the_thresholds(tmp_path: Path, scim_url: str, peek: ScimPeek) -> None:
    workspace = guarded_workspace(tmp_path, scim_url)
    workspace.students(roster(100))
    workspace.sync()

    workspace.students(roster(95))  # 5 leave: under the count of 50

    assert workspace.sync().exit_code == 0
    assert active_count(peek) == 95


def test_approve_releases_only_what_was_held(tmp_path: Path, scim_url: str, peek: ScimPeek) -> None:
    workspace = guarded_workspace(tmp_path, scim_url)
    workspace.overrides["safety"] = {"min_source_percent": 0}
    workspace.students(roster(200))
    workspace.sync()
    workspace.students(roster(140))
    assert workspace.sync().exit_code == 3

    workspace.students(roster(60))  # meanwhile 80 more would leave: not approved by anyone
    approved = workspace.run("approve", "--yes")

    assert approved.exit_code == 3
    assert active_count(peek) == 140
    assert approved.event("guard.held")["deactivate_user"] == 80


def test_a_group_rule_that_matches_nobody_holds_the_removals_it_would_cause(
    tmp_path: Path, scim_url: str, peek: ScimPeek, slapd_factory: Any
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    a_staff = [  # placed only by their group
        slapd.add_person(f"a{i}", f"Anna{i}", "Ahl", mail=f"a{i}@edu.example.se") for i in range(3)
    ]
    b_staff = [slapd.add_person("bea", "Bea", "Berg", mail="bea@edu.example.se")]
    group_a = slapd.add_group("personal-a", a_staff)
    group_b = slapd.add_group("personal-b", b_staff)
    rules = [
        {"group": group_a, "school_unit_code": SCHOOLS[0], "role": "Lärare"},
        {"group": group_b, "school_unit_code": SCHOOLS[1], "role": "Lärare"},
    ]
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd, group_rules=rules)]
    assert workspace.sync().exit_code == 0
    before = peek.member_names(peek.groups()[SCHOOLS[0]])
    assert len(before) == 3

    for change in ("emptied", "renamed"):
        if change == "emptied":  # groupOfNames needs a member: one outside the base DNs
            slapd.modify(group_a, {"member": [slapd.service_dn]})
        else:
            slapd.delete(group_a)
            slapd.add_group("personal-a-2025", a_staff)

        result = workspace.sync()

        assert result.exit_code == 3, (change, result.stdout, result.stderr)
        users = peek.users()
        assert all(u["active"] for u in users.values()), change
        assert peek.member_names(peek.groups()[SCHOOLS[0]]) == before, change
        warnings = [e for e in result.log_events() if e["event"] == "source.rule_matched_nobody"]
        assert len(warnings) == 1, (change, warnings)  # only the rule that broke
        assert warnings[0]["group"] == group_a
        assert warnings[0]["school_unit_code"] == SCHOOLS[0]
        assert warnings[0]["source"] == "directory"
        assert not any("@" in str(value) for value in warnings[0].values())
        assert group_a in result.event("source.unhealthy")["reason"]
        held = result.event("sync.finished")["held_back"]
        assert held.get("deactivate_user") == 3 or held.get("remove_members") == 3, held
        if change == "emptied":
            slapd.modify(group_a, {"member": a_staff})
            assert workspace.sync().exit_code == 0
