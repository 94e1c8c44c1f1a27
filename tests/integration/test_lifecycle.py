"""The account lifecycle over several cycles, against a real SCIM server over HTTP."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from connector.config import StateConfig
from connector.demo.localscim import LocalScimServer
from tests.fakes.postgres import PASSWORD as PG_PASSWORD
from tests.support.rosters import staff, student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.statedb import state_contents, state_execute
from tests.support.workspace import Workspace

A, B, C = "11111111", "22222222", "33333333"


@pytest.fixture(autouse=True, params=["sqlite", "postgresql"])
def state_backend(request: pytest.FixtureRequest, workspace: Workspace) -> str:
    """Every lifecycle test runs with the state in a SQLite file and in PostgreSQL."""
    if request.param == "postgresql":
        state: StateConfig = request.getfixturevalue("postgres_state")
        workspace.use_postgres(str(state.url), PG_PASSWORD)
    return str(request.param)


def roster(*extra: list[str]) -> list[list[str]]:
    return [
        student("E1", "Åsa", "Öberg", A, school_name="Ekeby skola"),
        student("E2", "Erik", "Lind", A, school_name="Ekeby skola"),
        student("E3", "Märta", "Ström", B, school_name="Björkängsgymnasiet", school_type="GY"),
        *extra,
    ]


def test_transfer_keeps_the_account_and_moves_the_membership(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(roster())
    workspace.sync()
    before = peek.users()["e1@edu.example.se"]
    peek.set_vendor_attribute(before["id"], title="Talboksrätt")

    workspace.students(
        [
            student("E1", "Åsa", "Öberg", B, school_name="Björkängsgymnasiet", school_type="GY"),
            *roster()[1:],
        ]
    )
    result = workspace.sync()

    assert result.exit_code == 0
    after = peek.users()["e1@edu.example.se"]
    assert after["id"] == before["id"]
    assert after["title"] == "Talboksrätt"
    groups = peek.groups()
    assert "e1@edu.example.se" not in peek.member_names(groups[A])
    assert "e1@edu.example.se" in peek.member_names(groups[B])
    assert result.event("sync.finished")["requests"].get("DELETE") is None
    assert result.event("sync.finished")["requests"].get("POST") is None


def test_staff_at_two_schools_losing_one_placement_keeps_the_other(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(roster())
    workspace.staff(
        [
            staff("P1", "Karin", "Sjöberg", A),
            staff("P1", "Karin", "Sjöberg", B, "Speciallärare/specialpedagog"),
        ]
    )
    workspace.sync()
    groups = peek.groups()
    assert "p1@edu.example.se" in peek.member_names(groups[A])
    assert "p1@edu.example.se" in peek.member_names(groups[B])
    account = peek.users()["p1@edu.example.se"]["id"]

    workspace.staff([staff("P1", "Karin", "Sjöberg", B, "Speciallärare/specialpedagog")])
    workspace.sync()

    groups = peek.groups()
    assert "p1@edu.example.se" not in peek.member_names(groups[A])
    assert "p1@edu.example.se" in peek.member_names(groups[B])
    assert peek.users()["p1@edu.example.se"]["id"] == account
    assert peek.users()["p1@edu.example.se"]["active"] is True


def test_rename_and_username_change_patch_the_same_account(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(roster())
    workspace.sync()
    account = peek.users()["e2@edu.example.se"]["id"]

    renamed = roster()
    renamed[1] = student(
        "E2", "Erika", "Lindahl", A, school_name="Ekeby skola", email="erika.lindahl@edu.example.se"
    )
    workspace.students(renamed)
    result = workspace.sync()

    assert result.exit_code == 0
    users = peek.users()
    assert "e2@edu.example.se" not in users
    user = users["erika.lindahl@edu.example.se"]
    assert user["id"] == account
    assert user["name"]["formatted"] == "Lindahl, Erika"
    assert user["emails"][0]["value"] == "erika.lindahl@edu.example.se"
    assert len(users) == 3


def _age_deactivation(workspace: Workspace, days: int) -> None:
    when = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")
    state_execute(
        workspace, "UPDATE users SET deactivated_at = ? WHERE deactivated_at IS NOT NULL", (when,)
    )


def test_leaver_is_deactivated_then_deleted_after_the_grace_period(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(roster())
    workspace.sync()
    leaver = peek.users()["e2@edu.example.se"]["id"]

    workspace.students([r for r in roster() if r[0] != "E2"])
    workspace.sync()
    user = peek.users()["e2@edu.example.se"]
    assert user["id"] == leaver and user["active"] is False
    assert "e2@edu.example.se" not in peek.member_names(peek.groups()[A])

    _age_deactivation(workspace, days=89)
    workspace.sync()
    assert "e2@edu.example.se" in peek.users()  # still inside the 90-day grace period

    _age_deactivation(workspace, days=91)  # the simulated clock moves on
    result = workspace.sync()
    assert result.exit_code == 0
    assert "e2@edu.example.se" not in peek.users()
    assert result.event("sync.finished")["applied"]["users_deleted"] == 1


def test_returner_within_the_grace_period_gets_the_same_account_back(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(roster())
    workspace.sync()
    account = peek.users()["e2@edu.example.se"]["id"]
    workspace.students([r for r in roster() if r[0] != "E2"])
    workspace.sync()
    _age_deactivation(workspace, days=30)

    workspace.students(roster())
    workspace.sync()

    user = peek.users()["e2@edu.example.se"]
    assert user["id"] == account and user["active"] is True
    assert "e2@edu.example.se" in peek.member_names(peek.groups()[A])
    assert len(peek.list("Users")) == 3


def test_deletion_can_be_switched_off(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.overrides["lifecycle"] = {"delete_accounts": False}
    workspace.students(roster())
    workspace.sync()
    workspace.students([r for r in roster() if r[0] != "E2"])
    workspace.sync()
    _age_deactivation(workspace, days=400)

    workspace.sync()

    assert peek.users()["e2@edu.example.se"]["active"] is False


PROTECTED_SECRETS = ("Erik", "Lind", "e2@edu.example.se", "E2;")


def _assert_nothing_identifying(workspace: Workspace, *outputs: str) -> None:
    state = state_contents(workspace)
    for secret in ("Erik", "Lind", "e2@edu.example.se"):
        assert secret.encode() not in state, f"{secret} is in the state file"
        for output in outputs:
            assert secret not in output
    rows = [str(r) for r in state_execute(workspace, "SELECT * FROM users")] + [
        str(r) for r in state_execute(workspace, "SELECT * FROM runs")
    ]
    assert not any("E2" in r.split("'")[1::2] for r in rows)  # the source key is no value anywhere


def test_becoming_protected_deletes_the_account_by_default(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(roster())
    workspace.sync()
    assert "e2@edu.example.se" in peek.users()

    marked = roster()
    marked[1] = student("E2", "Erik", "Lind", A, school_name="Ekeby skola", marking="Ja")
    workspace.students(marked)
    result = workspace.sync()

    assert result.exit_code == 0
    assert "e2@edu.example.se" not in peek.users()
    assert len(peek.member_names(peek.groups()[A])) == 1
    applied = [
        e
        for e in result.log_events()
        if e["event"] == "change.applied" and e.get("reason") == "protected"
    ]
    assert [e["op"] for e in applied] == ["remove_members", "delete_user"]
    _assert_nothing_identifying(workspace, result.stderr, result.stdout)


def test_becoming_protected_with_deactivate_policy_leaves_an_inactive_account_in_no_group(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.overrides["lifecycle"] = {"protected_policy": "deactivate"}
    workspace.students(roster())
    workspace.sync()
    account = peek.users()["e2@edu.example.se"]["id"]

    marked = roster()
    marked[1] = student(
        "E2", "Erik", "Lind", A, school_name="Ekeby skola", marking=""
    )  # unreadable = protected
    workspace.students(marked)
    result = workspace.sync()
    again = workspace.sync()

    user = next(u for u in peek.list("Users") if u["id"] == account)
    assert user["active"] is False
    assert all(
        account not in {m["value"] for m in g.get("members") or []} for g in peek.list("Groups")
    )
    applied = [
        e
        for e in result.log_events()
        if e["event"] == "change.applied" and e.get("reason") == "protected"
    ]
    assert {e["op"] for e in applied} == {"remove_members", "deactivate_user"}
    assert again.event("sync.finished")["planned"] == {}
    _assert_nothing_identifying(workspace, result.stderr, result.stdout, again.stderr)


def test_hand_made_account_is_never_touched_and_is_reported_as_a_duplicate(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(roster())
    workspace.staff([staff("P1", "Karin", "Sjöberg", A)])
    workspace.sync()
    # A local administrator made a second account by hand and put it in the school's group.
    hand = peek.create_user(
        {
            "userName": "karsjo01",
            "name": {"givenName": "Karin", "familyName": "Sjöberg"},
            "active": True,
        }
    )
    group = peek.groups()[A]
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "add", "path": "members", "value": [{"value": hand["id"]}]}],
    }
    peek._http.patch(
        f"Groups/{group['id']}", json=body, headers={"Content-Type": "application/scim+json"}
    ).raise_for_status()
    hand_before = peek._http.get(f"Users/{hand['id']}").json()

    workspace.staff([staff("P2", "Olle", "Ek", B)])  # P1 leaves; their owned account is deactivated
    workspace.run("sync", "--full")
    workspace.run("sync", "--full")
    report = workspace.run("report", "duplicates")

    hand_after = peek._http.get(f"Users/{hand['id']}").json()
    assert hand_after == hand_before
    assert hand["id"] in {m["value"] for m in peek.groups()[A]["members"]}
    assert peek.users()["p1@edu.example.se"]["active"] is False
    assert report.exit_code == 0

    workspace.staff([staff("P1", "Karin", "Sjöberg", A)])
    report = workspace.run("report", "duplicates")
    assert hand["id"] in report.stdout and "karsjo01" in report.stdout
    assert "p1@edu.example.se" in report.stdout and f"same name at school {A}" in report.stdout


def test_ambiguous_link_changes_nothing_and_is_reported(
    workspace: Workspace, peek: ScimPeek
) -> None:
    first = peek.create_user({"userName": "e1@edu.example.se"})
    second = peek.create_user({"userName": "asa-annan", "emails": [{"value": "e1@edu.example.se"}]})
    workspace.students(roster())

    result = workspace.sync()

    assert result.exit_code == 1
    conflicts = [e for e in result.log_events() if e["event"] == "apply.conflict"]
    assert len(conflicts) == 1 and "2 different vendor accounts" in conflicts[0]["error"]
    by_id = {u["id"]: u for u in peek.list("Users")}
    assert "externalId" not in by_id[first["id"]] and "externalId" not in by_id[second["id"]]
    assert len(by_id) == 4  # the two untouched ones and the two other students


def test_full_reconcile_repairs_drift(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.students(roster())
    workspace.sync()
    users = peek.users()
    peek.set_vendor_attribute(users["e1@edu.example.se"]["id"], **{"name.familyName": "Handändrad"})
    peek._http.delete(f"Users/{users['e2@edu.example.se']['id']}").raise_for_status()
    group = peek.groups()[B]
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "remove", "path": f'members[value eq "{users["e3@edu.example.se"]["id"]}"]'}
        ],
    }
    peek._http.patch(
        f"Groups/{group['id']}", json=body, headers={"Content-Type": "application/scim+json"}
    ).raise_for_status()

    quiet = workspace.sync()  # an ordinary cycle trusts the state file
    assert quiet.event("sync.finished")["planned"] == {}
    result = workspace.run("sync", "--full")

    assert result.exit_code == 0, result.stdout
    users = peek.users()
    assert users["e1@edu.example.se"]["name"]["familyName"] == "Öberg"
    assert users["e2@edu.example.se"]["active"] is True
    assert "e2@edu.example.se" in peek.member_names(peek.groups()[A])
    assert "e3@edu.example.se" in peek.member_names(peek.groups()[B])
    assert len(users) == 3
    assert workspace.run("sync", "--full").event("sync.finished")["planned"] == {}


def test_schools_new_renamed_and_emptied(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.students(roster())
    workspace.sync()
    group_a = peek.groups()[A]["id"]

    workspace.students(
        [
            student("E1", "Åsa", "Öberg", A, school_name="Ekebyskolan"),
            student("E2", "Erik", "Lind", C, school_name="Nya skolan"),
        ]
    )
    workspace.sync()

    groups = peek.groups()
    assert groups[A]["id"] == group_a and groups[A]["displayName"] == "Ekebyskolan"
    assert groups[C]["displayName"] == "Nya skolan"
    assert peek.member_names(groups[C]) == {"e2@edu.example.se"}
    assert B in groups and not groups[B].get("members")  # kept, emptied


def test_rollover_window_holds_back_deactivation_until_it_ends(
    workspace: Workspace, peek: ScimPeek
) -> None:
    today = datetime.now(ZoneInfo("Europe/Stockholm")).date()
    workspace.overrides["lifecycle"] = {
        "rollover_hold": {"start": today.strftime("%m-%d"), "end": today.strftime("%m-%d")}
    }
    workspace.students(roster())
    workspace.sync()
    workspace.students([r for r in roster() if r[0] != "E2"])

    inside = workspace.sync()

    assert inside.exit_code == 3
    assert peek.users()["e2@edu.example.se"]["active"] is True
    assert inside.event("guard.held")["reason"].startswith("school-year rollover window")

    start, end = today - timedelta(days=10), today - timedelta(days=1)
    workspace.overrides["lifecycle"] = {
        "rollover_hold": {"start": start.strftime("%m-%d"), "end": end.strftime("%m-%d")}
    }
    after = workspace.sync()

    assert after.exit_code == 0
    assert peek.users()["e2@edu.example.se"]["active"] is False


def test_server_without_patch_gets_updates_that_keep_other_attributes(
    tmp_path: Path, no_patch_scim_server: LocalScimServer
) -> None:
    url = no_patch_scim_server.tenant_url("t" + uuid.uuid4().hex[:12])
    workspace = Workspace(tmp_path, url)
    workspace.students(roster())
    workspace.sync()
    with ScimPeek(url) as peek:
        account = peek.users()["e1@edu.example.se"]
        # set by the vendor, by PUT since the server says it has no PATCH
        account_put = {k: v for k, v in account.items() if k != "meta"} | {
            "title": "Talboksrätt",
            "nickName": "Åsis",
        }
        peek._http.put(
            f"Users/{account['id']}",
            json=account_put,
            headers={"Content-Type": "application/scim+json"},
        ).raise_for_status()

        workspace.students(
            [
                student(
                    "E1", "Åsa", "Öberg-Berg", B, school_name="Björkängsgymnasiet", school_type="GY"
                ),
                *roster()[1:],
            ]
        )
        result = workspace.sync()

        assert result.exit_code == 0, result.stdout
        assert "PATCH" not in result.event("sync.finished")["requests"]
        after = peek.users()["e1@edu.example.se"]
        assert after["id"] == account["id"]
        assert after["name"]["familyName"] == "Öberg-Berg"
        assert after["title"] == "Talboksrätt" and after["nickName"] == "Åsis"
        groups = peek.groups()
        assert "e1@edu.example.se" in peek.member_names(groups[B])
        assert "e1@edu.example.se" not in peek.member_names(groups[A])
        assert "e2@edu.example.se" in peek.member_names(groups[A])


def test_explain_tells_why_and_as_what(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.overrides["scope"] = {"school_types": ["GR"]}
    workspace.students(
        roster(
            student("E9", "Hemlig", "Person", A, marking="Ja", email="hemlig.person@edu.example.se")
        )
    )
    workspace.sync()
    account = peek.users()["e1@edu.example.se"]["id"]

    in_scope = workspace.run("explain", "E1@edu.example.se")
    out_of_scope = workspace.run("explain", "E3")
    protected = workspace.run("explain", "hemlig.person@edu.example.se")
    unknown = workspace.run("explain", "nobody")

    assert in_scope.exit_code == 0
    assert "in scope: yes" in in_scope.stdout
    assert "userName: e1@edu.example.se" in in_scope.stdout
    assert "name.formatted: Öberg, Åsa" in in_scope.stdout
    assert f"- {A} Ekeby skola" in in_scope.stdout
    assert f"vendor: id {account} (created by the connector, active)" in in_scope.stdout
    assert "excluded: no placement in a school in scope" in out_of_scope.stdout
    assert "excluded (protected identity)" in protected.stdout
    for secret in ("Hemlig", "Person", "E9", A):
        assert secret not in protected.stdout
    assert unknown.exit_code == 1


def test_plan_full_shows_drift_without_changing_anything(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(roster())
    workspace.sync()
    peek.set_vendor_attribute(peek.users()["e1@edu.example.se"]["id"], **{"name.givenName": "Hand"})
    version = peek.users()["e1@edu.example.se"]["meta"]["version"]

    result = workspace.run("plan", "--full")

    assert "name.givenName=Åsa" in result.stdout
    assert peek.users()["e1@edu.example.se"]["meta"]["version"] == version
    assert (
        httpx.get(
            f"{workspace.scim_url}/Users", headers={"Authorization": f"Bearer {SCIM_TOKEN}"}
        ).status_code
        == 200
    )
