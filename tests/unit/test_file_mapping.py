"""The file target's mapping and rendering (connector.targets.file): rows per school or joined,
the role table, the text-safety rule and the encoding, and bytes that are the same for the
same rows (so an unchanged picture is never sent again)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from connector.config import ExternalIdConfig, FileFormatConfig
from connector.mapping.desired import EXCLUDED_MAPPING, build_desired
from connector.people.externalid import ExternalIdMaker
from connector.people.model import Kind, Person, Placement, School
from connector.people.scope import Scoped
from connector.targets.file.mapping import FileMapping, load_file_mapping
from connector.targets.file.render import checksum, render_file
from tests.support.paths import ILT_FILE_MAPPING

A, B = "11111111", "22222222"
SCHOOLS = {A: School(A, "Norrskolan", ("GR",)), B: School(B, "Söderskolan", ("GY",))}
IDS = ExternalIdMaker(ExternalIdConfig(key="test-key"))


def mapping(**fmt: object) -> FileMapping:
    return load_file_mapping(ILT_FILE_MAPPING, FileFormatConfig.model_validate(fmt))


def student(key: str = "E1", *placements: Placement) -> Person:
    return Person(
        key,
        Kind.STUDENT,
        "Åsa",
        "Öberg",
        f"{key.lower()}@skola.example.se",
        None,
        False,
        placements or (Placement(A, "GR", "7", "7B"),),
    )


def teacher(*roles: str) -> Person:
    placements = tuple(Placement(A, role=role) for role in roles)
    return Person(
        "T1", Kind.STAFF, "Per", "Lind", "per.lind@skola.example.se", None, False, placements
    )


def test_a_student_is_one_row_with_their_school_and_class() -> None:
    attributes = mapping().user_attributes(student(), "ext1", SCHOOLS)

    assert attributes["userName"] == "e1@skola.example.se"
    assert attributes["rows"] == [
        [
            "e1@skola.example.se",
            "Åsa",
            "Öberg",
            "e1@skola.example.se",
            "Elev",
            A,
            "Norrskolan",
            "GR",
            "7B",
        ]
    ]


def test_two_schools_are_two_rows_or_one_joined_row() -> None:
    two = student("E1", Placement(A, "GR", "9", "9A"), Placement(B))

    per_school = mapping().user_attributes(two, "ext1", SCHOOLS)["rows"]
    joined = mapping(rows="joined", joined_separator="|").user_attributes(two, "ext1", SCHOOLS)

    assert [row[5:8] for row in per_school] == [[A, "Norrskolan", "GR"], [B, "Söderskolan", "GY"]]
    assert [row[5:9] for row in joined["rows"]] == [
        [f"{A}|{B}", "Norrskolan|Söderskolan", "GR|GY", "9A"]
    ]


def test_staff_get_the_role_of_their_first_listed_duty_or_the_default() -> None:
    assert mapping().role(teacher("Vaktmästare", "Rektor")) == "Lärare"
    assert mapping().role(teacher("Vaktmästare")) == "Lärare"  # staff_default


def test_text_that_may_not_be_sent_or_cannot_be_encoded_leaves_the_person_out_and_held() -> None:
    formula = replace(student("E1"), given_name="=HYPERLINK(1)")
    greek = replace(student("E2"), family_name="Παπαδόπουλος")
    scoped = Scoped(persons=[formula, greek, student("E3")], schools=SCHOOLS)

    desired = build_desired(scoped, mapping(encoding="windows-1252"), IDS)

    assert set(desired.users) == {IDS.for_person(student("E3"))}
    assert desired.excluded == {EXCLUDED_MAPPING: 2}
    assert desired.held_ids == {IDS.for_person(formula), IDS.for_person(greek)}
    reasons = sorted(issue.reason for issue in desired.issues)
    assert reasons[0].startswith("Efternamn cannot be written in windows-1252")
    assert reasons[1].startswith("Förnamn")


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({}, b"A;B\r\n1;x\r\n2;\xc3\xa5\r\n"),
        ({"encoding": "utf-8-bom", "line_ending": "lf"}, b"\xef\xbb\xbfA;B\n1;x\n2;\xc3\xa5\n"),
        ({"encoding": "windows-1252", "delimiter": ","}, b"A,B\r\n1,x\r\n2,\xe5\r\n"),
        ({"quoting": "all"}, b'"A";"B"\r\n"1";"x"\r\n"2";"\xc3\xa5"\r\n'),
    ],
)
def test_the_file_is_written_in_the_agreed_format(fmt: dict[str, str], expected: bytes) -> None:
    content = render_file(
        ["A", "B"], [["2", "å"], ["1", "x"]], FileFormatConfig.model_validate(fmt)
    )

    assert content == expected


def test_the_same_rows_in_any_order_make_the_same_bytes() -> None:
    fmt = FileFormatConfig()
    rows = [["b", "2"], ["a", "1"], ["c", "x;y"]]

    first = render_file(["K", "V"], rows, fmt)

    assert checksum(first) == checksum(render_file(["K", "V"], rows[::-1], fmt))
    assert b'"x;y"' in first  # a delimiter inside a value is quoted
