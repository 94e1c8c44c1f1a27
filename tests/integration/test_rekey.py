"""Re-keying against a real SCIM server: a student whose source key changes (a move from one
student information system to another, a new student id) keeps the account - its vendor id,
its memberships, what was set on it at the vendor (a talking-book right) - under
`lifecycle.rekey: ask` once approved, under `auto` at once; never for a protected person, never
when the names match more than one way. And with a roster ⋈ roster join on a shared key the
joined identity does not change at all."""

from __future__ import annotations

import csv
import io
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import yaml

from connector.demo.localscim import LocalScimServer
from tests.support.ids import opaque_id
from tests.support.paths import DEFAULT_MAPPING, ILT_FILE_MAPPING
from tests.support.rosters import STUDENT_HEADER, student, write_csv
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A, B = "11111111", "22222222"
ASA = "e1@edu.example.se"


def roster(*rows: list[str]) -> list[list[str]]:
    return [*rows, student("E2", "Erik", "Lind", A, school_name="Ekeby skola")]


def first_cycle(workspace: Workspace, peek: ScimPeek) -> dict[str, Any]:
    """E1 and E2 at school A; E1's account gets a talking-book right at the vendor."""
    workspace.students(roster(student("E1", "Åsa", "Öberg", A, school_name="Ekeby skola")))
    assert workspace.sync().exit_code == 0
    account = peek.users()[ASA]
    peek.set_vendor_attribute(account["id"], title="Talboksrätt")
    assert account["externalId"] == opaque_id("E1")
    return account


def move_to_e9(workspace: Workspace, school: str = A, marking: str = "Nej") -> None:
    """E1 is gone; the same student is E9 now (same e-mail), at `school`."""
    workspace.students(
        roster(student("E9", "Åsa", "Öberg", school, marking=marking, email=ASA, klass="8A"))
    )


def state_links(state: Path) -> dict[str, str]:
    with sqlite3.connect(state) as db:
        return dict(db.execute("SELECT external_id, vendor_id FROM users"))


def state_members(state: Path, user: str) -> set[str]:
    with sqlite3.connect(state) as db:
        rows = db.execute(
            "SELECT group_external_id FROM memberships WHERE user_external_id = ?", (user,)
        )
        return {row[0] for row in rows}


def test_ask_holds_the_key_change_and_approve_moves_the_account(
    workspace: Workspace, peek: ScimPeek
) -> None:
    account = first_cycle(workspace, peek)
    move_to_e9(workspace)

    held = workspace.sync()

    assert held.exit_code == 3, held.stdout
    assert "HELD BACK" in held.stdout and "lifecycle.rekey: ask" in held.stdout
    found = held.event("rekey.found")
    assert (found["ref"], found["previous"]) == (opaque_id("E9")[:12], opaque_id("E1")[:12])
    assert found["why"] == "emails.value, userName"
    # Meanwhile neither the old account's deactivation nor the new person's create is sent.
    unchanged = peek.users()[ASA]
    assert unchanged["active"] is True and unchanged["externalId"] == opaque_id("E1")
    assert len(peek.users()) == 2
    assert held.event("sync.finished")["requests"].get("POST") is None
    report = workspace.run("report", "rekeys")
    assert opaque_id("E1")[:12] in report.stdout and opaque_id("E9")[:12] in report.stdout
    assert "Åsa" not in report.stdout and ASA not in report.stdout

    approved = workspace.run("approve", "--yes")

    assert approved.exit_code == 0, approved.stdout + approved.stderr
    assert "re-key user" in approved.stdout
    after = peek.users()[ASA]
    assert after["id"] == account["id"]
    assert after["externalId"] == opaque_id("E9")
    assert after["active"] is True and after["title"] == "Talboksrätt"
    assert {m["value"] for m in peek.groups()[A]["members"]} >= {account["id"]}
    assert len(peek.users()) == 2
    assert state_links(workspace.state_path).get(opaque_id("E9")) == account["id"]
    assert opaque_id("E1") not in state_links(workspace.state_path)
    assert state_members(workspace.state_path, opaque_id("E9")) == {A}
    # Released once, and settled: the next cycle has nothing to do.
    again = workspace.sync()
    assert again.exit_code == 0, again.stdout
    assert again.event("sync.finished")["requests"] == {}


def test_a_key_change_after_the_old_account_was_deactivated_is_adopted_too(
    workspace: Workspace, peek: ScimPeek
) -> None:
    account = first_cycle(workspace, peek)
    workspace.students(roster())
    assert workspace.sync().exit_code == 0
    assert peek.users()[ASA]["active"] is False
    workspace.overrides["lifecycle"] = {"rekey": "auto"}
    move_to_e9(workspace)

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout
    after = peek.users()[ASA]
    assert (after["id"], after["active"], after["externalId"]) == (
        account["id"],
        True,
        opaque_id("E9"),
    )
    assert peek.member_names(peek.groups()[A]) == {ASA, "e2@edu.example.se"}


