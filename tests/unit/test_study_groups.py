"""Study groups (classes and teaching groups) from a roster CSV, merged by the join and kept by
the scope only where the person is placed: what the EGIL target sends as StudentGroups and
Activities. Real files in a temporary folder; each test breaks if one rule does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from connector.config import Config, CsvSourceConfig
from connector.errors import SourceError
from connector.people.join import join_persons, merge_by_key
from connector.people.model import Kind, Person, Placement, SourceRead, StudyGroup
from connector.people.scope import apply_scope
from connector.sources.csv_roster import CsvRosterSource

A, B = "11111111", "22222222"
HEADER = "Id;Förnamn;Efternamn;Skolenhetskod;Klass;Grupper;Skyddad"


def roster(tmp_path: Path, *lines: str, kind: str = "student", **overrides: Any) -> SourceRead:
    path = tmp_path / f"{kind}.csv"
    path.write_text("\r\n".join([HEADER, *lines]) + "\r\n", encoding="utf-8")
    columns = {
        "key": "Id",
        "given_name": "Förnamn",
        "family_name": "Efternamn",
        "school_unit_code": "Skolenhetskod",
        "class_name": "Klass",
        "groups": "Grupper",
        **overrides.pop("columns", {}),
    }
    config = CsvSourceConfig.model_validate(
        {
            "type": "csv",
            "name": kind,
            "path": path,
            "kind": kind,
            "columns": columns,
            "protected_identity": {"column": "Skyddad", "not_protected_values": ["Nej"]},
            **overrides,
        }
    )
    return CsvRosterSource(config).read()


def groups_of(read: SourceRead) -> dict[str, tuple[StudyGroup, ...]]:
    return {p.source_key: p.study_groups for p in read.persons}


def test_a_student_s_groups_cell_gives_teaching_groups_at_the_row_s_school(
    tmp_path: Path,
) -> None:
    read = roster(
        tmp_path, "E1;Åsa;Öberg;11111111;7B; MA7B ,EN7B,,;Nej", "E2;Bo;Ek;11111111;7A;;Nej"
    )

    assert groups_of(read) == {
        "E1": (
            StudyGroup(A, "MA7B", "Undervisning", "student"),
            StudyGroup(A, "EN7B", "Undervisning", "student"),
        ),
        "E2": (),
    }
    assert read.issues == []


def test_with_two_placements_each_row_s_groups_belong_to_its_own_school(tmp_path: Path) -> None:
    read = roster(
        tmp_path,
        "E1;Åsa;Öberg;11111111;7B;MA7B;Nej",
        "E1;Åsa;Öberg;22222222;7B;MA7B|SV7;Nej",
        group_separator="|",
    )

    (person,) = read.persons
    assert person.study_groups == (
        StudyGroup(A, "MA7B", "Undervisning", "student"),
        StudyGroup(B, "MA7B", "Undervisning", "student"),
        StudyGroup(B, "SV7", "Undervisning", "student"),
    )


def test_a_teacher_s_groups_are_classes_where_the_pattern_matches_and_others_teaching(
    tmp_path: Path,
) -> None:
    read = roster(
        tmp_path,
        "T1;Karin;Sjöberg;11111111;;7B,MA7B,7B;Nej",
        kind="staff",
        class_pattern="[0-9][A-Z]",
    )

    assert groups_of(read)["T1"] == (
        StudyGroup(A, "7B", "Klass", "teacher"),  # repeated in the cell: once
        StudyGroup(A, "MA7B", "Undervisning", "teacher"),
    )


def test_a_classes_column_names_the_classes_a_teacher_teaches(tmp_path: Path) -> None:
    read = roster(
        tmp_path,
        "T1;Karin;Sjöberg;11111111;7A,7B;MA7B;Nej",
        kind="staff",
        columns={"class_name": None, "classes": "Klass"},
    )

    assert groups_of(read)["T1"] == (
        StudyGroup(A, "MA7B", "Undervisning", "teacher"),
        StudyGroup(A, "7A", "Klass", "teacher"),
        StudyGroup(A, "7B", "Klass", "teacher"),
    )


def test_a_group_name_the_text_rule_refuses_skips_the_row_and_says_why_not_what(
    tmp_path: Path,
) -> None:
    read = roster(tmp_path, "E1;Åsa;Öberg;11111111;7B;MA7B,=HYPERLINK(1);Nej")

    assert read.persons == []
    assert [(i.location, i.reason) for i in read.issues] == [
        ("student.csv:2", "groups starts like a spreadsheet formula (=, +, -, @)")
    ]
    assert "HYPERLINK" not in repr(read.issues)
    assert read.unreadable_keys == {"E1"}  # held, not gone


def test_a_protected_student_carries_no_groups_from_the_source(tmp_path: Path) -> None:
    read = roster(tmp_path, "E1;Åsa;Öberg;11111111;7B;MA7B;Ja")

    (person,) = read.persons
    assert person.protected and person.study_groups == ()


def test_a_configured_groups_column_missing_from_the_header_fails_the_source(
    tmp_path: Path,
) -> None:
    with pytest.raises(SourceError, match="Undervisningsgrupper"):
        roster(
            tmp_path,
            "E1;Åsa;Öberg;11111111;7B;MA7B;Nej",
            columns={"groups": "Undervisningsgrupper"},
        )


def test_a_class_pattern_that_is_no_regular_expression_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="not a valid regular expression"):
        roster(tmp_path, class_pattern="[0-9")


# -- join and scope ------------------------------------------------------------------------------

MA = StudyGroup(A, "MA7B", "Undervisning", "student")
EN = StudyGroup(A, "EN7B", "Undervisning", "student")
SV_B = StudyGroup(B, "SV7", "Undervisning", "student")


def person(key: str, *groups: StudyGroup, join: str | None = None, at: str = A) -> Person:
    return Person(
        key,
        Kind.STUDENT,
        "Åsa",
        "Öberg",
        None,
        None,
        False,
        (Placement(at, "GR", "7"),),
        join_key=join,
        study_groups=groups,
    )


def config(**sections: Any) -> Config:
    marking = {"assume_not_protected": True}
    source = {"type": "csv", "kind": "student", "protected_identity": marking}
    columns = {"key": "Id", "school_unit_code": "Skolenhetskod", "join_key": "Id"}
    return Config.model_validate(
        {
            "vendor": {"base_url": "https://scim.example.se/v2"},
            "state": {"path": "state.db"},
            "mapping": "mapping.yaml",
            "external_id": {"key": "unit-test-key"},
            "sources": [
                {**source, "name": "roster", "path": "a.csv", "columns": columns},
                {**source, "name": "groups", "path": "b.csv", "columns": columns},
            ],
            **sections,
        }
    )


def test_the_join_merges_the_study_groups_of_every_source_once() -> None:
    joined = join_persons(
        config(join={"sources": ["roster", "groups"]}),
        [
            SourceRead("roster", persons=[person("E1", MA, join="J1")]),
            SourceRead("groups", persons=[person("G1", EN, MA, join="J1")]),
        ],
    )

    (merged,) = joined.persons
    assert merged.source_key == "join:J1"
    assert merged.study_groups == (MA, EN)


def test_the_same_person_in_two_unjoined_reads_keeps_each_group_once() -> None:
    (merged,) = merge_by_key([person("E1", MA), person("E1", EN, MA)])

    assert merged.study_groups == (MA, EN)


def test_the_scope_keeps_only_the_groups_at_schools_the_person_is_placed_at_in_scope() -> None:
    both = Person(
        "E1",
        Kind.STUDENT,
        "Åsa",
        "Öberg",
        None,
        None,
        False,
        (Placement(A, "GR", "7"), Placement(B, "GR", "7")),
        study_groups=(MA, SV_B),
    )
    reads = [SourceRead("roster", persons=[both])]

    scoped = apply_scope(config(scope={"school_units": [B]}), reads)

    assert [p.study_groups for p in scoped.persons] == [(SV_B,)]


def test_the_scope_drops_a_protected_person_with_their_groups() -> None:
    protected = Person(
        "E1",
        Kind.STUDENT,
        "Åsa",
        "Öberg",
        None,
        None,
        True,
        (Placement(A, "GR", "7"),),
        study_groups=(MA,),
    )

    scoped = apply_scope(config(), [SourceRead("roster", persons=[protected])])

    assert scoped.persons == []  # nothing of theirs, groups included, goes to a target
    assert sum(scoped.excluded.values()) == 1
