"""Roster CSV -> real SCIM server over HTTP, through the connector's CLI."""

from __future__ import annotations

import json

from tests.support.ids import opaque_id
from tests.support.rosters import staff, student, write_csv
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A, B = "11111111", "22222222"


def base_roster() -> list[list[str]]:
    return [
        student("E1", "Åsa", "Öberg", A, school_name="Ekeby skola"),
        student("E2", "Erik", "Lind", A, school_name="Ekeby skola"),
        student("E3", "Märta", "Ström", B, school_name="Björkängsgymnasiet", school_type="GY"),
        # one student placed at two schools appears twice
        student("E4", "Noa", "Björk", A, school_name="Ekeby skola"),
        student("E4", "Noa", "Björk", B, school_name="Björkängsgymnasiet", school_type="GY"),
    ]


def test_first_sync_creates_users_and_one_group_per_school(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(base_roster())
    workspace.staff(
        [staff("P1", "Karin", "Sjöberg", A), staff("P1", "Karin", "Sjöberg", B, "Rektor")]
    )

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    users = peek.users()
    assert set(users) == {
        "e1@edu.example.se",
        "e2@edu.example.se",
        "e3@edu.example.se",
        "e4@edu.example.se",
        "p1@edu.example.se",
    }
    asa = users["e1@edu.example.se"]
    assert asa["name"] == {"givenName": "Åsa", "familyName": "Öberg", "formatted": "Öberg, Åsa"}
    assert asa["displayName"] == "Åsa Öberg"
    assert asa["userType"] == "student"
    assert asa["active"] is True
    assert asa["emails"][0]["value"] == "e1@edu.example.se"
    assert asa["externalId"] == opaque_id("E1")
    assert "E1" not in json.dumps(asa)  # the source key itself never leaves
    assert users["p1@edu.example.se"]["userType"] == "teacher"

    groups = peek.groups()
    assert set(groups) == {A, B}
    assert groups[A]["displayName"] == "Ekeby skola"
    assert groups[B]["displayName"] == "Björkängsgymnasiet"
    assert peek.member_names(groups[A]) == {
        "e1@edu.example.se",
        "e2@edu.example.se",
        "e4@edu.example.se",
        "p1@edu.example.se",
    }
    assert peek.member_names(groups[B]) == {
        "e3@edu.example.se",
        "e4@edu.example.se",
        "p1@edu.example.se",
    }
    assert "users created        5" in result.stdout


def test_second_sync_sends_no_writes(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.students(base_roster())
    assert workspace.sync().exit_code == 0
    versions = {u["id"]: u["meta"]["version"] for u in peek.list("Users")}

    second = workspace.sync()

    assert second.exit_code == 0
    finished = second.event("sync.finished")
    assert finished["planned"] == {}
    writes = {m: n for m, n in finished["requests"].items() if m != "GET"}
    assert writes == {}
    assert {u["id"]: u["meta"]["version"] for u in peek.list("Users")} == versions
    assert len(peek.list("Users")) == 4


def test_changed_family_name_is_one_patch_of_the_same_account(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(base_roster())
    workspace.sync()
    before = peek.users()["e2@edu.example.se"]

    roster = base_roster()
    roster[1] = student("E2", "Erik", "Lindgren", A, school_name="Ekeby skola")
    workspace.students(roster)
    result = workspace.sync()

    assert result.exit_code == 0
    requests = result.event("sync.finished")["requests"]
    assert {m: n for m, n in requests.items() if m != "GET"} == {"PATCH": 1}
    after = peek.users()["e2@edu.example.se"]
    assert after["id"] == before["id"]
    assert after["name"]["familyName"] == "Lindgren"
    assert after["name"]["formatted"] == "Lindgren, Erik"
    assert after["displayName"] == "Erik Lindgren"


def test_student_leaving_the_roster_is_deactivated_not_deleted(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(base_roster())
    workspace.sync()
    leaver_id = peek.users()["e2@edu.example.se"]["id"]

    workspace.students([r for r in base_roster() if r[0] != "E2"])
    result = workspace.sync()

    assert result.exit_code == 0
    users = peek.users()
    assert users["e2@edu.example.se"]["id"] == leaver_id
    assert users["e2@edu.example.se"]["active"] is False
    assert "e2@edu.example.se" not in peek.member_names(peek.groups()[A])
    assert result.event("sync.finished")["requests"].get("DELETE") is None


def test_protected_and_unreadable_markings_never_reach_the_server(
    workspace: Workspace, peek: ScimPeek
) -> None:
    secrets_of_protected = [
        "Hemlig",
        "Skyddadsson",
        "hemlig.skyddadsson",
        "E90",
        "Tom",
        "Tommarkering",
        "tom.tommarkering",
        "E91",
        "Okänd",
        "Konstigsson",
        "okand.konstigsson",
        "E92",
    ]
    workspace.students(
        [
            *base_roster(),
            student(
                "E90",
                "Hemlig",
                "Skyddadsson",
                A,
                marking="Ja",
                email="hemlig.skyddadsson@edu.example.se",
            ),
            student(
                "E91", "Tom", "Tommarkering", A, marking="", email="tom.tommarkering@edu.example.se"
            ),
            student(
                "E92",
                "Okänd",
                "Konstigsson",
                B,
                marking="Kanske",
                email="okand.konstigsson@edu.example.se",
            ),
        ]
    )
    workspace.overrides["logging"] = {"format": "json", "level": "debug"}

    result = workspace.sync()
    plan = workspace.run("plan", "--json")

    assert result.exit_code == 0
    assert len(peek.users()) == 4
    server_dump = json.dumps([peek.list("Users"), peek.list("Groups")], ensure_ascii=False)
    state_bytes = b"".join(
        p.read_bytes() for p in workspace.root.iterdir() if p.name.startswith("state.db")
    )
    for secret in secrets_of_protected:
        assert secret not in server_dump
        assert secret.encode() not in state_bytes
        assert secret not in result.stderr and secret not in result.stdout
        assert secret not in plan.stdout
        assert opaque_id(secret) not in state_bytes.decode("utf-8", "replace")
    assert result.event("sync.finished")["excluded"] == {"protected identity": 3}
    assert "left out (protected identity): 3" in result.stdout


def test_existing_account_with_same_external_id_is_linked(
    workspace: Workspace, peek: ScimPeek
) -> None:
    existing = peek.create_user(
        {
            "userName": "old.name@edu.example.se",
            "externalId": opaque_id("E1"),
            "title": "Set by the vendor",
        }
    )
    workspace.students(base_roster())

    result = workspace.sync()

    assert result.exit_code == 0
    users = peek.list("Users")
    assert len(users) == 4
    linked = next(u for u in users if u["id"] == existing["id"])
    assert linked["userName"] == "e1@edu.example.se"  # brought in line with the roster
    assert linked["title"] == "Set by the vendor"  # an attribute the mapping does not manage
    assert result.event("sync.finished")["applied"]["users_linked"] == 1


def test_existing_account_with_same_username_is_linked_case_insensitively(
    workspace: Workspace, peek: ScimPeek
) -> None:
    existing = peek.create_user(
        {"userName": "E3@EDU.example.se", "name": {"givenName": "M", "familyName": "S"}}
    )
    workspace.students(base_roster())

    result = workspace.sync()

    assert result.exit_code == 0
    users = peek.list("Users")
    assert len(users) == 4
    linked = next(u for u in users if u["id"] == existing["id"])
    assert linked["externalId"] == opaque_id("E3")
    assert linked["name"]["familyName"] == "Ström"
    assert len({u["userName"].lower() for u in users}) == 4


def test_broken_row_is_reported_by_line_and_skipped(workspace: Workspace, peek: ScimPeek) -> None:
    rows = base_roster()
    rows.insert(1, ["E50", "Bruten", "Rad", "bruten@edu.example.se"])  # line 3: too few columns
    rows.insert(3, student("", "Utan", "Nyckel", A))  # line 5: no key
    rows.insert(4, student("E51", "Felaktig", "Adress", A, email="inte-en-adress"))  # line 6
    workspace.students(rows)

    result = workspace.sync()

    assert result.exit_code == 0
    assert set(peek.users()) == {
        "e1@edu.example.se",
        "e2@edu.example.se",
        "e3@edu.example.se",
        "e4@edu.example.se",
    }
    skipped = {
        e["location"]: e["reason"]
        for e in result.log_events()
        if e["event"] == "source.record_skipped"
    }
    assert skipped == {
        "students.csv:3": "has 4 columns, the header has 10",
        "students.csv:5": "the key column 'Elev-ID' is empty",
        "students.csv:6": "the e-mail address is not valid",
    }
    for personal in ("Bruten", "Utan", "Felaktig", "inte-en-adress", "E50", "E51"):
        assert personal not in result.stderr
    assert "skipped students.csv:3" in result.stdout


def test_windows_1252_roster_keeps_swedish_letters(workspace: Workspace, peek: ScimPeek) -> None:
    workspace.student_encoding = "windows-1252"
    workspace.students(
        [
            student(
                "E1",
                "Åke",
                "Ärlemalm-Östh",
                A,
                school_name="Gärdesskolan",
                email="ake@edu.example.se",
            )
        ],
        encoding="cp1252",
    )
    assert "Å".encode("cp1252") in workspace.students_csv.read_bytes()  # really not UTF-8

    result = workspace.sync()

    assert result.exit_code == 0
    user = peek.users()["ake@edu.example.se"]
    assert user["name"]["formatted"] == "Ärlemalm-Östh, Åke"
    assert peek.groups()[A]["displayName"] == "Gärdesskolan"


def test_auto_encoding_keeps_a_utf8_roster_utf8_despite_one_bad_byte(
    workspace: Workspace, peek: ScimPeek
) -> None:
    """The incident: one invalid byte renamed every user and group to "HÃ¥kansson"."""
    ascii_header = ["Elev-ID", "Fornamn", "Efternamn", "E-post", "Skolenhetskod", "Skola"]
    ascii_header += ["Skolform", "Arskurs", "Klass", "Skyddad"]
    workspace.student_columns = {"given_name": "Fornamn", "school_year": "Arskurs"}
    workspace.student_encoding = "auto"
    workspace.students_enabled = True
    rows = base_roster()
    rows.insert(1, student("E9", "Xyz", "Qwerty", A, school_name="Ekeby skola"))  # line 3
    rows.append(student("E5", "Håkan", "Håkansson", B, school_name="Björkängsgymnasiet"))
    write_csv(workspace.students_csv, ascii_header, rows)
    data = workspace.students_csv.read_bytes()
    workspace.students_csv.write_bytes(data.replace(b"Xyz", b"X\xe5z"))  # one bad byte

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    users = peek.users()
    assert users["e1@edu.example.se"]["name"]["formatted"] == "Öberg, Åsa"
    assert users["e5@edu.example.se"]["name"]["formatted"] == "Håkansson, Håkan"
    assert peek.groups()[B]["displayName"] == "Björkängsgymnasiet"
    assert "e9@edu.example.se" not in users
    assert result.event("source.read")["encoding"] == "utf-8"
    skipped = [e for e in result.log_events() if e["event"] == "source.record_skipped"]
    assert [(e["location"], e["reason"]) for e in skipped] == [
        ("students.csv:3", "holds bytes that are not valid utf-8")
    ]


def test_formula_school_names_and_hidden_characters_never_reach_the_vendor(
    workspace: Workspace, peek: ScimPeek
) -> None:
    hyperlink = '=HYPERLINK("http://evil.example","x")'
    rows = base_roster()
    rows.insert(1, student("E7", "Eva", "Lund", "33333333", school_name=hyperlink))  # line 3
    rows.insert(2, student("E8", "Kim", "Berg\u202egpj.exe", A))  # line 4: bidi override
    rows.insert(3, student("E9", "Ida", "Ek", A, klass="7\u200bA"))  # line 5: zero-width
    workspace.students(rows)

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    assert set(peek.users()) == {f"e{i}@edu.example.se" for i in (1, 2, 3, 4)}
    assert set(peek.groups()) == {A, B}
    sent = json.dumps([peek.list("Users"), peek.list("Groups")])
    assert "HYPERLINK" not in sent and "\\u202e" not in sent
    skipped = {
        e["location"]: e["reason"]
        for e in result.log_events()
        if e["event"] == "source.record_skipped"
    }
    assert skipped == {
        "students.csv:3": "school_name starts like a spreadsheet formula (=, +, -, @)",
        "students.csv:4": "family_name holds bidirectional text controls",
        "students.csv:5": "class_name holds zero-width characters",
    }
    assert "HYPERLINK" not in result.stderr + result.stdout


def test_plan_json_lists_operations_and_changes_nothing(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students(base_roster())

    result = workspace.run("plan", "--json")

    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    kinds = [op["op"] for op in plan["operations"]]
    assert kinds.count("create_group") == 2
    assert kinds.count("create_user") == 4
    assert sum(len(op["members"]) for op in plan["operations"] if op["op"] == "add_members") == 5
    assert peek.list("Users") == [] and peek.list("Groups") == []
    assert not workspace.state_path.exists()
    assert "test-token" not in result.stdout and "test-token" not in result.stderr
