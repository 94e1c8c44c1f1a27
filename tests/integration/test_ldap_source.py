"""The directory as a source: a real slapd on loopback, through the connector, into a real SCIM server."""

from __future__ import annotations

from connector.people.model import Kind
from tests.support.ids import opaque_id
from tests.support.ldap import add_staff, directory_source
from tests.support.rosters import student
from tests.support.scim import ScimPeek
from tests.support.workspace import Workspace

A, B = "11111111", "22222222"


def test_more_entries_than_the_size_limit_are_all_read_by_paging(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory(size_limit=5)
    slapd.add_ou("people")
    add_staff(slapd, 12)
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd)]

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    users = peek.users()
    assert len(users) == 12
    assert users["staff7@edu.example.se"]["name"]["formatted"] == "Åkesson7, Lärare7"
    assert users["staff7@edu.example.se"]["userType"] == "teacher"
    assert len(peek.member_names(peek.groups()[A])) == 12


def test_staff_with_two_schools_by_group_membership_are_in_both_groups(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    slapd.add_ou("groups")
    karin = slapd.add_person("karin", "Karin", "Sjöberg", mail="karin@edu.example.se")
    olle = slapd.add_person("olle", "Olle", "Ek", mail="olle@edu.example.se")
    slapd.add_group("larare-a", [karin, olle], ou="groups")
    slapd.add_group("larare-b", [karin], ou="groups")
    rules = [
        {"group": f"cn=larare-a,ou=groups,{slapd.suffix}", "school_unit_code": A, "role": "Lärare"},
        {
            "group": f"CN=Larare-B, OU=groups, {slapd.suffix.upper()}",
            "school_unit_code": B,
            "role": "Lärare",
        },
    ]
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd, group_rules=rules)]

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    groups = peek.groups()
    assert peek.member_names(groups[A]) == {"karin@edu.example.se", "olle@edu.example.se"}
    assert peek.member_names(groups[B]) == {"karin@edu.example.se"}


def test_roster_students_joined_with_directory_accounts(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    slapd.add_person("asa.o", "Åsa", "Öberg", mail="asa.o@elev.kommun.example", employeeNumber="E1")
    slapd.add_person(
        "erik.l", "Erik", "Lind", mail="erik.l@elev.kommun.example", employeeNumber="E2"
    )
    # E3 and E4 share a join key in the directory: a conflict
    slapd.add_person(
        "marta.s", "Märta", "Ström", mail="marta.s@elev.kommun.example", employeeNumber="E3"
    )
    slapd.add_person(
        "marta.s2", "Märta", "Ström", mail="marta.s2@elev.kommun.example", employeeNumber="E3"
    )
    # only in the directory: skipped by rule
    slapd.add_person(
        "only.dir", "Dir", "Only", mail="only.dir@elev.kommun.example", employeeNumber="E99"
    )
    workspace = Workspace(tmp_path, scim_url)
    workspace.students(
        [
            student("E1", "Åsa", "Öberg", A, email="wrong.roster.address@edu.example.se"),
            student("E2", "Erik", "Lind", B, email=""),
            student("E3", "Märta", "Ström", A, email="marta@edu.example.se"),
            student(
                "E5", "Noa", "Rosterson", A, email="noa@edu.example.se"
            ),  # no directory account
        ]
    )
    workspace.student_columns = {"join_key": "Elev-ID"}
    # the roster's e-mail column may be empty when the directory has the address
    workspace.student_required = ["given_name", "family_name", "school_unit_code"]
    source = directory_source(slapd, kind="student", name="accounts")
    source["attributes"]["join_key"] = "employeeNumber"
    source["required"] = ["email"]
    workspace.extra_sources = [source]
    workspace.overrides["join"] = {
        "sources": ["students", "accounts"],
        "prefer": {"email": ["accounts", "students"], "username": ["accounts", "students"]},
        "unmatched": {"students": "use", "accounts": "skip"},
    }

    result = workspace.sync()

    users = peek.users()
    assert set(users) == {
        "asa.o@elev.kommun.example",
        "erik.l@elev.kommun.example",
        "noa@edu.example.se",
    }
    assert peek.member_names(peek.groups()[A]) == {
        "asa.o@elev.kommun.example",
        "noa@edu.example.se",
    }
    assert peek.member_names(peek.groups()[B]) == {"erik.l@elev.kommun.example"}
    assert users["asa.o@elev.kommun.example"]["name"]["formatted"] == "Öberg, Åsa"
    conflicts = [e for e in result.log_events() if e["event"] == "join.conflict"]
    assert any("share one join key" in e["reason"] for e in conflicts)
    for user in users.values():
        assert "E1" not in str(user) and "E2" not in str(user)  # the join key never leaves
    finished = result.event("sync.finished")
    assert finished["excluded"]["only in source accounts"] == 1
    assert finished["excluded"]["join key shared by several entries"] == 1


def test_starttls_with_the_test_ca_works_and_the_wrong_ca_fails_cleanly(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory(tls=True)
    slapd.add_ou("people")
    add_staff(slapd, 3)
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd, start_tls=True, ca_file=str(slapd.ca_file))]
    assert workspace.sync().exit_code == 0
    assert len(peek.users()) == 3

    slapd.delete(f"uid=staff0,ou=people,{slapd.suffix}")
    workspace.extra_sources = [
        directory_source(slapd, start_tls=True, ca_file=str(slapd.wrong_ca_file))
    ]
    result = workspace.sync()

    assert result.exit_code == 1
    failed = result.event("source.failed")
    assert failed["source"] == "directory" and slapd.url in failed["reason"]
    assert "certificate" in failed["reason"].lower() or "ssl" in failed["reason"].lower()
    assert all(u["active"] for u in peek.list("Users"))  # nothing deactivated
    assert slapd.service_password not in result.stderr + result.stdout


