"""A broken export or a broken vendor never does harm.

Each test is one way an export, a directory or a vendor can break that once deleted or lost
accounts: a protected-identity marking that collapses, a token the vendor refuses, an answer
that is not SCIM, a vendor listing that has lost everything, a mapping edit that rewrites every
account, concurrent read-modify-replace of one group, and a `check` that passed a source `sync`
then failed. The vendor is a real scim2-server, reached directly or through the fault proxy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.demo.localscim import LocalScimServer
from tests.fakes.faultproxy import FaultProxy
from tests.support.ids import opaque_id
from tests.support.ldap import add_staff, directory_source
from tests.support.paths import DEFAULT_MAPPING
from tests.support.rosters import STUDENT_HEADER, student, write_csv
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

SCHOOLS = ("11111111", "22222222", "33333333")


def town(count: int, marking: str = "Nej", **markings: str) -> list[list[str]]:
    """`count` students at three schools; `markings` sets one student's marking by key."""
    return [
        student(
            f"E{i}",
            f"Elev{i}",
            f"Eriksson{i}",
            SCHOOLS[i % 3],
            marking=markings.get(f"E{i}", marking),
        )
        for i in range(count)
    ]


def guarded(workspace: Workspace) -> Workspace:
    """The safety rules at their defaults, as in production."""
    workspace.overrides["safety"] = {}
    return workspace


def active_users(peek: ScimPeek) -> int:
    return sum(1 for user in peek.list("Users") if user.get("active"))


def memberships(peek: ScimPeek) -> dict[str, int]:
    return {code: len(group.get("members") or []) for code, group in peek.groups().items()}


def synced_town(workspace: Workspace, peek: ScimPeek, count: int = 60) -> dict[str, int]:
    """A guarded town synced once; its memberships at the vendor then."""
    guarded(workspace)
    workspace.students(town(count))
    assert workspace.sync().exit_code == 0
    return memberships(peek)


