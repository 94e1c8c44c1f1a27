"""Unit tests for connector.sources.csv_roster: encodings, row problems and protected identity."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from connector.config import Config, CsvSourceConfig
from connector.errors import SourceError
from connector.people.model import Kind, Person, Placement, SourceRead
from connector.people.scope import apply_scope
from connector.sources.csv_roster import MAX_FIELD_LENGTH, CsvRosterSource, decode
from connector.sources.health import likely_cause

HEADER = ["Elev-ID", "Förnamn", "Efternamn", "E-post", "Skolenhetskod", "Skola", "Skyddad"]
SCHOOL_A = "11111111"
SCHOOL_B = "22222222"


def row(
    key: str,
    given: str = "Anna",
    family: str = "Ek",
    *,
    email: str | None = None,
    school: str = SCHOOL_A,
    school_name: str = "Norrskolan",
    marking: str = "Nej",
) -> list[str]:
    if email is None:
        email = f"{key.lower()}@skola.example.se"
    return [key, given, family, email, school, school_name, marking]


def source_config(path: Path, **overrides: Any) -> CsvSourceConfig:
    data: dict[str, Any] = {
        "type": "csv",
        "name": "students",
        "path": path,
        "kind": "student",
        "delimiter": ";",
        "encoding": "utf-8",
        "columns": {
            "key": "Elev-ID",
            "given_name": "Förnamn",
            "family_name": "Efternamn",
            "email": "E-post",
            "school_unit_code": "Skolenhetskod",
            "school_name": "Skola",
        },
        "protected_identity": {"column": "Skyddad", "not_protected_values": ["Nej"]},
    }
    data.update(overrides)
    return CsvSourceConfig.model_validate(data)


def write_rows(
    path: Path,
    rows: list[list[str]],
    *,
    header: list[str] = HEADER,
    delimiter: str = ";",
    encoding: str = "utf-8",
) -> Path:
    lines = [delimiter.join(header), *(delimiter.join(r) for r in rows)]
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    return path


def read(path: Path, **overrides: Any) -> SourceRead:
    return CsvRosterSource(source_config(path, **overrides)).read()


def by_key(result: SourceRead) -> dict[str, Person]:
    return {p.source_key: p for p in result.persons}


def protected_of(tmp_path: Path, rows: list[list[str]], **overrides: Any) -> dict[str, bool]:
    result = read(write_rows(tmp_path / "elever.csv", rows), **overrides)
    return {p.source_key: p.protected for p in result.persons}


# -- delimiters and encodings ------------------------------------------------------------------


def test_semicolon_delimited_file_is_read(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "elever.csv", [row("E1", "Åsa", "Öberg")])
    result = read(path)
    assert result.issues == []
    assert result.rows_read == 1
    person = by_key(result)["E1"]
    assert (person.given_name, person.family_name) == ("Åsa", "Öberg")
    assert person.email == "e1@skola.example.se"
    assert person.kind is Kind.STUDENT
    assert person.placements == (Placement(school_unit_code=SCHOOL_A),)
    assert person.protected is False


def test_comma_delimited_file_is_read(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "elever.csv", [row("E1"), row("E2")], delimiter=",")
    result = read(path, delimiter=",")
    assert result.issues == []
    assert set(by_key(result)) == {"E1", "E2"}


def test_utf8_bom_does_not_hide_first_header_column(tmp_path: Path) -> None:
    path = tmp_path / "elever.csv"
    write_rows(path, [row("E1", "Åsa")])
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    result = read(path)
    assert result.issues == []
    assert by_key(result)["E1"].given_name == "Åsa"


def test_windows_1252_keeps_swedish_letters(tmp_path: Path) -> None:
    path = write_rows(
        tmp_path / "elever.csv", [row("E1", "Åsa Ärla", "Östlund-åäö")], encoding="cp1252"
    )
    result = read(path, encoding="windows-1252")
    assert result.issues == []
    person = by_key(result)["E1"]
    assert person.given_name == "Åsa Ärla"
    assert person.family_name == "Östlund-åäö"


def test_auto_encoding_reads_windows_1252_file(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "elever.csv", [row("E1", "Åsa", "Öberg")], encoding="cp1252")
    result = read(path, encoding="auto")
    assert result.issues == []
    assert by_key(result)["E1"].given_name == "Åsa"
    assert by_key(result)["E1"].family_name == "Öberg"


def test_auto_encoding_reads_utf8_file(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "elever.csv", [row("E1", "Åsa", "Öberg")], encoding="utf-8")
    result = read(path, encoding="auto")
    assert result.issues == []
    # Not mojibake such as "Ã…sa".
    assert by_key(result)["E1"].given_name == "Åsa"


def test_decode_auto_picks_the_right_encoding() -> None:
    assert decode("Åsa;Öberg".encode("cp1252"), "auto") == ("Åsa;Öberg", "windows-1252")
    assert decode("Åsa;Öberg".encode(), "auto") == ("Åsa;Öberg", "utf-8")
    assert decode(b"\xef\xbb\xbfElev-ID", "auto") == ("Elev-ID", "utf-8")


# An export whose header is plain ASCII: only its rows can tell UTF-8 from Windows-1252.
ASCII_HEADER = ["id", "given", "family", "email", "school", "school_name", "protected"]
ASCII_COLUMNS = {
    "columns": {
        "key": "id",
        "given_name": "given",
        "family_name": "family",
        "email": "email",
        "school_unit_code": "school",
        "school_name": "school_name",
    },
    "protected_identity": {"column": "protected", "not_protected_values": ["Nej"]},
}


def write_lines(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\r\n".join([*lines, b""]))
    return path


def line_of(cells: list[str], encoding: str = "utf-8") -> bytes:
    return ";".join(cells).encode(encoding)


@pytest.mark.parametrize("header", [ASCII_HEADER, HEADER], ids=["ascii header", "swedish header"])
def test_auto_keeps_a_utf8_file_utf8_when_one_row_has_a_bad_byte(
    tmp_path: Path, header: list[str]
) -> None:
    """The incident: one bad byte made the whole file Windows-1252 ("HÃ¥kansson")."""
    rows = [
        line_of(header),
        line_of(row("E1", "Håkan", "Håkansson", school_name="Björkskolan")),
        line_of(row("E2", "Xyz", "Qwerty")).replace(b"Xyz", b"X\xe5z"),  # line 3: one bad byte
        line_of(row("E3", "Åsa", "Öberg", school=SCHOOL_B, school_name="Ängsskolan")),
        line_of(row("E4", "Bo", "Ek")),
    ]
    path = write_lines(tmp_path / "elever.csv", rows)
    overrides = ASCII_COLUMNS if header is ASCII_HEADER else {}

    result = read(path, encoding="auto", **overrides)

    people = by_key(result)
    assert (people["E1"].given_name, people["E1"].family_name) == ("Håkan", "Håkansson")
    assert (people["E3"].given_name, people["E3"].family_name) == ("Åsa", "Öberg")
    assert set(people) == {"E1", "E3", "E4"}
    assert {s.code: s.name for s in result.schools} == {
        SCHOOL_A: "Björkskolan",
        SCHOOL_B: "Ängsskolan",
    }
    assert [(i.location, i.reason) for i in result.issues] == [
        ("elever.csv:3", "holds bytes that are not valid utf-8")
    ]
    assert result.unreadable_keys == {"E2"}  # held, not deprovisioned


def test_auto_reads_a_mostly_windows_1252_file_as_windows_1252(tmp_path: Path) -> None:
    rows = [
        line_of(ASCII_HEADER),
        line_of(row("E1", "Åsa", "Öberg"), "cp1252"),
        line_of(row("E2", "Håkan", "Håkansson"), "utf-8"),  # line 3: a UTF-8 row among them
        line_of(row("E3", "Märta", "Ström", school_name="Björkskolan"), "cp1252"),
        line_of(row("E4", "Bo", "Ek"), "cp1252"),
    ]
    path = write_lines(tmp_path / "elever.csv", rows)

    result = read(path, encoding="auto", **ASCII_COLUMNS)

    people = by_key(result)
    assert set(people) == {"E1", "E3", "E4"}
    assert people["E1"].given_name == "Åsa"
    assert people["E3"].family_name == "Ström"
    # The UTF-8 row reads as "HÃ¥kan": reported by its line, never sent.
    (issue,) = result.issues
    assert issue.location == "elever.csv:3"
    assert issue.reason == "given_name looks like mojibake (UTF-8 read as Windows-1252)"
    assert result.unreadable_keys == {"E2"}


def test_decode_auto_decides_by_the_header_and_the_share_of_valid_rows() -> None:
    header = b"id;name\n"
    utf8, cp1252 = "1;Håkansson\n".encode(), "1;Håkansson\n".encode("cp1252")
    # An ASCII header: the rows holding other bytes decide, by majority.
    assert decode(header + utf8 * 3 + cp1252, "auto")[1] == "utf-8"
    assert decode(header + utf8 + cp1252 * 3, "auto")[1] == "windows-1252"
    assert decode(header + b"1;Bo\n" * 50 + cp1252, "auto")[1] == "windows-1252"
    # A header holding other bytes decides by itself.
    assert decode("Förnamn\n".encode() + cp1252 * 3, "auto")[1] == "utf-8"
    assert decode("Förnamn\n".encode("cp1252") + utf8 * 3, "auto")[1] == "windows-1252"
    # The undecodable bytes of the rows that are not UTF-8 are kept to be reported.
    text, used = decode(header + utf8 * 2 + cp1252, "auto")
    assert used == "utf-8"
    assert text.splitlines()[3] == "1;H\udce5kansson"


@pytest.mark.parametrize(
    ("encoding", "file_encoding", "given", "school_name", "reason"),
    [
        ("utf-8", "utf-8", "HÃ¥kan", "Norrskolan", "given_name"),
        ("auto", "utf-8", "Åsa", "BjÃ¶rkskolan", "school_name"),
        ("windows-1252", "utf-8", "Håkan", "Norrskolan", "given_name"),
        ("windows-1252", "utf-8", "Bo", "Björkskolan", "school_name"),
    ],
)
def test_mojibake_is_reported_by_line_and_skipped_in_every_encoding_mode(
    tmp_path: Path, encoding: str, file_encoding: str, given: str, school_name: str, reason: str
) -> None:
    rows = [
        line_of(ASCII_HEADER),
        line_of(row("E1", "Bo", "Ek")),
        line_of(row("E2", given, "Lind", school=SCHOOL_B, school_name=school_name), file_encoding),
        line_of(row("E3", "Cilla", "Berg")),
    ]
    path = write_lines(tmp_path / "elever.csv", rows)

    result = read(path, encoding=encoding, **ASCII_COLUMNS)

    assert set(by_key(result)) == {"E1", "E3"}
    assert {s.code for s in result.schools} == {SCHOOL_A}  # no group named "BjÃ¶rkskolan"
    (issue,) = result.issues
    assert issue.location == "elever.csv:3"
    assert issue.reason == f"{reason} looks like mojibake (UTF-8 read as Windows-1252)"
    assert result.unreadable_keys == {"E2"}


def test_a_utf8_file_read_as_windows_1252_hints_at_the_encoding(tmp_path: Path) -> None:
    rows = [line_of(ASCII_HEADER), *(line_of(row(f"E{i}", "Åsa", "Öberg")) for i in range(3))]
    result = read(
        write_lines(tmp_path / "elever.csv", rows), encoding="windows-1252", **ASCII_COLUMNS
    )
    assert result.persons == []
    assert "UTF-8 read as Windows-1252" in str(likely_cause(result))


# -- people and placements ---------------------------------------------------------------------


def test_student_on_two_rows_becomes_one_person_with_two_placements(tmp_path: Path) -> None:
    rows = [
        row("E1", school=SCHOOL_A, school_name="Norrskolan"),
        row("E1", school=SCHOOL_B, school_name="Söderskolan"),
    ]
    result = read(write_rows(tmp_path / "elever.csv", rows))
    assert result.rows_read == 2
    assert len(result.persons) == 1
    codes = [p.school_unit_code for p in result.persons[0].placements]
    assert codes == [SCHOOL_A, SCHOOL_B]
    assert {s.code: s.name for s in result.schools} == {
        SCHOOL_A: "Norrskolan",
        SCHOOL_B: "Söderskolan",
    }


def test_identical_rows_give_one_placement(tmp_path: Path) -> None:
    result = read(write_rows(tmp_path / "elever.csv", [row("E1"), row("E1")]))
    assert len(result.persons) == 1
    assert len(result.persons[0].placements) == 1


def test_blank_lines_are_skipped_and_line_numbers_stay_right(tmp_path: Path) -> None:
    path = tmp_path / "elever.csv"
    text = ";".join(HEADER) + "\n\n" + ";".join(row("E1")) + "\n;;;;;;\n" + ";".join(row("")) + "\n"
    path.write_text(text, encoding="utf-8")
    result = read(path)
    assert set(by_key(result)) == {"E1"}
    assert result.rows_read == 2
    assert [i.location for i in result.issues] == ["elever.csv:5"]


def test_staff_kind_is_carried_over(tmp_path: Path) -> None:
    result = read(write_rows(tmp_path / "personal.csv", [row("P1")]), kind="staff")
    assert result.persons[0].kind is Kind.STAFF


# -- broken rows -------------------------------------------------------------------------------


def test_broken_rows_are_reported_by_line_without_personal_data(tmp_path: Path) -> None:
    long_name = "Lång" * 300  # > MAX_FIELD_LENGTH
    assert len(long_name) > MAX_FIELD_LENGTH
    rows = [
        row("E1001", "Greta", "Garbo"),  # line 2: fine
        ["E1002", "Sven", "Svensson", "sven@skola.example.se"],  # line 3: too few columns
        row("", "Karin", "Nyckellös"),  # line 4: empty key
        row("E1004", "Olle", "Postlös", email="olle-at-nowhere"),  # line 5: invalid e-mail
        row("E1005", long_name, "Långnamn"),  # line 6: field too long
        row("E1006", "Maja", "Majasson"),  # line 7: fine
    ]
    path = write_rows(tmp_path / "elever.csv", rows)
    result = read(path)

    assert set(by_key(result)) == {"E1001", "E1006"}
    assert result.rows_read == 6
    locations = [i.location for i in result.issues]
    assert locations == ["elever.csv:3", "elever.csv:4", "elever.csv:5", "elever.csv:6"]
    assert all(i.source == "students" for i in result.issues)

    reasons = [i.reason for i in result.issues]
    assert "columns" in reasons[0]
    assert "key column" in reasons[1]
    assert "e-mail" in reasons[2]
    assert str(MAX_FIELD_LENGTH) in reasons[3]

    personal = {cell for r in rows for cell in r if len(cell) >= 3} - {
        SCHOOL_A,
        "Norrskolan",
        "Nej",
    }
    for reason in reasons:
        for value in personal:
            assert value not in reason, (value, reason)
        assert "Lång" not in reason


def test_undecodable_byte_in_utf8_mode_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "elever.csv"
    good = ";".join(row("E1", "Åsa")).encode()
    bad = ";".join(row("E2", "Xyz", "Qwerty")).encode().replace(b"Xyz", b"X\xffz")
    later = ";".join(row("E3", "Bo")).encode()
    path.write_bytes(b"\n".join([";".join(HEADER).encode(), good, bad, later, b""]))
    result = read(path, encoding="utf-8")
    assert set(by_key(result)) == {"E1", "E3"}
    assert len(result.issues) == 1
    issue = result.issues[0]
    assert issue.location == "elever.csv:3"
    assert "utf-8" in issue.reason
    assert "E2" not in issue.reason
    assert "Qwerty" not in issue.reason
    assert "\udcff" not in issue.reason


def test_required_field_missing_is_reported(tmp_path: Path) -> None:
    rows = [row("E1", given=""), row("E2")]
    result = read(write_rows(tmp_path / "elever.csv", rows))
    assert set(by_key(result)) == {"E2"}
    assert [(i.location, i.reason) for i in result.issues] == [
        ("elever.csv:2", "the required field given_name is empty")
    ]


def test_row_with_broken_quoting_is_reported_and_later_rows_read(tmp_path: Path) -> None:
    path = tmp_path / "elever.csv"
    lines = [
        ";".join(HEADER),
        ";".join(row("E1")),
        'E2;"Anna"x;Ek;e2@skola.example.se;11111111;Norrskolan;Nej',
        ";".join(row("E3")),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = read(path)
    assert set(by_key(result)) == {"E1", "E3"}
    assert [i.location for i in result.issues] == ["elever.csv:3"]
    assert "cannot be parsed" in result.issues[0].reason


# -- protected identity: fail closed -----------------------------------------------------------


@pytest.mark.parametrize(
    ("marking", "expected"),
    [
        ("Ja", True),
        ("", True),
        ("  ", True),
        ("Kanske", True),
        ("Nej", False),
        ("nej", False),
        ("NEJ", False),
        (" Nej ", False),
    ],
)
def test_protected_marking_fails_closed(tmp_path: Path, marking: str, expected: bool) -> None:
    rows = [row("E1", marking=marking), row("E2", marking="Nej")]
    assert protected_of(tmp_path, rows) == {"E1": expected, "E2": False}


def test_not_protected_values_match_case_insensitively(tmp_path: Path) -> None:
    rows = [row("E1", marking="nej"), row("E2", marking="Ja")]
    result = protected_of(
        tmp_path,
        rows,
        protected_identity={"column": "Skyddad", "not_protected_values": ["NEJ", "N"]},
    )
    assert result == {"E1": False, "E2": True}


def test_missing_protected_column_fails_the_source(tmp_path: Path) -> None:
    # Everyone protected would take every account away: the file is broken, not the town.
    header = HEADER[:-1]
    rows = [row("E1")[:-1], row("E2")[:-1]]
    with pytest.raises(SourceError, match="protected-identity column 'Skyddad' is missing"):
        read(write_rows(tmp_path / "elever.csv", rows, header=header))


@pytest.mark.parametrize("marking", ["", "  "])
def test_a_marking_empty_in_every_row_fails_the_source(tmp_path: Path, marking: str) -> None:
    rows = [row("E1", marking=marking), row("E2", marking=marking)]
    with pytest.raises(SourceError, match="empty or missing in all 2 records"):
        read(write_rows(tmp_path / "elever.csv", rows))


def test_marking_values_other_than_the_not_protected_ones_are_counted(tmp_path: Path) -> None:
    rows = [row("E1", marking="Ja"), row("E2", marking="0"), row("E3", marking="0"), row("E4")]
    result = read(write_rows(tmp_path / "elever.csv", rows))
    assert result.marking_values == {"ja": 1, "0": 2}


def test_assume_not_protected_reads_everyone_as_not_protected(tmp_path: Path) -> None:
    header = HEADER[:-1]
    rows = [row("P1")[:-1]]
    result = read(
        write_rows(tmp_path / "personal.csv", rows, header=header),
        protected_identity={"assume_not_protected": True},
    )
    assert result.persons[0].protected is False


@pytest.mark.parametrize("protected_first", [True, False])
def test_one_protected_row_makes_the_person_protected(
    tmp_path: Path, protected_first: bool
) -> None:
    rows = [row("E1", school=SCHOOL_A, marking="Ja"), row("E1", school=SCHOOL_B, marking="Nej")]
    if not protected_first:
        rows.reverse()
    assert protected_of(tmp_path, [*rows, row("E2")]) == {"E1": True, "E2": False}


@pytest.mark.parametrize("broken_first", [True, False])
def test_broken_row_marked_protected_still_protects_the_key(
    tmp_path: Path, broken_first: bool
) -> None:
    rows = [
        row("E1", school=SCHOOL_A, email="not-an-address", marking="Ja"),  # broken, protected
        row("E1", school=SCHOOL_B, marking="Nej"),  # valid, not protected
    ]
    if not broken_first:
        rows.reverse()
    result = read(write_rows(tmp_path / "elever.csv", rows))
    assert len(result.issues) == 1
    person = by_key(result)["E1"]
    assert person.protected is True
    assert [p.school_unit_code for p in person.placements] == [SCHOOL_B]


def test_short_row_without_protected_cell_holds_the_key(tmp_path: Path) -> None:
    # The marking cannot be read: the person is not sent (not even from their valid row), and
    # nothing is taken away from them either: they are held as unreadable.
    rows = [row("E1", school=SCHOOL_A)[:-1], row("E1", school=SCHOOL_B, marking="Nej")]
    result = read(write_rows(tmp_path / "elever.csv", rows))
    assert [i.location for i in result.issues] == ["elever.csv:2"]
    assert "E1" not in by_key(result)
    assert result.unreadable_keys == {"E1"}


def test_broken_rows_with_a_key_are_listed_as_unreadable(tmp_path: Path) -> None:
    rows = [row("E1", email="nope"), row("", "Karin"), row("E3")]
    result = read(write_rows(tmp_path / "elever.csv", rows))
    assert result.unreadable_keys == {"E1"}
    assert set(by_key(result)) == {"E3"}


def test_broken_row_with_undecodable_marking_protects_the_key(tmp_path: Path) -> None:
    path = tmp_path / "elever.csv"
    broken = ";".join(row("E1", school=SCHOOL_A, marking="N?j")).encode().replace(b"?", b"\xff")
    valid = ";".join(row("E1", school=SCHOOL_B, marking="Nej")).encode()
    path.write_bytes(b"\n".join([";".join(HEADER).encode(), broken, valid, b""]))
    result = read(path)
    assert len(result.issues) == 1
    assert by_key(result)["E1"].protected is True


# -- whole-file failures -----------------------------------------------------------------------


def test_missing_file_raises_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError) as info:
        read(tmp_path / "finns-inte.csv")
    assert info.value.source == "students"
    assert "finns-inte.csv" in info.value.reason


def test_missing_key_column_raises_source_error(tmp_path: Path) -> None:
    header = ["ID", *HEADER[1:]]
    path = write_rows(tmp_path / "elever.csv", [row("E1")], header=header)
    with pytest.raises(SourceError) as info:
        read(path)
    assert "Elev-ID" in info.value.reason


def test_wrong_delimiter_raises_source_error_for_missing_columns(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "elever.csv", [row("E1")], delimiter=",")
    with pytest.raises(SourceError, match="header lacks configured column"):
        read(path, delimiter=";")


def test_a_utf8_header_read_as_windows_1252_says_so(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "elever.csv", [row("E1", "Åsa")])
    with pytest.raises(SourceError) as info:
        read(path, encoding="windows-1252")
    assert "header lacks configured column(s) Förnamn" in info.value.reason
    assert "UTF-8 read as Windows-1252" in info.value.reason
    assert "Åsa" not in info.value.reason


def test_a_misspelt_protected_identity_column_is_suggested(tmp_path: Path) -> None:
    path = write_rows(tmp_path / "elever.csv", [row("E1", "Åsa")])
    marking = {"column": "skydad", "not_protected_values": ["Nej"]}
    with pytest.raises(SourceError) as info:
        read(path, protected_identity=marking)
    reason = info.value.reason
    assert "(protected_identity.column); did you mean 'Skyddad'?" in reason
    assert "The header found: Elev-ID, Förnamn, Efternamn, E-post, Skolenhetskod" in reason
    assert "Åsa" not in reason


def test_a_first_line_of_data_is_never_shown(tmp_path: Path) -> None:
    # A row whose cells hold a configured column name inside them ("Skola" in "Skola 1") is
    # still a row: nothing of it is shown.
    path = tmp_path / "elever.csv"
    path.write_text(";".join(row("E1", "Åsa", school_name="Skola 1")) + "\r\n", encoding="utf-8")
    with pytest.raises(SourceError) as info:
        read(path)
    assert "does not look like a header row" in info.value.reason
    assert "Åsa" not in info.value.reason and "Skola 1" not in info.value.reason


def test_empty_file_raises_source_error(tmp_path: Path) -> None:
    path = tmp_path / "elever.csv"
    path.write_bytes(b"")
    with pytest.raises(SourceError) as info:
        read(path)
    assert "empty" in info.value.reason


def test_file_with_only_a_bom_raises_source_error(tmp_path: Path) -> None:
    path = tmp_path / "elever.csv"
    path.write_bytes(b"\xef\xbb\xbf")
    with pytest.raises(SourceError, match="empty"):
        read(path)


# -- an unterminated quote -----------------------------------------------------------------------


def write_unterminated_quote_file(path: Path) -> Path:
    lines = [
        ";".join(HEADER),
        ";".join(row("E1", school=SCHOOL_A, marking="Nej")),  # line 2
        'E2;"Bo;Ek;e2@skola.example.se;11111111;Norrskolan;Nej',  # line 3: quote never closed
        ";".join(row("E1", school=SCHOOL_B, marking="Ja")),  # line 4: E1 marked protected
        ";".join(row("E3")),  # line 5
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_unterminated_quote_does_not_hide_a_later_protected_marking(tmp_path: Path) -> None:
    path = write_unterminated_quote_file(tmp_path / "elever.csv")
    try:
        result = read(path)
    except SourceError:
        return  # failing the whole source is a safe answer too
    assert all(p.protected for p in result.persons if p.source_key == "E1")


def test_unterminated_quote_does_not_silently_drop_later_rows(tmp_path: Path) -> None:
    path = write_unterminated_quote_file(tmp_path / "elever.csv")
    try:
        result = read(path)
    except SourceError:
        return  # failing the whole source is a safe answer too
    assert "E3" in by_key(result) or "E3" in result.unreadable_keys


# -- protected markings on broken rows, seen from scope ------------------------------------------


def scope_config(tmp_path: Path, *paths: Path) -> Config:
    sources = [
        source_config(path, name=path.stem).model_dump(mode="json", exclude_defaults=False)
        for path in paths
    ]
    return Config.model_validate(
        {
            "vendor": {"base_url": "https://scim.example.se", "token": "t"},
            "state": {"path": str(tmp_path / "state.db")},
            "mapping": str(tmp_path / "mapping.yaml"),
            "external_id": {"key": "k"},
            "sources": sources,
        }
    )


def test_only_row_broken_and_marked_protected_still_counts_as_protected(tmp_path: Path) -> None:
    # A roster that blanks the names of a person with protected identity makes their row broken.
    path = write_rows(tmp_path / "elever.csv", [row("E1", given="", marking="Ja"), row("E2")])
    config = scope_config(tmp_path, path)
    scoped = apply_scope(config, [CsvRosterSource(config.sources[0]).read()])
    assert "E1" in {p.source_key for p in scoped.protected}
    assert "E1" not in {p.source_key for p in scoped.held}


def test_broken_protected_row_in_one_source_protects_the_key_in_another(tmp_path: Path) -> None:
    first = write_rows(tmp_path / "elever_a.csv", [row("E1", email="nope", marking="Ja")])
    second = write_rows(tmp_path / "elever_b.csv", [row("E1", school=SCHOOL_B, marking="Nej")])
    config = scope_config(tmp_path, first, second)
    reads = [CsvRosterSource(s).read() for s in config.sources]
    scoped = apply_scope(config, reads)
    assert "E1" not in {p.source_key for p in scoped.persons}
    assert "E1" in {p.source_key for p in scoped.protected}


# -- hostile input ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["=cmd|' /C calc'!A0", "+SUM(A1:A9)", "-2+3", "@HYPERLINK(x)"])
def test_formula_like_values_are_refused_by_line(tmp_path: Path, value: str) -> None:
    rows = [row("E1"), row("E2", given=value), row("E3")]
    result = read(write_rows(tmp_path / "elever.csv", rows))

    assert set(by_key(result)) == {"E1", "E3"}
    (issue,) = result.issues
    assert issue.location == "elever.csv:3"
    assert issue.reason == "given_name starts like a spreadsheet formula (=, +, -, @)"
    assert value not in issue.reason
    assert result.unreadable_keys == {"E2"}  # not sent, and not deprovisioned either


# A roster with every free-text column the source reads.
FULL_HEADER = [*HEADER, "Användarnamn", "Skolform", "Klass", "Befattning"]
FULL_COLUMNS = {
    "key": "Elev-ID",
    "given_name": "Förnamn",
    "family_name": "Efternamn",
    "email": "E-post",
    "username": "Användarnamn",
    "school_unit_code": "Skolenhetskod",
    "school_name": "Skola",
    "school_type": "Skolform",
    "class_name": "Klass",
    "role": "Befattning",
}
FULL_ROW = {
    "given_name": "Anna",
    "family_name": "Ek",
    "email": "e@skola.example.se",
    "username": "anna.ek",
    "school_unit_code": SCHOOL_A,
    "school_name": "Norrskolan",
    "school_type": "GR",
    "class_name": "7B",
    "role": "Elev",
}


def full_row(key: str, **values: str) -> list[str]:
    cells = {**FULL_ROW, "email": f"{key.lower()}@skola.example.se", **values}
    *first, marking = row(key, cells["given_name"], cells["family_name"], email=cells["email"])
    first[4:6] = [cells["school_unit_code"], cells["school_name"]]
    fields = ("username", "school_type", "class_name", "role")
    return [*first, marking, *(cells[f] for f in fields)]


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        (
            "school_name",
            '=HYPERLINK("http://evil.example","x")',
            "school_name starts like a spreadsheet formula (=, +, -, @)",
        ),
        ("school_name", "Norr\u202eskolan", "school_name holds bidirectional text controls"),
        ("class_name", "7B\u2066", "class_name holds bidirectional text controls"),
        ("class_name", "@7B", "class_name starts like a spreadsheet formula (=, +, -, @)"),
        ("role", "=cmd|' /C calc'!A0", "role starts like a spreadsheet formula (=, +, -, @)"),
        ("role", "Lä\u200brare", "role holds zero-width characters"),
        ("school_type", "G\u200dR", "school_type holds zero-width characters"),
        (
            "school_unit_code",
            "=1+2",
            "school_unit_code starts like a spreadsheet formula (=, +, -, @)",
        ),
        ("given_name", "Anna\u202eEk", "given_name holds bidirectional text controls"),
        ("family_name", "E\u200bk", "family_name holds zero-width characters"),
        ("family_name", "Ek\u2069", "family_name holds bidirectional text controls"),
        ("username", "anna\ufeff.ek", "username holds zero-width characters"),
        ("email", "e2\u200b@skola.example.se", "email holds zero-width characters"),
        ("given_name", "An\x85na", "given_name holds control characters (a line break?)"),
    ],
)
def test_unsafe_free_text_in_any_column_is_refused_by_line(
    tmp_path: Path, field: str, value: str, reason: str
) -> None:
    rows = [full_row("E1"), full_row("E2", **{field: value}), full_row("E3")]
    path = tmp_path / "elever.csv"
    with path.open("w", encoding="utf-8", newline="") as out:
        csv.writer(out, delimiter=";").writerows([FULL_HEADER, *rows])

    result = read(path, columns=FULL_COLUMNS)

    assert set(by_key(result)) == {"E1", "E3"}
    assert [(i.location, i.reason) for i in result.issues] == [("elever.csv:3", reason)]
    assert result.unreadable_keys == {"E2"}  # not sent, and not deprovisioned either
    assert {s.name for s in result.schools} == {"Norrskolan"}


def test_a_repeated_key_with_another_name_is_refused_and_the_first_kept(tmp_path: Path) -> None:
    rows = [
        row("E1", "Anna", "Ek", school=SCHOOL_A),
        row("E1", "Anna", "Ek", school=SCHOOL_B),  # the same person at a second school: fine
        row("E1", "Bertil", "Berg", school=SCHOOL_B),  # another person under the same key
    ]
    result = read(write_rows(tmp_path / "elever.csv", rows))

    person = by_key(result)["E1"]
    assert (person.given_name, person.family_name) == ("Anna", "Ek")
    assert [p.school_unit_code for p in person.placements] == [SCHOOL_A, SCHOOL_B]
    (issue,) = result.issues
    assert issue.location == "elever.csv:4"
    assert issue.reason == "the key repeats line 2 with a different name or e-mail"


def test_embedded_newlines_are_refused_and_keep_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "elever.csv"
    path.write_text(
        ";".join(HEADER)
        + "\n"
        + 'E1;"Anna\nMaria";Ek;e1@skola.example.se;11111111;Norrskolan;Nej\n'
        + "E2;Bo;;not-an-address;11111111;Norrskolan;Nej\n",
        encoding="utf-8",
    )
    result = read(path)
    assert by_key(result) == {}
    assert [(i.location, i.reason) for i in result.issues] == [
        ("elever.csv:2", "given_name holds control characters (a line break?)"),
        ("elever.csv:4", "the required field family_name is empty"),
    ]
