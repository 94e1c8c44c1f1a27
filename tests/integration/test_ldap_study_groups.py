"""Classes and teaching groups from a real slapd, as EgilSCIM reads them: group entries under a
base, their names read by a pattern, members by DN. Students study in them, staff teach them; a
protected member is in none, and a group that cannot be used is reported by its DN."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.config import LdapSourceConfig
from connector.people.model import SourceRead, StudyGroup
from connector.sources.ldap_directory import LdapDirectorySource
from connector.sources.ldap_groups import NO_GROUPS
from tests.fakes.slapd import Slapd
from tests.support.ldap import directory_source
from tests.support.workspace import Workspace

A, B = "11111111", "22222222"
PATTERN = r"(?P<school_unit_code>[0-9]+)-(?P<type>KL|UG)-(?P<name>.+)"


def add(slapd: Slapd, uid: str, ou: str, school: str = A, marking: str = "Ingen") -> str:
    return slapd.add_person(
        uid,
        uid.capitalize(),
        "Lind",
        mail=f"{uid}@edu.example.se",
        ou=ou,
        departmentNumber=[school],
        title="Lärare",
        employeeType=marking,
    )


def source(slapd: Slapd, kind: str, ou: str, **groups: Any) -> dict[str, Any]:
    return directory_source(
        slapd,
        name=kind,
        kind=kind,
        base_dns=[f"ou={ou},{slapd.suffix}"],
        protected_identity={"attribute": "employeeType", "not_protected_values": ["Ingen"]},
        study_groups={
            "base_dns": [f"ou=skolgrupper,{slapd.suffix}"],
            "pattern": PATTERN,
            "types": {"KL": "Klass", "UG": "Undervisning"},
            **groups,
        },
    )


def read(slapd: Slapd, kind: str, ou: str, **groups: Any) -> SourceRead:
    config = source(slapd, kind, ou, **groups)
    return LdapDirectorySource(LdapSourceConfig.model_validate(config)).read()


def groups_by_uid(read: SourceRead) -> dict[str | None, tuple[StudyGroup, ...]]:
    return {p.username: p.study_groups for p in read.persons}


def test_students_study_in_and_staff_teach_the_groups_their_names_describe(slapd: Slapd) -> None:
    asa, bo = add(slapd, "asa", "elever"), add(slapd, "bo", "elever", B)
    hemlig = add(slapd, "hemlig", "elever", marking="Skyddad")
    karin = add(slapd, "karin", "personal")
    slapd.add_group("11111111-UG-MA7B", [asa, hemlig, karin], ou="skolgrupper")
    slapd.add_group("11111111-KL-7B", [asa, karin], ou="skolgrupper")
    slapd.add_group("22222222-UG-SV7", [bo], ou="skolgrupper")
    slapd.add_group("only-protected", [hemlig], ou="skolgrupper")  # no pattern: no group
    slapd.add_group("22222222-UG-HEMLIG", [hemlig], ou="skolgrupper")
    slapd.add_group("11111111-UG-EN7B", [asa, karin], ou="andra")  # not under the base

    students = read(slapd, "student", "elever")
    staff = read(slapd, "staff", "personal")

    assert groups_by_uid(students) == {
        "asa": (
            StudyGroup(A, "7B", "Klass", "student"),
            StudyGroup(A, "MA7B", "Undervisning", "student"),
        ),
        "bo": (StudyGroup(B, "SV7", "Undervisning", "student"),),
        "hemlig": (),  # a protected member is in no group
    }
    assert groups_by_uid(staff) == {
        "karin": (
            StudyGroup(A, "7B", "Klass", "teacher"),
            StudyGroup(A, "MA7B", "Undervisning", "teacher"),
        )
    }
    assert students.issues == [] and students.suspect == [] and staff.suspect == []


def test_a_group_that_cannot_be_used_is_reported_by_its_dn_and_left_out(slapd: Slapd) -> None:
    asa = add(slapd, "asa", "elever")
    slapd.add_group("1111111-UG-MA7B", [asa], ou="skolgrupper")  # seven digits
    slapd.add_group("11111111-XX-MA7B", [asa], ou="skolgrupper")  # no pattern match: no group
    slapd.add_group("11111111-UG-=HYPERLINK(1)", [asa], ou="skolgrupper")
    slapd.add_group("11111111-UG-SV7", [asa], ou="skolgrupper")
    # The whole name is refused too ("\u200b" is a zero-width space).
    slapd.add_group("11111111-UG-SV\u200b8", [asa], ou="skolgrupper")

    students = read(slapd, "student", "elever", types={"UG": "Undervisning"})

    # KL is not listed under types any more, and XX never matches the pattern.
    assert groups_by_uid(students) == {"asa": (StudyGroup(A, "SV7", "Undervisning", "student"),)}
    assert sorted(issue.reason for issue in students.issues) == [
        "cn holds zero-width characters",
        "cn: the group name it names starts like a spreadsheet formula (=, +, -, @)",
        "cn: the school unit code it names is not 8 digits",
    ]
    # By the group's DN (as the server writes it), never by a member's.
    assert all(
        issue.location.startswith("cn=")
        and issue.location.endswith(f",ou=skolgrupper,{slapd.suffix}")
        for issue in students.issues
    )
    assert "HYPERLINK" in " ".join(i.location for i in students.issues)


def test_a_type_the_pattern_reads_but_the_types_do_not_list_is_reported(slapd: Slapd) -> None:
    asa = add(slapd, "asa", "elever")
    group = slapd.add_group("11111111-KL-7B", [asa], ou="skolgrupper")
    slapd.add_group("11111111-UG-SV7", [asa], ou="skolgrupper")

    students = read(slapd, "student", "elever", types={"UG": "Undervisning"})

    assert groups_by_uid(students)["asa"] == (StudyGroup(A, "SV7", "Undervisning", "student"),)
    assert [(i.location, i.reason) for i in students.issues] == [
        (group, "cn: its type is not one listed under study_groups.types")
    ]


def test_without_a_type_in_the_pattern_every_group_has_the_default_type(slapd: Slapd) -> None:
    karin = add(slapd, "karin", "personal")
    slapd.add_group("11111111 7B", [karin], ou="skolgrupper")

    staff = read(
        slapd,
        "staff",
        "personal",
        pattern=r"(?P<school_unit_code>\d{8}) (?P<name>\S+)",
        default_type="Klass",
    )

    assert groups_by_uid(staff)["karin"] == (StudyGroup(A, "7B", "Klass", "teacher"),)


def test_no_study_group_found_makes_the_read_suspect(slapd: Slapd) -> None:
    """An emptied folder or a new naming scheme would take every group away at the vendor."""
    asa = add(slapd, "asa", "elever")
    slapd.add_group("Alla elever", [asa], ou="skolgrupper")

    students = read(slapd, "student", "elever")

    assert groups_by_uid(students) == {"asa": ()}
    assert students.suspect == [NO_GROUPS]


def test_check_counts_the_groups_found_but_not_one_only_protected_people_are_in(
    slapd: Slapd, tmp_path: Path, scim_url: str
) -> None:
    asa, hemlig = add(slapd, "asa", "elever"), add(slapd, "hemlig", "elever", marking="Skyddad")
    slapd.add_group("11111111-KL-7B", [asa, hemlig], ou="skolgrupper")
    slapd.add_group("11111111-UG-MA7B", [asa], ou="skolgrupper")
    slapd.add_group("11111111-UG-HEMLIG", [hemlig], ou="skolgrupper")
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [source(slapd, "student", "elever")]

    check = workspace.run("check")

    assert check.exit_code == 0, check.stdout + check.stderr
    assert "study groups: 1 classes and 1 teaching groups" in check.stdout
    assert "HEMLIG" not in check.stdout + check.stderr