def test_ldaps_with_the_test_ca(tmp_path, scim_url, peek: ScimPeek, slapd_factory) -> None:
    slapd = slapd_factory(tls=True)
    slapd.add_ou("people")
    add_staff(slapd, 2)
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [
        directory_source(slapd, servers=[slapd.ldaps_url], ca_file=str(slapd.ca_file))
    ]

    assert workspace.sync().exit_code == 0
    assert len(peek.users()) == 2


def test_directory_down_is_a_failed_source_and_recovers(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    add_staff(slapd, 10)  # losing one of ten stays above the 80% source-health floor
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd)]
    assert workspace.sync().exit_code == 0

    slapd.stop()
    down = workspace.sync()
    assert down.exit_code == 1
    assert down.event("source.failed")["source"] == "directory"
    assert all(u["active"] for u in peek.list("Users"))

    slapd.start()
    slapd.delete(f"uid=staff3,ou=people,{slapd.suffix}")
    back = workspace.sync()
    assert back.exit_code == 0
    users = peek.users()
    assert users["staff3@edu.example.se"]["active"] is False
    assert users["staff0@edu.example.se"]["active"] is True


def test_entry_without_mail_is_reported_by_dn_and_skipped(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    add_staff(slapd, 2)
    dn = slapd.add_person("nomail", "Utan", "Adress", departmentNumber=[A])
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd)]

    result = workspace.sync()

    assert result.exit_code == 0
    skipped = [e for e in result.log_events() if e["event"] == "source.record_skipped"]
    assert skipped == [
        {
            **skipped[0],
            "source": "directory",
            "location": dn,
            "reason": "the required attribute mail is missing",
        }
    ]
    assert len(peek.users()) == 2


def test_entries_with_unsafe_names_or_roles_are_reported_by_dn_and_skipped(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    add_staff(slapd, 4)  # fewer than half skipped: the source is read, not failed

    def add(uid: str, given: str, sn: str, title: str = "Lärare") -> str:
        mail = f"{uid}@edu.example.se"
        return slapd.add_person(uid, given, sn, mail=mail, departmentNumber=[A], title=title)

    bidi = add("bidi", "Karin\u202e", "Ek")
    zero_width = add("zw", "Li", "E\u200bk")
    formula = add("roll", "Bo", "Ek", title="=cmd|' /C calc'!A0")
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd)]

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    skipped = {
        e["location"]: e["reason"]
        for e in result.log_events()
        if e["event"] == "source.record_skipped"
    }
    assert skipped == {
        bidi: "givenName holds bidirectional text controls",
        zero_width: "sn holds zero-width characters",
        formula: "title starts like a spreadsheet formula (=, +, -, @)",
    }
    assert set(peek.users()) == {f"staff{i}@edu.example.se" for i in range(4)}


def test_check_reports_bind_and_counts(tmp_path, scim_url, slapd_factory) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    add_staff(slapd, 3)
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd)]

    result = workspace.run("check")

    assert result.exit_code == 0, result.stdout
    assert f"bind as {slapd.service_dn}" in result.stdout
    assert f"ou=people,{slapd.suffix}: 3 entries match the filter" in result.stdout