def state_rows(workspace: Workspace, sql: str, *args: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(workspace.state_path) as db:
        return list(db.execute(sql, args))


# -- 1. the protected-identity marking collapses ------------------------------------------


def test_missing_marking_column_fails_the_source_and_changes_nothing(
    workspace: Workspace, peek: ScimPeek
) -> None:
    members_before = synced_town(workspace, peek)

    # the config stays as it is; the export drops the column (the last one)
    assert STUDENT_HEADER[-1] == "Skyddad"
    write_csv(workspace.students_csv, STUDENT_HEADER[:-1], [row[:-1] for row in town(60)])

    result = workspace.sync()

    assert result.exit_code == 1, result.stdout
    assert "Skyddad" in result.event("source.failed")["reason"]
    assert "requests             none" in result.stdout
    assert active_users(peek) == 60
    assert memberships(peek) == members_before


def test_marking_values_the_config_does_not_know_hold_every_removal_until_approved(
    workspace: Workspace, peek: ScimPeek
) -> None:
    members_before = synced_town(workspace, peek)

    workspace.students(town(60, marking="0"))  # the SIS switched from "Nej" to "0"
    held = workspace.sync()

    assert held.exit_code == 3, held.stdout
    assert "newly protected" in held.event("guard.held")["reason"]
    new_value = held.event("source.marking_new_value")
    assert (new_value["source"], new_value["rows"], new_value["values"]) == ("students", 60, 1)
    assert "0" not in new_value.values()  # the value itself is never logged
    assert "DELETE" not in held.event("sync.finished")["requests"]
    assert active_users(peek) == 60
    assert memberships(peek) == members_before
    # nothing about them stays in the state file but what a retry needs
    for (attributes,) in state_rows(workspace, "SELECT attributes FROM users"):
        assert "Elev" not in attributes and "@" not in attributes

    approve = workspace.run("approve")  # shows, asks, and changes nothing without a yes
    assert "delete user" in approve.stdout and "newly protected" in approve.stdout
    assert active_users(peek) == 60

    approved = workspace.run("approve", "--yes")

    assert approved.exit_code == 0, approved.stdout
    assert peek.list("Users") == []


def test_a_jump_in_protected_persons_is_held_and_one_newly_protected_is_removed_at_once(
    workspace: Workspace, peek: ScimPeek
) -> None:
    synced_town(workspace, peek)

    workspace.students(town(60, **{f"E{i}": "Ja" for i in range(18)}))  # 30% say "Ja"
    held = workspace.sync()

    assert held.exit_code == 3, held.stdout
    assert "18 newly protected" in held.event("guard.held")["reason"]
    assert active_users(peek) == 60
    assert held.event("sync.finished")["held_back"]["delete_user"] == 18

    workspace.students(town(60, E7="Ja"))  # one: below the limits, removed at once
    one = workspace.sync()

    assert one.exit_code == 0, one.stdout
    assert "e7@edu.example.se" not in peek.users()
    assert len(peek.users()) == 59


def test_marking_attribute_absent_from_every_directory_entry_fails_the_source(
    tmp_path: Path, scim_url: str, peek: ScimPeek, slapd_factory: Any
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    add_staff(slapd, 4)
    workspace = Workspace(tmp_path, scim_url)
    marking = {"attribute": "employeeType", "not_protected_values": ["synlig"]}
    workspace.extra_sources = [directory_source(slapd, protected_identity=marking)]

    result = workspace.sync()

    assert result.exit_code == 1, result.stdout
    assert "employeeType" in result.event("source.failed")["reason"]
    assert peek.list("Users") == []


# -- 2. a vendor-wide refusal --------------------------------------------------------------


def test_a_wrong_token_fails_every_sync_and_one_sync_after_the_fix_converges(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(town(10))
    assert workspace.sync().exit_code == 0
    workspace.students([*town(10, E1="Ja"), student("E10", "Ny", "Elev", SCHOOLS[1])])
    workspace.environment["TEST_SCIM_TOKEN"] = "an-expired-token"

    for _ in range(3):
        refused = workspace.sync()
        assert refused.exit_code == 1, refused.stdout
        assert refused.event("apply.vendor_failed")["status"] == 401
        assert "postponed" in refused.event("sync.finished")["applied"]
    assert state_rows(workspace, "SELECT key FROM failures") == []

    workspace.environment["TEST_SCIM_TOKEN"] = "test-token-7f3a9c"
    fixed = workspace.sync()

    assert fixed.exit_code == 0, fixed.stdout
    users = peek.users()
    assert "e1@edu.example.se" not in users
    assert "e10@edu.example.se" in users and len(users) == 10
    assert "e10@edu.example.se" in peek.member_names(peek.groups()[SCHOOLS[1]])
    assert workspace.sync().event("sync.finished")["planned"] == {}


@pytest.fixture
def proxied(tmp_path: Path, scim_server: LocalScimServer, scim_url: str) -> Iterator[Any]:
    with FaultProxy(scim_server.root) as proxy:
        workspace = Workspace(tmp_path, proxy.url_for(scim_url))
        yield workspace, proxy


def test_a_5xx_only_one_object_meets_backs_that_object_off_and_one_all_meet_does_not(
    proxied: tuple[Workspace, FaultProxy], peek: ScimPeek
) -> None:
    workspace, proxy = proxied
    workspace.students(town(3))
    assert workspace.sync().exit_code == 0
    renamed = town(3)
    renamed[1] = student("E1", "Elev1", "Bergman", SCHOOLS[1])
    renamed[2] = student("E2", "Elev2", "Lindqvist", SCHOOLS[2])
    workspace.students(renamed)

    proxy.inject("500", method="PATCH", body_contains="Bergman", times=5)
    one = workspace.sync()

    assert one.exit_code == 1
    assert peek.users()["e2@edu.example.se"]["name"]["familyName"] == "Lindqvist"
    (key,) = state_rows(workspace, "SELECT key FROM failures")
    assert key == (f"update_user:{opaque_id('E1')}",)

    workspace.students([*renamed[:2], student("E2", "Elev2", "Lind", SCHOOLS[2])])
    proxy.inject("500", method="PATCH", times=10)
    every = workspace.sync()  # the vendor fails everything: not the object's trouble

    assert every.exit_code == 1
    assert state_rows(workspace, "SELECT key FROM failures") == [key]


# -- 3. a 200 answer that is not SCIM --------------------------------------------------------


def test_a_delete_answered_with_an_html_page_is_not_taken_as_done(
    proxied: tuple[Workspace, FaultProxy], peek: ScimPeek
) -> None:
    workspace, proxy = proxied
    workspace.students(town(6))
    assert workspace.sync().exit_code == 0
    workspace.students(town(6, E2="Ja"))
    proxy.inject("html", method="DELETE")  # a captive portal's login page, with 200

    result = workspace.sync()

    assert result.exit_code == 1, result.stdout
    assert "not SCIM" in result.event("apply.vendor_failed")["error"]
    assert "e2@edu.example.se" in peek.users()  # still there: not recorded as deleted
    ((attributes,),) = state_rows(
        workspace, "SELECT attributes FROM users WHERE external_id = ?", opaque_id("E2")
    )
    assert "Elev2" not in attributes and "@" not in attributes  # only what a retry needs

    again = workspace.sync()

    assert again.exit_code == 0, again.stdout
    assert again.event("sync.finished")["applied"]["users_deleted"] == 1
    assert "e2@edu.example.se" not in peek.users()
    assert state_rows(workspace, "SELECT 1 FROM users WHERE external_id = ?", opaque_id("E2")) == []


def test_an_update_answered_with_html_is_not_taken_as_done(
    proxied: tuple[Workspace, FaultProxy], peek: ScimPeek
) -> None:
    workspace, proxy = proxied
    workspace.students(town(3))
    assert workspace.sync().exit_code == 0
    workspace.students([student("E0", "Åsa", "Eriksson0", SCHOOLS[0]), *town(3)[1:]])
    proxy.inject("html", method="PATCH")

    result = workspace.sync()

    assert result.exit_code == 1
    assert workspace.sync().event("sync.finished")["applied"] == {"users_updated": 1}
    assert peek.users()["e0@edu.example.se"]["name"]["givenName"] == "Åsa"


# -- 4. an implausible vendor listing ------------------------------------------------------


def test_a_full_reconcile_lists_its_pages_concurrently_and_finds_everyone(
    proxied: tuple[Workspace, FaultProxy], peek: ScimPeek
) -> None:
    workspace, proxy = proxied
    workspace.overrides["reconcile"] = {"page_size": 10}
    workspace.overrides["vendor"] = {**workspace.config()["vendor"], "concurrency": 8}
    workspace.students(town(150))
    assert workspace.sync().exit_code == 0
    before = proxy.requests_by_method["GET"]

    result = workspace.run("sync", "--full")

    assert result.exit_code == 0, result.stdout
    finished = result.event("sync.finished")
    assert finished["full_reconcile"] is True and finished["planned"] == {}
    assert proxy.requests_by_method["GET"] - before >= 15  # every page of the 150 users
    assert len(peek.users()) == 150


@pytest.mark.parametrize(
    ("kind", "page"),
    [
        ("empty_list", "startIndex=1&"),  # the vendor suddenly lists nobody
        ("empty_object", "startIndex=1&"),  # {} is not a list
        ("empty_list", "startIndex=101&"),  # a listing that stops half-way
        ("lost_half", "startIndex=1&"),  # far more gone than the deletion threshold
        ("lost_half", "startIndex=101&"),  # a later page, asked beside others, comes up short
    ],
)
def test_a_full_reconcile_does_not_believe_a_listing_that_lost_the_accounts(
    kind: str, page: str, proxied: tuple[Workspace, FaultProxy], peek: ScimPeek
) -> None:
    workspace, proxy = proxied
    whole = (kind, page) == ("lost_half", "startIndex=1&")  # one page: all 150 in it
    workspace.overrides["reconcile"] = {"page_size": 200 if whole else 100}
    workspace.students(town(150))
    assert workspace.sync().exit_code == 0
    assert len(state_rows(workspace, "SELECT 1 FROM users")) == 150
    proxy.inject(kind, method="GET", path_contains=f"/Users?{page}")

    result = workspace.run("sync", "--full")

    assert proxy.faults[kind] == 1
    assert result.exit_code == 1, result.stdout
    reason = result.event("reconcile.failed")["error"]
    assert reason in result.stdout
    assert len(state_rows(workspace, "SELECT 1 FROM users")) == 150
    after = workspace.sync()
    assert after.exit_code == 0
    assert "POST" not in after.event("sync.finished")["requests"]
    assert len(peek.users()) == 150


@pytest.mark.parametrize("kind", ["empty_list", "empty_object"])
def test_check_does_not_pass_a_vendor_that_lists_nobody(
    kind: str, proxied: tuple[Workspace, FaultProxy]
) -> None:
    workspace, proxy = proxied
    workspace.students(town(20))
    assert workspace.sync().exit_code == 0
    proxy.inject(kind, method="GET", path_contains="/Users?", times=10)

    result = workspace.run("check")

    assert result.exit_code == 1, result.stdout
    assert "FAIL  vendor" in result.stdout


# -- 5. a mapping edit that rewrites every account ----------------------------------------


def test_a_mapping_edit_that_rewrites_every_account_is_held_until_approved(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.overrides["safety"] = {"max_updates": {"count": 10, "percent": 10}}
    workspace.students(town(30))
    assert workspace.sync().exit_code == 0
    edited = workspace.root / "mapping.yaml"
    edited.write_text(
        DEFAULT_MAPPING.read_text(encoding="utf-8").replace(
            'displayName: "{given_name} {family_name}"', 'displayName: "{family_name} {given_name}"'
        ),
        encoding="utf-8",
    )
    workspace.overrides["mapping"] = str(edited)

    held = workspace.sync()

    assert held.exit_code == 3, held.stdout
    assert "30 updates" in held.event("guard.held")["reason"]
    assert "PATCH" not in held.event("sync.finished")["requests"]
    assert peek.users()["e1@edu.example.se"]["displayName"] == "Elev1 Eriksson1"
    shown = workspace.run("approve")
    assert "displayName: 30" in shown.stdout, shown.stdout
    assert "Elev1" not in shown.stdout

    approved = workspace.run("approve", "--yes")

    assert approved.exit_code == 0, approved.stdout
    assert peek.users()["e1@edu.example.se"]["displayName"] == "Eriksson1 Elev1"


def test_updates_below_the_limit_go_through(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.students(town(30))
    workspace.sync()
    roster = town(30)
    roster[1] = student("E1", "Åsa", "Eriksson1", SCHOOLS[1])
    workspace.students(roster)

    assert workspace.sync().exit_code == 0
    assert peek.users()["e1@edu.example.se"]["name"]["givenName"] == "Åsa"


# -- 6. concurrent read-modify-replace of one group ---------------------------------------


def test_members_are_not_lost_at_a_vendor_without_patch(
    tmp_path: Path, no_patch_scim_server: LocalScimServer
) -> None:
    url = no_patch_scim_server.tenant_url("nopatch")
    workspace = Workspace(tmp_path, url)
    workspace.overrides["vendor"] = {
        **workspace.config()["vendor"],
        "concurrency": 8,
        "member_chunk_size": 25,
    }
    schools = [f"{n}" * 8 for n in range(1, 9)]
    workspace.students(
        [student(f"E{i}", f"Elev{i}", f"Eriksson{i}", schools[i % 8]) for i in range(1000)]
    )

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout
    with ScimPeek(url) as peek:
        assert memberships(peek) == dict.fromkeys(schools, 125)
    assert workspace.run("sync", "--full").event("sync.finished")["planned"] == {}


# -- 7. check and sync agree on a source that is unusable ---------------------------------


def test_check_fails_a_file_read_with_the_wrong_encoding_as_sync_does(
    workspace: Workspace, peek: ScimPeek
) -> None:
    header = [
        {"Förnamn": "Fornamn", "Årskurs": "Arskurs"}.get(name, name) for name in STUDENT_HEADER
    ]
    workspace.student_columns = {"given_name": "Fornamn", "school_year": "Arskurs"}
    rows = [
        student(f"E{i}", given, "Åkesson", SCHOOLS[0])
        for i, given in enumerate(["Åsa", "Märta", "Björn", "Göran", "Ebba", "Örjan"] * 10)
    ]
    write_csv(workspace.students_csv, header, rows, encoding="cp1252")  # the config: utf-8
    workspace.students_enabled = True

    checked = workspace.run("check")

    assert checked.exit_code == 1, checked.stdout
    assert "FAIL  source students" in checked.stdout
    assert "hint: most records hold bytes the configured encoding cannot read" in checked.stdout
    assert checked.stdout.count("skipped students.csv:") == 20
    assert "and 40 more" in checked.stdout
    assert "Åkesson" not in checked.stdout and "kesson" not in checked.stdout

    synced = workspace.sync()

    assert synced.exit_code == 1
    assert "60 of 60 records could not be read" in synced.event("source.failed")["reason"]
    assert peek.list("Users") == []


def test_check_names_a_header_in_the_wrong_encoding(workspace: Workspace) -> None:
    workspace.students(town(5), encoding="cp1252")  # "Förnamn" in Windows-1252; config: utf-8

    checked = workspace.run("check")

    assert checked.exit_code == 1
    assert "the header holds bytes that are not valid utf-8" in checked.stdout


def test_check_shows_the_header_it_found_when_the_delimiter_is_wrong(
    workspace: Workspace,
) -> None:
    workspace.students(town(5), delimiter=",")  # the config says ";"

    checked = workspace.run("check")

    assert checked.exit_code == 1
    assert "header found" in checked.stdout and "delimiter" in checked.stdout
    assert "Elev1" not in checked.stdout
