"""A roster whose header does not match the config, through `connector check` and `plan` on real
files: the column meant, the key that names it, the header found, a delimiter that looks
wrong - and never a row, which is personal data."""

from __future__ import annotations

from tests.support.rosters import STUDENT_HEADER, student
from tests.support.workspace import Workspace

ROWS = [student("E1", "Åsa", "Berg"), student("E2", "Östen", "Ek", klass="8B")]
PERSONAL = ("Åsa", "Östen", "Berg", "e1@edu.example.se", "8B")


def test_check_and_plan_suggest_the_column_meant(workspace: Workspace) -> None:
    workspace.student_columns = {"class_name": "Klas", "school_year": "Årskurs"}
    workspace.students(ROWS)

    checked = workspace.run("check")
    planned = workspace.run("plan")

    assert checked.exit_code == 1
    expected = "column 'Klas' (columns.class_name) is not in the header; did you mean 'Klass'?"
    assert expected in checked.stdout
    assert "the header found: " + ", ".join(STUDENT_HEADER) in checked.stdout
    assert planned.exit_code == 1
    assert f"SOURCE FAILED students: students.csv: {expected}" in planned.stdout
    for text in PERSONAL:
        assert text not in checked.stdout + checked.stderr + planned.stdout + planned.stderr


def test_check_says_the_delimiter_looks_wrong(workspace: Workspace) -> None:
    workspace.students(ROWS, delimiter=",")  # the config says ";"

    checked = workspace.run("check")

    assert checked.exit_code == 1
    assert "the header has 1 column 'Elev-ID,Förnamn,Efternamn,E-post," in checked.stdout
    assert "is the delimiter ','? (configured: ';')" in checked.stdout
    for text in PERSONAL:
        assert text not in checked.stdout + checked.stderr


def test_a_file_without_a_header_row_shows_no_line_of_it(workspace: Workspace) -> None:
    workspace.students(ROWS)
    lines = workspace.students_csv.read_text(encoding="utf-8").splitlines(keepends=True)
    workspace.students_csv.write_text("".join(lines[1:]), encoding="utf-8")  # rows only

    checked = workspace.run("check")

    assert checked.exit_code == 1
    assert "does not look like a header row" in checked.stdout
    assert "did you mean" not in checked.stdout
    for text in PERSONAL:
        assert text not in checked.stdout + checked.stderr