def test_active_directory_guid_key_disabled_accounts_and_member_of(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory(active_directory_schema=True)
    guid = bytes.fromhex("E004253F894FD3119A0C0305E82C3301")
    karin = slapd.add_ad_user(
        "Karin Sjöberg",
        object_guid=guid,
        sam_account_name="karsjo",
        givenName="Karin",
        sn="Sjöberg",
        mail="karin@edu.example.se",
        userPrincipalName="karsjo@kommun.example",
    )
    slapd.add_ad_user(
        "Disabled Person",
        object_guid=bytes(range(16)),
        sam_account_name="dis",
        user_account_control=514,
        givenName="Dis",
        sn="Abled",
        mail="disabled@edu.example.se",
    )
    slapd.add_ad_group("Larare-A", [karin])
    source = directory_source(
        slapd,
        filter="(objectClass=user)",
        active_directory=True,
        attributes={"key": "objectGUID", "email": "mail", "username": "userPrincipalName"},
        group_rules=[
            {
                "group": f"cn=Larare-A,ou=groups,{slapd.suffix}",
                "school_unit_code": A,
                "role": "Lärare",
            }
        ],
    )
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [source]

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    users = peek.users()
    assert set(users) == {"karin@edu.example.se"}  # the disabled account counts as not present
    assert peek.member_names(peek.groups()[A]) == {"karin@edu.example.se"}

    assert users["karin@edu.example.se"]["externalId"] == opaque_id(
        "3f2504e0-4f89-11d3-9a0c-0305e82c3301", Kind.STAFF
    )

    check = workspace.run("check")
    assert check.exit_code == 0, check.stdout
    assert f"group cn=Larare-A,ou=groups,{slapd.suffix} (school unit {A}): 1 member\n" in (
        check.stdout
    )


def test_a_base_dn_that_does_not_exist_is_named_with_the_server(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    add_staff(slapd, 3)
    missing = f"ou=Elever,{slapd.suffix}"
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd)]
    assert workspace.sync().exit_code == 0

    workspace.extra_sources = [
        directory_source(slapd, base_dns=[f"ou=people,{slapd.suffix}", missing])
    ]
    result = workspace.sync()

    assert result.exit_code == 1
    reason = result.event("source.failed")["reason"]
    assert missing in reason and slapd.url in reason, reason
    assert "does not exist" in reason
    assert all(u["active"] for u in peek.list("Users"))

    check = workspace.run("check")

    assert check.exit_code == 1
    [line] = [line for line in check.stdout.splitlines() if line.startswith("FAIL  source")]
    assert missing in line and slapd.url in line and "does not exist" in line, check.stdout


def test_check_counts_each_rules_group_and_fails_on_a_group_that_does_not_exist(
    tmp_path, scim_url, slapd_factory
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    staff = add_staff(slapd, 3)
    existing = slapd.add_group("larare-a", staff[:2])
    missing = f"cn=larare-b,ou=groups,{slapd.suffix}"  # never created: a typo, a rename
    rules = [
        {"group": existing, "school_unit_code": A, "role": "Lärare"},
        {"group": missing, "school_unit_code": B, "role": "Lärare"},
    ]
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd, group_rules=rules)]

    result = workspace.run("check")

    assert result.exit_code == 1, result.stdout
    lines = result.stdout.splitlines()
    assert any(existing in line and A in line and "2 members" in line for line in lines), lines
    failed = [line for line in lines if line.startswith("FAIL  source directory")]
    assert len(failed) == 1, lines
    assert missing in failed[0] and B in failed[0] and "does not exist" in failed[0]

    slapd.add_group("larare-b", staff[2:])
    assert workspace.run("check").exit_code == 0


def test_a_group_rule_template_places_staff_at_every_school_with_the_default_role(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    slapd = slapd_factory()
    slapd.add_ou("people")
    anna = slapd.add_person("anna", "Anna", "Ahl", mail="anna@edu.example.se")
    bo = slapd.add_person("bo", "Bo", "Berg", mail="bo@edu.example.se")
    # the role attribute, where there is one, comes before the source's default role
    ove = slapd.add_person("ove", "Ove", "Ek", mail="ove@edu.example.se", title="Vaktmästare")
    slapd.add_group(f"personal-{A}", [anna, ove])
    slapd.add_group(f"personal-{B}", [bo])
    template = f"cn=personal-{{school_unit_code}},ou=groups,{slapd.suffix}"
    workspace = Workspace(tmp_path, scim_url)
    workspace.overrides["schools"] = [{"code": A, "name": "Ekeby"}, {"code": B, "name": "Björkäng"}]
    workspace.extra_sources = [
        directory_source(slapd, group_rules=[{"group": template}], default_role="Lärare")
    ]

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    users = peek.users()
    assert users["anna@edu.example.se"]["userType"] == "teacher"
    assert users["bo@edu.example.se"]["userType"] == "teacher"
    assert users["ove@edu.example.se"]["userType"] == "staff"
    groups = peek.groups()
    assert peek.member_names(groups[A]) == {"anna@edu.example.se", "ove@edu.example.se"}
    assert peek.member_names(groups[B]) == {"bo@edu.example.se"}

    check = workspace.run("check")
    assert check.exit_code == 0, check.stdout
    assert f"group cn=personal-{A},ou=groups,{slapd.suffix} (school unit {A}): 2 members" in (
        check.stdout
    )
    assert f"group cn=personal-{B},ou=groups,{slapd.suffix} (school unit {B}): 1 member" in (
        check.stdout
    )


def test_a_server_url_with_a_trailing_slash_works(
    tmp_path, scim_url, peek: ScimPeek, slapd_factory
) -> None:
    # the config accepts ldap://host:port/ (as slapd -h writes it); ldap3 would take the
    # slash for part of the port
    slapd = slapd_factory()
    slapd.add_ou("people")
    add_staff(slapd, 2)
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [directory_source(slapd, servers=[slapd.url + "/"])]

    result = workspace.sync()

    assert result.exit_code == 0, result.stdout + result.stderr
    assert len(peek.users()) == 2
