"""The town the fault and bulk tests sync: three schools, 60 students and 4 staff (one of them at
two schools), and a check that the vendor holds exactly that - one account per person with the
right names and state, one group per school with exactly its members.

Its students are `{key: (given name, family name, [school unit codes])}`, so a test changes
them as the school year goes on (a rename, a transfer, a leaver) and checks the changed town.
"""

from __future__ import annotations

from typing import Any

from tests.support.ids import opaque_id
from tests.support.rosters import staff, student
from tests.support.scim import ScimPeek

A, B, C = "11111111", "22222222", "33333333"
SCHOOL_NAMES = {A: "Ekeby skola", B: "Björkängsskolan", C: "Centralskolan Östra"}
GIVEN = ["Åsa", "Erik", "Märta", "Noa", "Liv", "Omar", "Saga", "Elias", "Ebba", "Hugo"]
FAMILY = ["Öberg", "Lind", "Ström", "Björk", "Nyström", "Karlsson", "Ali", "Ek", "Åkesson", "Berg"]


def school_of(index: int) -> str:
    return (A, B, C)[index % 3]


def roster_rows(people: dict[str, tuple[str, str, list[str]]]) -> list[list[str]]:
    return [
        student(key, given, family, school, school_name=SCHOOL_NAMES[school])
        for key, (given, family, schools) in people.items()
        for school in schools
    ]


def initial_students() -> dict[str, tuple[str, str, list[str]]]:
    return {
        f"E{i:02d}": (GIVEN[i % 10], FAMILY[(i * 3 + i // 10) % 10], [school_of(i)])
        for i in range(1, 61)
    }


STAFF = {
    "P1": ("Karin", "Sjöberg", [(A, "Lärare")]),
    "P2": ("Göran", "Älvdal", [(B, "Rektor")]),
    "P3": ("Ida", "Fors", [(C, "Lärare"), (A, "Speciallärare/specialpedagog")]),
    "P4": ("Jonas", "Wik", [(B, "Lärare"), (C, "Lärare")]),
}


def staff_rows() -> list[list[str]]:
    return [
        staff(key, given, family, school, role)
        for key, (given, family, placements) in STAFF.items()
        for school, role in placements
    ]


def expected_state(
    students: dict[str, tuple[str, str, list[str]]],
    leavers: dict[str, tuple[str, str, list[str]]] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
    """userName -> what the account should hold; school -> the userNames in its group."""
    users: dict[str, dict[str, Any]] = {}
    members: dict[str, set[str]] = {A: set(), B: set(), C: set()}
    everyone = [(k, g, f, schools, "student") for k, (g, f, schools) in students.items()]
    everyone += [
        (k, g, f, [s for s, _ in placements], "teacher") for k, (g, f, placements) in STAFF.items()
    ]
    for key, given, family, schools, user_type in everyone:
        name = f"{key.lower()}@edu.example.se"
        users[name] = {
            "externalId": opaque_id(key) if user_type == "student" else None,
            "given": given,
            "family": family,
            "active": True,
            "userType": user_type,
        }
        for school in schools:
            members[school].add(name)
    for key, (given, family, _) in (leavers or {}).items():
        users[f"{key.lower()}@edu.example.se"] = {
            "externalId": opaque_id(key),
            "given": given,
            "family": family,
            "active": False,
            "userType": "student",
        }
    return users, members


def expected_state_without_staff(
    students: dict[str, tuple[str, str, list[str]]],
) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
    users, members = expected_state(students)
    staff_names = {f"{k.lower()}@edu.example.se" for k in STAFF}
    return (
        {n: u for n, u in users.items() if n not in staff_names},
        {s: {n for n in m if n not in staff_names} for s, m in members.items() if m - staff_names},
    )


def assert_server_holds(
    peek: ScimPeek, users: dict[str, dict[str, Any]], members: dict[str, set[str]]
) -> None:
    listed = peek.list("Users")
    names = [u["userName"] for u in listed]
    assert sorted(names) == sorted(users), "missing, unexpected or duplicate accounts"
    externals = [u.get("externalId") for u in listed]
    assert all(externals) and len(set(externals)) == len(externals), "duplicate externalId"
    for account in listed:
        want = users[account["userName"]]
        if want["externalId"] is not None:
            assert account["externalId"] == want["externalId"]
        assert account["name"]["givenName"] == want["given"], account["userName"]
        assert account["name"]["familyName"] == want["family"], account["userName"]
        assert account["name"]["formatted"] == f"{want['family']}, {want['given']}"
        assert account["displayName"] == f"{want['given']} {want['family']}"
        assert account["userType"] == want["userType"]
        assert account.get("active", True) is want["active"], account["userName"]
        assert [e["value"] for e in account["emails"]] == [account["userName"]]

    groups = peek.list("Groups")
    assert sorted(g.get("externalId") for g in groups) == sorted(members), "duplicate group"
    by_id = {u["id"]: u["userName"] for u in listed}
    for group in groups:
        school = group["externalId"]
        assert group["displayName"] == SCHOOL_NAMES[school]
        values = [m["value"] for m in group.get("members") or []]
        assert len(values) == len(set(values)), f"a member twice in {school}"
        assert {by_id.get(v, v) for v in values} == members[school], school