def test_auto_moves_the_account_at_once_with_a_school_move(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.overrides["lifecycle"] = {"rekey": "auto"}
    account = first_cycle(workspace, peek)
    move_to_e9(workspace, school=B)

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.event("rekey.found")["policy"] == "auto"
    applied = [e for e in result.log_events() if e["event"] == "change.applied"]
    assert {"op": "rekey_user", "result": "rekeyed", "previous": opaque_id("E1")[:12]}.items() <= (
        next(e for e in applied if e["op"] == "rekey_user").items()
    )
    after = peek.users()[ASA]
    assert after["id"] == account["id"] and after["externalId"] == opaque_id("E9")
    assert after["title"] == "Talboksrätt"
    groups = peek.groups()
    assert account["id"] in {m["value"] for m in groups[B]["members"]}
    assert account["id"] not in {m["value"] for m in groups[A].get("members") or []}
    assert state_members(workspace.state_path, opaque_id("E9")) == {B}
    assert "users re-keyed       1" in result.stdout


def test_a_vendor_without_patch_gets_the_rekey_by_read_modify_replace(
    tmp_path: Path, no_patch_scim_server: LocalScimServer
) -> None:
    url = no_patch_scim_server.tenant_url("t" + uuid.uuid4().hex[:12])
    workspace = Workspace(tmp_path, url)
    workspace.overrides["lifecycle"] = {"rekey": "auto"}
    with ScimPeek(url) as peek:
        workspace.students(roster(student("E1", "Åsa", "Öberg", A)))
        assert workspace.sync().exit_code == 0
        account = peek.users()[ASA]
        move_to_e9(workspace, school=B)

        result = workspace.sync()

        assert result.exit_code == 0, result.stdout + result.stderr
        assert result.event("sync.finished")["requests"].get("PATCH") is None
        after = peek.users()[ASA]
        assert (after["id"], after["externalId"]) == (account["id"], opaque_id("E9"))
        assert after["name"] == account["name"]  # everything else put back as it was
        assert account["id"] in {m["value"] for m in peek.groups()[B]["members"]}


def test_never_keeps_todays_behaviour(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.overrides["lifecycle"] = {"rekey": "never"}
    account = first_cycle(workspace, peek)
    move_to_e9(workspace)

    result = workspace.sync()

    assert result.exit_code == 1  # the vendor account still belongs to E1's key
    assert not [e for e in result.log_events() if e["event"].startswith("rekey.")]
    assert peek.users()[ASA]["id"] == account["id"]
    assert peek.users()[ASA]["active"] is False


def test_a_new_person_marked_protected_adopts_nothing_and_the_old_account_comes_off(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.overrides["lifecycle"] = {"rekey": "auto"}
    first_cycle(workspace, peek)
    move_to_e9(workspace, school=B, marking="Ja")

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout
    assert result.event("rekey.refused_protected")["accounts"] == 1
    assert not [e for e in result.log_events() if e["event"] == "rekey.found"]
    # Taken off as a protected person's account is: the one the connector created, deleted.
    assert set(peek.users()) == {"e2@edu.example.se"}
    assert ASA not in peek.member_names(peek.groups()[A])
    assert B not in peek.groups()  # nothing about the new school was ever sent
    assert set(state_links(workspace.state_path)) == {opaque_id("E2")}
    assert "Öberg" not in workspace.state_path.read_bytes().decode("utf-8", "replace")


def ambiguous_mapping(folder: Path) -> Path:
    """userName from the names, the e-mail as is: two gone accounts can each match one."""
    mapping = yaml.safe_load(DEFAULT_MAPPING.read_text(encoding="utf-8"))
    mapping["user"]["attributes"]["userName"] = (
        "{given_name|username}.{family_name|username}@edu.example.se"
    )
    path = folder / "mapping.yaml"
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return path


def test_names_matching_two_gone_accounts_adopt_nothing_and_are_reported(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.overrides["mapping"] = str(ambiguous_mapping(workspace.root))
    workspace.overrides["lifecycle"] = {"rekey": "auto"}
    workspace.students(
        [
            student("E1", "Åsa", "Öberg", A),
            student("E2", "Erik", "Lind", A),
            student("E3", "Märta", "Ström", A),
        ]
    )
    assert workspace.sync().exit_code == 0
    before = {u["externalId"]: u["id"] for u in peek.users().values()}
    # E1 and E2 are gone; E9 has E1's names and E2's e-mail address.
    workspace.students(
        [
            student("E3", "Märta", "Ström", A),
            student("E9", "Åsa", "Öberg", A, email="e2@edu.example.se"),
        ]
    )

    result = workspace.sync()

    ambiguous = result.event("rekey.ambiguous")
    assert ambiguous["refs"] == [opaque_id("E9")[:12]]
    assert sorted(ambiguous["previous"]) == sorted([opaque_id("E1")[:12], opaque_id("E2")[:12]])
    assert not [e for e in result.log_events() if e["event"] == "rekey.found"]
    after = {u["externalId"]: u["id"] for u in peek.users().values()}
    assert opaque_id("E9") not in after
    assert {after[opaque_id(k)] for k in ("E1", "E2")} == {
        before[opaque_id(k)] for k in ("E1", "E2")
    }
    report = workspace.run("report", "rekeys")
    assert "Ambiguous" in report.stdout and opaque_id("E9")[:12] in report.stdout


# --- a roster ⋈ roster join: two SIS exports on a shared key ----------------------------------

JOINED_HEADER = [*STUDENT_HEADER, "Personnummer"]


def sis_source(name: str, path: Path) -> dict[str, Any]:
    return {
        "name": name,
        "type": "csv",
        "kind": "student",
        "path": str(path),
        "columns": {
            "key": "Elev-ID",
            "given_name": "Förnamn",
            "family_name": "Efternamn",
            "email": "E-post",
            "school_unit_code": "Skolenhetskod",
            "school_name": "Skola",
            "school_type": "Skolform",
            "join_key": "Personnummer",
        },
        "protected_identity": {"column": "Skyddad", "not_protected_values": ["Nej"]},
    }


def test_a_student_moving_between_joined_exports_keeps_the_account_unchanged(
    workspace: Workspace, peek: ScimPeek
) -> None:
    procapita, adela = workspace.root / "procapita.csv", workspace.root / "adela.csv"
    workspace.extra_sources = [sis_source("procapita", procapita), sis_source("adela", adela)]
    workspace.overrides["join"] = {
        "sources": ["procapita", "adela"],
        "unmatched": {"procapita": "use", "adela": "use"},
    }
    asa = [*student("P-100", "Åsa", "Öberg", A, email=ASA), "20100101-1234"]
    erik = [*student("P-200", "Erik", "Lind", A), "20100202-2345"]
    noa = [*student("A-300", "Noa", "Berg", B), "20100303-3456"]
    write_csv(procapita, JOINED_HEADER, [asa, erik])
    write_csv(adela, JOINED_HEADER, [noa])
    assert workspace.sync().exit_code == 0
    account = peek.users()[ASA]
    peek.set_vendor_attribute(account["id"], title="Talboksrätt")

    # Åsa moves to Adela: a new local key there, the same personnummer, a new school.
    moved = [*student("A-777", "Åsa", "Öberg", B, email=ASA), "20100101-1234"]
    write_csv(procapita, JOINED_HEADER, [erik])
    write_csv(adela, JOINED_HEADER, [noa, moved])
    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    after = peek.users()[ASA]
    assert after["id"] == account["id"] and after["active"] is True
    assert after["externalId"] == account["externalId"] == opaque_id("join:20100101-1234")
    assert after["title"] == "Talboksrätt"
    groups = peek.groups()
    assert account["id"] in {m["value"] for m in groups[B]["members"]}
    assert account["id"] not in {m["value"] for m in groups[A].get("members") or []}
    # No re-key was needed: the joined identity never changed.
    assert not [e for e in result.log_events() if e["event"].startswith("rekey.")]
    applied = result.event("sync.finished")["applied"]
    assert "users_deactivated" not in applied and "users_created" not in applied
    for user in peek.users().values():
        assert "20100101" not in str(user)  # the join key never leaves


# --- the file target: the row stays, the state's record moves ----------------------------------


def file_target(workspace: Workspace) -> Path:
    """Make the workspace's one target Inläsningstjänst's file, delivered into a folder."""
    outbox = workspace.root / "outbox"
    outbox.mkdir()
    workspace.overrides["targets"] = [
        {
            "name": "ilt",
            "kind": "file",
            "mapping": str(ILT_FILE_MAPPING),
            "delivery": {"method": "local", "directory": str(outbox)},
            "max_retries": 0,
        }
    ]
    workspace.overrides["vendor"] = None
    workspace.overrides["mapping"] = None
    return outbox / "users.csv"


def file_rows(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8")
    return list(csv.reader(io.StringIO(text, newline=""), delimiter=";"))[1:]


def test_a_file_target_keeps_the_row_and_moves_the_record(workspace: Workspace) -> None:
    delivered = file_target(workspace)
    workspace.students(roster(student("E1", "Åsa", "Öberg", A, school_name="Ekeby skola")))
    assert workspace.sync().exit_code == 0
    move_to_e9(workspace)

    held = workspace.sync()

    assert held.exit_code == 3, held.stdout + held.stderr
    assert {r[0]: r[-1] for r in file_rows(delivered)}[ASA] == "7A"  # E1's row, as it was
    approved = workspace.run("approve", "--yes")

    assert approved.exit_code == 0, approved.stdout + approved.stderr
    rows = {r[0]: r for r in file_rows(delivered)}
    assert set(rows) == {ASA, "e2@edu.example.se"}
    assert rows[ASA][-1] == "8A"  # the same username, now the new key's row
    links = state_links(workspace.state_path)
    assert opaque_id("E9") in links and opaque_id("E1") not in links
    assert workspace.sync().exit_code == 0
