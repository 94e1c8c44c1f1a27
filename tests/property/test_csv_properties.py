"""Property tests for the roster CSV source: random files, hostile cells, several encodings.

Each generated file has a correct header, followed by random rows written either by
`csv.writer` (valid CSV: quoting is balanced, so a standard CSV parser defines the records)
or by a naive join (stray quotes and all). Files are UTF-8, Windows-1252 or both (rows from
two systems pasted together), with a Swedish or a plain ASCII header. Random bytes are
sometimes inserted after the header. The oracle for "which records does this file hold" is
the standard library's reader over the text decoded by the oracle's own reading of the
encoding rule, read by the file's own line breaks (\\n, \\r\\n, \\r).
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from connector.config import CsvSourceConfig
from connector.errors import SourceError
from connector.people.model import REASONS, SourceRead, unsafe_text, unsafe_text_screen
from connector.sources.csv_roster import MAX_FIELD_LENGTH, CsvRosterSource

FILE_NAME = "elever.csv"
SOURCE_NAME = "students"
COLUMNS = {
    "key": "Elev-ID",
    "given_name": "Förnamn",
    "family_name": "Efternamn",
    "email": "E-post",
    "school_unit_code": "Skolenhetskod",
    "school_name": "Skola",
}
MARKING = "Skyddad"
FIELDS = [*COLUMNS, "marking"]  # logical fields of a row, in the default column order
HEADER_OF = {**COLUMNS, "marking": MARKING}
# An export whose header is plain ASCII: only its rows can tell UTF-8 from Windows-1252.
ASCII_COLUMNS = {**COLUMNS, "given_name": "Fornamn"}
ASCII_HEADER_OF = {**ASCII_COLUMNS, "marking": MARKING}

# Characters str.splitlines() treats as line breaks but CSV (and editors, and `wc -l`) do not.
# The main properties leave them out; test_extra_line_separators_* is about them.
EXTRA_LINE_SEPARATORS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"

# The fixed text of every issue reason the source (and the csv module under it) can give. A
# cell value that happens to be a piece of this text is not personal data leaking.
REASON_TEMPLATES = " | ".join(
    [
        "cannot be parsed (unexpected end of data)",
        "cannot be parsed (';' expected after '\"')",
        "cannot be parsed (',' expected after '\"')",
        "cannot be parsed (field larger than field limit (131072))",
        "cannot be parsed (new-line character seen in unquoted field - "
        "do you need to open the file with newline=''?)",
        "has a quote that is never closed",
        "has 99 columns, the header has 7",
        "holds bytes that are not valid utf-8",
        "holds bytes that are not valid windows-1252",
        *(
            f"{field} {reason}"
            for field in ("given_name", "family_name", "email", "school_unit_code", "school_name")
            for reason in REASONS.values()
        ),
        f"a field is longer than {MAX_FIELD_LENGTH} characters",
        "the key column 'Elev-ID' is empty",
        "the required field given_name is empty",
        "the required field family_name is empty",
        "the required field school_unit_code is empty",
        "the e-mail address is not valid",
        "the key repeats line 99 with a different name or e-mail",
    ]
)

NOT_PROTECTED_CHOICES = [("Nej",), ("nej", "N"), (" NEJ ",), ("Nej", "0", "false")]


def source_config(
    path: Path,
    delimiter: str,
    encoding: str,
    not_protected: tuple[str, ...],
    columns: dict[str, str] = COLUMNS,
) -> CsvSourceConfig:
    return CsvSourceConfig.model_validate(
        {
            "type": "csv",
            "name": SOURCE_NAME,
            "path": path,
            "kind": "student",
            "delimiter": delimiter,
            "encoding": encoding,
            "columns": columns,
            "protected_identity": {
                "column": MARKING,
                "not_protected_values": list(not_protected),
            },
        }
    )


def read_bytes(
    data: bytes,
    delimiter: str,
    encoding: str,
    not_protected: tuple[str, ...],
    columns: dict[str, str] = COLUMNS,
) -> SourceRead:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / FILE_NAME
        path.write_bytes(data)
        config = source_config(path, delimiter, encoding, not_protected, columns)
        return CsvRosterSource(config).read()


# -- the oracle --------------------------------------------------------------------------------


def valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def oracle_encoding(data: bytes) -> str:
    """`auto`: the lines holding bytes beyond ASCII vote for UTF-8 by being valid UTF-8, or
    against it; the header alone decides when it holds any; a tie is UTF-8."""
    lines = re.split(rb"\r\n|\r|\n", data)
    beyond_ascii = [line for line in lines if any(byte > 0x7F for byte in line)]
    if lines[0] in beyond_ascii:
        beyond_ascii = [lines[0]]
    invalid = [line for line in beyond_ascii if not valid_utf8(line)]
    return "windows-1252" if 2 * len(invalid) > len(beyond_ascii) else "utf-8"


def oracle_decode(data: bytes, encoding: str) -> str:
    """How the file's bytes read as text (undecodable bytes as lone surrogates)."""
    if encoding == "auto":
        encoding = oracle_encoding(data)
    if encoding == "utf-8":
        return data.decode("utf-8-sig", errors="surrogateescape")
    return data.decode("cp1252", errors="surrogateescape")


def mojibake_at(value: str, start: int) -> bool:
    """Whether 2 to 4 characters from `start` are how Windows-1252 shows the bytes of one
    UTF-8 character ("Ã¥" for "å", "â€“" for "–")."""
    for size in (2, 3, 4):
        window = value[start : start + size]
        try:
            if len(window) == size and len(window.encode("cp1252").decode("utf-8")) == 1:
                return True
        except UnicodeError:
            continue
    return False


def oracle_mojibake(value: str) -> bool:
    return any(mojibake_at(value, start) for start in range(len(value)))


def physical_lines(text: str) -> list[str]:
    """The file's lines as CSV and editors count them: ended by \\n, \\r\\n or \\r."""
    return io.StringIO(text, newline="").readlines()


@dataclass(frozen=True)
class Record:
    start: int  # 1-based line where the record starts
    end: int
    cells: list[str]


def standard_records(text: str, delimiter: str) -> list[Record] | None:
    """The records a standard CSV reader finds, with their lines; None if it cannot parse."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records = []
    previous = 0
    try:
        for cells in reader:
            records.append(Record(previous + 1, reader.line_num, cells))
            previous = reader.line_num
    except csv.Error:
        return None
    return records


BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff"
# The configured columns whose text can reach a vendor.
FREE_TEXT = ("given_name", "family_name", "email", "school_unit_code", "school_name")


def oracle_reason(value: str) -> str | None:
    """The text-safety rule written out: a spreadsheet formula, or else the first character
    that is a control character or line separator, a bidirectional text control or a
    zero-width character, or that starts mojibake."""
    if value.lstrip()[:1] in ("=", "+", "-", "@"):
        return "formula"
    for start, character in enumerate(value):
        if unicodedata.category(character) in ("Cc", "Zl", "Zp"):
            return "control"
        if character in BIDI_CONTROLS:
            return "bidi"
        if character in ZERO_WIDTH:
            return "zero_width"
        if mojibake_at(value, start):
            return "mojibake"
    return None


def oracle_unsafe(value: str) -> bool:
    return oracle_reason(value) is not None


def undecodable(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def valid_email(value: str) -> bool:
    try:
        validate_email(value, check_deliverability=False)
    except EmailNotValidError:
        return False
    return True


@dataclass(frozen=True)
class Layout:
    """Where each logical field sits in the header."""

    header: list[str]

    def index(self, field: str) -> int:
        name = HEADER_OF[field] if HEADER_OF[field] in self.header else ASCII_HEADER_OF[field]
        return self.header.index(name)

    @property
    def columns(self) -> dict[str, str]:
        """The source's column config for this header."""
        return COLUMNS if HEADER_OF["given_name"] in self.header else ASCII_COLUMNS

    def cell(self, cells: list[str], field: str) -> str | None:
        position = self.index(field)
        return cells[position] if position < len(cells) else None

    def key(self, cells: list[str]) -> str:
        return (self.cell(cells, "key") or "").strip()

    def passes_row_checks(self, cells: list[str]) -> bool:
        """Whether a record, on its own, is one the source must accept (the config's required
        fields are the defaults; no free text may fail the text-safety rule)."""
        if len(cells) != len(self.header):
            return False
        if any(undecodable(c) or len(c) > MAX_FIELD_LENGTH for c in cells):
            return False
        required = ("key", "given_name", "family_name", "school_unit_code")
        if any(not (self.cell(cells, f) or "").strip() for f in required):
            return False
        if any(oracle_unsafe((self.cell(cells, f) or "").strip()) for f in FREE_TEXT):
            return False
        email = (self.cell(cells, "email") or "").strip()
        return not email or valid_email(email)

    def identity(self, cells: list[str]) -> tuple[str, str, str | None]:
        email = (self.cell(cells, "email") or "").strip()
        normalized = validate_email(email, check_deliverability=False).normalized if email else None
        given, family = (self.cell(cells, f) or "" for f in ("given_name", "family_name"))
        return given.strip(), family.strip(), normalized

    def broken_lines(self, records: list[Record]) -> set[int]:
        """Where the records the source must report start: each one that fails the row checks,
        and each repeat of a key with another name or e-mail than the key's first good row."""
        broken = set()
        first: dict[str, tuple[str, str, str | None]] = {}
        for record in records:
            if not record.cells or blank(record.cells):
                continue
            if not self.passes_row_checks(record.cells):
                broken.add(record.start)
                continue
            identity = self.identity(record.cells)
            if first.setdefault(self.key(record.cells), identity) != identity:
                broken.add(record.start)
        return broken


def marked_protected(marking: str | None, not_protected: tuple[str, ...]) -> bool:
    """Fail closed: a missing cell, an empty one or any unknown value means protected."""
    if marking is None:
        return True
    allowed = {v.strip().casefold() for v in not_protected}
    value = marking.strip().casefold()
    return not value or value not in allowed


def blank(cells: list[str]) -> bool:
    return all(not c.strip() for c in cells)


# -- strategies --------------------------------------------------------------------------------

HOSTILE_CELLS = [
    "",
    " ",
    "  \t ",
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example";"klicka")',
    "+46701234567",
    "+SUM(A1:A9)",
    "@SUM(A1)",
    "-2+3+cmd|' /C calc'!A0",
    'Anna "Annie" Ek',
    '"',
    '""',
    'slut"',
    "a;b;c",
    "a,b,c",
    "rad ett\nrad två",
    "rad ett\r\nrad två",
    "bara\rvagnretur",
    "\n",
    "Åsa Öberg-Ärlig",
    "åäö ÅÄÖ éü",
    "Zoë Ñandú Straße",
    "李小龍",
    "Мария",
    "😀 glad",
    "\x00nolltecken",
    "\x07\x08\x1b[31mröd",
    "\ufeffbom-inuti",
    "Anna\u202eEk",
    "gpj.\u202eexe",
    "Ek\u2066",
    "Li\u200bEk",
    "An\u200dna",
    "ord\u2060fog",
    "An\x85na",
    "rad\u2028två",
    "HÃ¥kansson",
    "BjÃ¶rkskolan",
    "Ã…sa Ã–berg",
    "Skola â€“ Norr",
    "Lång" * 300,
    "x" * (MAX_FIELD_LENGTH + 1),
    "y" * MAX_FIELD_LENGTH,
]
SPECIAL_ALPHABET = list(";,\"\n\r \taåäöÅÄÖé€=+@-|!'\x00\x01\x7fNejJaÃ¥¶â\u202e\u200b\x85")

random_text = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cs",), blacklist_characters=EXTRA_LINE_SEPARATORS
    ),
    max_size=15,
)
special_text = st.text(alphabet=st.sampled_from(SPECIAL_ALPHABET), max_size=12)
any_cell = st.one_of(st.sampled_from(HOSTILE_CELLS), random_text, special_text)

# Plausible values, among them some that break a row (an invalid e-mail, an empty name) and
# every kind of protected marking; duplicates of the few keys are common.
PLAUSIBLE: dict[str, st.SearchStrategy[str]] = {
    "key": st.sampled_from(["E1", "E2", "E3", "E4", " E1 ", "e1", "E2\t"]),
    "given_name": st.sampled_from(["Anna", "Åsa", "Bo", "Zoë", "李"]),
    "family_name": st.sampled_from(["Ek", "Öberg", "Li", "Ärlig-Åström"]),
    "email": st.sampled_from(
        [
            "e1@skola.example.se",
            " E2@Skola.Example.SE ",
            "åsa.öberg@skola.example.se",
            "",
            "not-an-email",
        ]
    ),
    "school_unit_code": st.sampled_from(["11111111", "22222222", "33333333"]),
    "school_name": st.sampled_from(["Norrskolan", "Söderskolan", ""]),
    "marking": st.sampled_from(
        ["Nej", "nej", " NEJ ", "N", "0", "false", "Ja", "ja", "", "  ", "Kanske", "Nej!"]
    ),
}


@st.composite
def hostile_rows(draw: st.DrawFn, header: list[str]) -> list[str]:
    """A plausible row with a few cells made hostile, and sometimes a wrong column count."""
    values = {f: draw(PLAUSIBLE[f]) for f in FIELDS}
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=3)):
        values[field] = draw(any_cell)
    cells = [values[field] for field in sorted(FIELDS, key=Layout(header).index)]
    shape = draw(st.sampled_from(["full"] * 6 + ["short", "long", "empty"]))
    if shape == "short":
        cells = cells[: draw(st.integers(0, len(cells) - 1))]
    elif shape == "long":
        cells += draw(st.lists(any_cell, min_size=1, max_size=3))
    elif shape == "empty":
        cells = [""] * draw(st.integers(0, len(cells) + 1))
    return cells


@dataclass
class CsvCase:
    data: bytes
    header: list[str]
    rows: list[list[str]]  # as generated (after being made encodable)
    delimiter: str
    encoding: str  # the config's encoding
    not_protected: tuple[str, ...]
    valid_csv: bool  # written by csv.writer, with only non-ASCII bytes mixed in

    @property
    def layout(self) -> Layout:
        return Layout(self.header)


def encodable(value: str, codec: str) -> str:
    return value.encode(codec, errors="replace").decode(codec)


@st.composite
def csv_cases(draw: st.DrawFn, *, max_rows: int = 12) -> CsvCase:
    delimiter = draw(st.sampled_from([";", ","]))
    # "mixed": rows from a UTF-8 and a Windows-1252 system pasted into one file.
    file_encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "mixed"]))
    codec = "cp1252" if file_encoding == "cp1252" else "utf-8"
    config_encoding = draw(
        st.sampled_from(
            ["utf-8", "windows-1252", "auto"]
            if file_encoding == "mixed"
            else ["windows-1252", "auto"]
            if codec == "cp1252"
            else ["utf-8", "auto"]
        )
    )
    names = draw(st.sampled_from([HEADER_OF, ASCII_HEADER_OF]))
    header = draw(st.permutations([names[f] for f in FIELDS]))
    rows = draw(st.lists(hostile_rows(header), max_size=max_rows))

    def codec_of_a_line() -> str:
        return draw(st.sampled_from(["utf-8", "cp1252"])) if file_encoding == "mixed" else codec

    codecs = [codec_of_a_line() for _ in rows]
    rows = [[encodable(cell, c) for cell in row] for row, c in zip(rows, codecs, strict=True)]
    terminator = draw(st.sampled_from(["\n", "\r\n"]))
    valid_csv = draw(st.sampled_from([True, True, True, False]))
    if valid_csv:
        quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
        lines = []
        for row in rows:
            out = io.StringIO()
            csv.writer(
                out, delimiter=delimiter, lineterminator=terminator, quoting=quoting
            ).writerow(row)
            lines.append(out.getvalue())
        body = b"".join(line.encode(c) for line, c in zip(lines, codecs, strict=True))
    else:
        ending = terminator.encode()
        body = ending.join(
            delimiter.join(row).encode(c) for row, c in zip(rows, codecs, strict=True)
        )
        if rows and draw(st.booleans()):
            body += ending
    head = (delimiter.join(header) + terminator).encode(codec_of_a_line())
    if file_encoding == "utf-8-sig":
        head = b"\xef\xbb\xbf" + head
    rest = bytearray(body)
    # Random bytes after the header; in valid CSV only non-ASCII ones, which cannot change
    # where records and fields end (in UTF-8 and in Windows-1252 alike).
    byte = st.integers(0x80, 0xFF) if valid_csv else st.integers(0, 0xFF)
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 2, 3]))):
        position = draw(st.integers(0, len(rest)))
        rest[position:position] = bytes([draw(byte)])
    not_protected = draw(st.sampled_from(NOT_PROTECTED_CHOICES))
    return CsvCase(
        head + bytes(rest), header, rows, delimiter, config_encoding, not_protected, valid_csv
    )


def read_case(case: CsvCase) -> SourceRead | SourceError:
    try:
        return read_bytes(
            case.data, case.delimiter, case.encoding, case.not_protected, case.layout.columns
        )
    except SourceError as exc:
        return exc


def records_are_unambiguous(case: CsvCase, text: str) -> list[Record] | None:
    """The standard records, when the source must see exactly these.

    Not when a record spans lines and has the wrong number of columns: the source then takes
    its opening quote for one that is never closed and resumes reading on the next line, that
    is inside the quoted field (see test_recovery_inside_a_quoted_field_hides_a_protected_row).
    """
    if not case.valid_csv or any(ch in text for ch in EXTRA_LINE_SEPARATORS):
        return None
    records = standard_records(text, case.delimiter)
    if records is None:
        return None
    columns = len(case.header)
    if any(r.end > r.start and len(r.cells) != columns for r in records):
        return None
    return records


LOCATION = re.compile(rf"^{re.escape(FILE_NAME)}:(\d+)$")


def issue_lines(result: SourceRead) -> list[int]:
    lines = []
    for issue in result.issues:
        match = LOCATION.match(issue.location)
        assert match, issue.location
        lines.append(int(match.group(1)))
    return lines


# -- properties --------------------------------------------------------------------------------

HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much]
FAST = settings(max_examples=200, deadline=None, suppress_health_check=HEALTH, database=None)


# Found by Hypothesis: the only "Nej" is in a record over two lines with a column too many,
# which the reader does not trust; with no other marking the source fails as a whole.
SWALLOWED_MARKING = CsvCase(
    data=(
        "Elev-ID;Förnamn;Efternamn;E-post;Skolenhetskod;Skola;Skyddad\n"
        "E1;Anna;Ek;e1@skola.example.se;11111111;Norrskolan;\n"
        "E1;Anna;Ek;e1@skola.example.se;11111111;Norrskolan;\n"
        '"rad ett\nrad två";Anna;Ek;e1@skola.example.se;11111111;Norrskolan;Nej;\n'
    ).encode(),
    header=["Elev-ID", "Förnamn", "Efternamn", "E-post", "Skolenhetskod", "Skola", "Skyddad"],
    rows=[["E1", "Anna", "Ek", "e1@skola.example.se", "11111111", "Norrskolan", ""]] * 2
    + [
        [
            "rad ett\nrad två",
            "Anna",
            "Ek",
            "e1@skola.example.se",
            "11111111",
            "Norrskolan",
            "Nej",
            "",
        ]
    ],
    delimiter=";",
    encoding="utf-8",
    not_protected=("Nej",),
    valid_csv=True,
)


@FAST
@given(csv_cases())
@example(SWALLOWED_MARKING)
def test_reading_raises_only_source_error_and_only_for_the_header(case: CsvCase) -> None:
    outcome = read_case(case)  # anything but SourceError propagates and fails the test
    event(f"outcome: {type(outcome).__name__}")
    text = oracle_decode(case.data, case.encoding)
    header_line = case.delimiter.join(case.header)
    first_line = physical_lines(text)[0].rstrip("\r\n")
    if first_line == header_line and isinstance(outcome, SourceError):
        # A file whose header reads right fails only when no record carries a marking:
        # nobody in it can be shown not to be protected.
        assert "protected-identity marking" in outcome.reason, outcome
        records = standard_records(text, case.delimiter)
        if records is not None:
            layout = Layout(case.header)
            # A record over several lines with the wrong number of columns may be a stray
            # quote that swallowed the lines after it: nothing in it is trusted, its marking
            # neither (the reader's rule, see connector/sources/csv_records.py).
            columns = len(case.header)
            trusted = [r for r in records[1:] if not (r.end > r.start and len(r.cells) != columns)]
            assert not any((layout.cell(r.cells, "marking") or "").strip() for r in trusted)
    elif first_line == header_line:
        # Whatever the rows hold, a file whose header reads right is read.
        assert isinstance(outcome, SourceRead), outcome
        assert outcome.source == SOURCE_NAME
    else:
        # Only the header can fail the file: here a header in one encoding read in the other
        # ("FÃ¶rnamn"), as configured; `auto` reads a header by its own bytes.
        assert case.encoding != "auto"
        assert isinstance(outcome, SourceError), outcome
        assert "header" in outcome.reason


@FAST
@given(csv_cases())
def test_issues_name_a_line_of_the_file_and_never_its_content(case: CsvCase) -> None:
    result = read_case(case)
    if isinstance(result, SourceError):
        return
    text = oracle_decode(case.data, case.encoding)
    line_count = len(physical_lines(text))
    lines = issue_lines(result)
    if not any(ch in text for ch in EXTRA_LINE_SEPARATORS):
        for line in lines:
            assert 2 <= line <= line_count, (line, line_count)
    assert all(i.source == SOURCE_NAME for i in result.issues)

    cells = {c for row in case.rows for c in row}
    cells |= {c for r in standard_records(text, case.delimiter) or [] for c in r.cells}
    cells |= {c.strip() for c in cells}
    personal = {c for c in cells if len(c) >= 4 and c not in REASON_TEMPLATES}
    for issue in result.issues:
        for value in personal:
            assert value not in issue.reason, (value, issue.reason)


@FAST
@given(csv_cases())
def test_a_key_marked_protected_anywhere_is_never_an_unprotected_person(case: CsvCase) -> None:
    result = read_case(case)
    if isinstance(result, SourceError):
        return
    text = oracle_decode(case.data, case.encoding)
    records = records_are_unambiguous(case, text)
    event(f"unambiguous records: {records is not None}")
    if records is None:
        # No CSV structure to rely on: then every physical line is a row, when no quote
        # character can join lines into one record.
        if '"' in text or any(ch in text for ch in EXTRA_LINE_SEPARATORS):
            return
        lines = physical_lines(text)[1:]
        rows = [line.rstrip("\r\n").split(case.delimiter) for line in lines]
    else:
        rows = [r.cells for r in records[1:]]
    layout = case.layout
    tainted = {
        layout.key(cells)
        for cells in rows
        if layout.key(cells) and marked_protected(layout.cell(cells, "marking"), case.not_protected)
    }
    unprotected = {p.source_key for p in result.persons if not p.protected}
    event(f"keys marked protected: {bool(tainted)}, unprotected persons: {bool(unprotected)}")
    assert not tainted & unprotected


@FAST
@given(csv_cases())
def test_every_record_is_a_person_or_an_issue_at_its_line(case: CsvCase) -> None:
    result = read_case(case)
    if isinstance(result, SourceError):
        return
    text = oracle_decode(case.data, case.encoding)
    records = records_are_unambiguous(case, text)
    event(f"unambiguous records: {records is not None}")
    if records is None:
        return
    assert [c.strip() for c in records[0].cells] == case.header
    layout = case.layout
    persons = {p.source_key for p in result.persons}
    expected_issue_lines = layout.broken_lines(records[1:])
    for record in records[1:]:
        if record.cells and not blank(record.cells) and record.start not in expected_issue_lines:
            # A good record: its person is read (or held, for a row of theirs that is too
            # short to carry the marking).
            assert layout.key(record.cells) in persons | result.unreadable_keys
    # Exactly the broken records are reported, each once, at the line it starts on.
    lines = issue_lines(result)
    event(f"persons: {bool(persons)}, issues: {bool(lines)}")
    assert sorted(lines) == sorted(expected_issue_lines)
    # Nobody is made up: every person is the key of some record.
    keys = {layout.key(r.cells) for r in records[1:]}
    assert persons <= keys


# -- the text-safety rule ------------------------------------------------------------------------

# Characters near every edge of the rule: formula starts, controls and separators, bidi and
# zero-width characters and their neighbours, and what Windows-1252 shows for bytes 0x80-0xFF.
EDGES = list("=+-@ \t\n\r\x00\x1f\x7f\x80\x9f\xa0\u2028\u2029\u200e\u2061\u206a\u202fÅå")
INVISIBLE = list(BIDI_CONTROLS + ZERO_WIDTH)
CP1252_HIGH = list(bytes(range(0x80, 0x100)).decode("cp1252", errors="ignore"))
# A list of characters joined, not st.text: as an alphabet, the sets would merge into one
# that hardly ever draws the few characters above U+2000 that matter here.
rule_text = st.lists(
    st.one_of(
        st.sampled_from(EDGES),
        st.sampled_from(INVISIBLE),
        st.sampled_from(CP1252_HIGH),
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\uffff"),
    ),
    max_size=8,
).map("".join)


@FAST
@example("Ã¥")
@example("â€“")
@example("ð\u0178˜€")  # U+1F600 as Windows-1252 shows its four bytes
@example("í\u0178¿")  # ED 9F BF: U+D7FF, the last character before the surrogates
@example("í\xa0€")  # ED A0 80 would be a surrogate: not UTF-8
@example("ô‘€€")  # F4 91 80 80 would be beyond U+10FFFF: not UTF-8
@given(rule_text)
def test_unsafe_text_is_the_rule_written_out(value: str) -> None:
    reason = unsafe_text(value)
    expected = oracle_reason(value)
    event(f"refused: {expected}")
    assert reason == (None if expected is None else REASONS[expected])


@FAST
@example(["Anna", " =1+1"])
@example(["\u2060"])
@example(["Åsa", "HÃ¥kan"])
@given(st.lists(rule_text, max_size=6))
def test_the_hot_path_screen_finds_every_value_the_rule_refuses(values: list[str]) -> None:
    screen = unsafe_text_screen("\uffff")
    for value in values:
        if unsafe_text(value):
            assert screen.search("\uffff" + value), value
    if any(unsafe_text(v) for v in values):
        assert screen.search("\uffff" + "\uffff".join(values))


# -- a well-formed file round-trips -------------------------------------------------------------


@dataclass(frozen=True)
class ValidPerson:
    key: str
    given_name: str
    family_name: str
    email: str | None
    codes: tuple[str, ...]
    markings: tuple[str, ...]  # one per row (per school code)


CP1252_LETTERS = [c for c in bytes(range(256)).decode("cp1252", errors="ignore") if c.isalpha()]
ASCII_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def name_strategy(letters: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    part = st.text(alphabet=letters, min_size=1, max_size=10)
    joined = st.builds(
        lambda a, sep, b: f"{a}{sep}{b}", part, st.sampled_from([" ", "-", "'"]), part
    )
    # Random letters can spell mojibake ("Ã¥"), which is no name: the source refuses it.
    return (part | joined).filter(lambda name: not oracle_mojibake(name))


NAMES = {
    "utf-8": name_strategy(st.characters(categories=("L",)) | st.sampled_from(list("åäöÅÄÖ"))),
    "cp1252": name_strategy(st.sampled_from(CP1252_LETTERS)),
}
email_part = st.text(alphabet=ASCII_ALNUM, min_size=1, max_size=8)
emails = st.builds(
    lambda first, sep, last, domain: f"{first}{sep}{last}@{domain}",
    email_part,
    st.sampled_from(["", ".", "_", "-", "+"]),
    email_part,
    st.sampled_from(["skola.example.se", "Kommun.SE", "elev.edu.example.org"]),
)
codes = st.text(alphabet="0123456789", min_size=8, max_size=8)
keys = st.builds(
    lambda prefix, digits: prefix + digits,
    st.sampled_from(["", "E", "P", "ST"]),
    st.text(alphabet="0123456789", min_size=1, max_size=6),
)
NOT_PROTECTED_MARKINGS = ["Nej", "nej", " NEJ ", "Nej "]
PROTECTED_MARKINGS = ["Ja", "ja", "", "J", "Skyddad", "Nej!", "N"]


@st.composite
def valid_people(draw: st.DrawFn, codec: str) -> list[ValidPerson]:
    people = []
    for key in draw(st.lists(keys, unique=True, max_size=8)):
        person_codes = tuple(draw(st.lists(codes, min_size=1, max_size=3, unique=True)))
        protected = draw(st.booleans())
        markings = [draw(st.sampled_from(NOT_PROTECTED_MARKINGS)) for _ in person_codes]
        if protected:
            markings[draw(st.integers(0, len(markings) - 1))] = draw(
                st.sampled_from(PROTECTED_MARKINGS)
            )
        people.append(
            ValidPerson(
                key,
                draw(NAMES[codec]),
                draw(NAMES[codec]),
                draw(st.none() | emails),
                person_codes,
                tuple(markings),
            )
        )
    return people


@settings(max_examples=200, deadline=None, suppress_health_check=HEALTH, database=None)
@given(data=st.data())
def test_a_well_formed_file_round_trips(data: st.DataObject) -> None:
    delimiter = data.draw(st.sampled_from([";", ","]), label="delimiter")
    file_encoding = data.draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    codec = "cp1252" if file_encoding == "cp1252" else "utf-8"
    encoding = data.draw(
        st.sampled_from(["windows-1252", "auto"] if codec == "cp1252" else ["utf-8", "auto"])
    )
    names = data.draw(st.sampled_from([HEADER_OF, ASCII_HEADER_OF]))
    header = data.draw(st.permutations([names[f] for f in FIELDS]), label="header")
    layout = Layout(header)
    people = data.draw(valid_people(codec), label="people")
    rows: list[list[str]] = []
    for person in people:
        for code, marking in zip(person.codes, person.markings, strict=True):
            values: dict[str, Any] = {
                "key": person.key,
                "given_name": person.given_name,
                "family_name": person.family_name,
                "email": person.email or "",
                "school_unit_code": code,
                "school_name": f"Skola {code}",
                "marking": marking,
            }
            rows.append([values[f] for f in sorted(FIELDS, key=layout.index)])
    rows = data.draw(st.permutations(rows), label="row order")
    out = io.StringIO()
    writer = csv.writer(
        out,
        delimiter=delimiter,
        lineterminator=data.draw(st.sampled_from(["\n", "\r\n"])),
        quoting=data.draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL])),
    )
    writer.writerow(header)
    writer.writerows(rows)
    raw = out.getvalue().encode(codec)
    if file_encoding == "utf-8-sig":
        raw = b"\xef\xbb\xbf" + raw

    if rows and not any(m.strip() for p in people for m in p.markings):
        # Every marking cell empty: nobody can be shown not to be protected, so the file
        # fails as a whole (connector.sources.marking) rather than taking every account away.
        with pytest.raises(SourceError, match="protected-identity marking"):
            read_bytes(raw, delimiter, encoding, NOT_PROTECTED_CHOICES[0], layout.columns)
        return
    result = read_bytes(raw, delimiter, encoding, NOT_PROTECTED_CHOICES[0], layout.columns)

    assert result.issues == []
    assert result.unreadable_keys == set()
    assert result.rows_read == len(rows)
    got = {p.source_key: p for p in result.persons}
    assert set(got) == {p.key for p in people}
    for person in people:
        read = got[person.key]
        assert (read.given_name, read.family_name) == (person.given_name, person.family_name)
        expected_email = (
            validate_email(person.email, check_deliverability=False).normalized
            if person.email
            else None
        )
        assert read.email == expected_email
        assert {p.school_unit_code for p in read.placements} == set(person.codes)
        marked = any(marked_protected(m, NOT_PROTECTED_CHOICES[0]) for m in person.markings)
        assert read.protected is marked
    assert {s.code for s in result.schools} == {c for p in people for c in p.codes}


# -- product bugs, kept as failing tests ---------------------------------------------------------

HEADER_LINE = ";".join(HEADER_OF[f] for f in FIELDS)


def read_text(text: str) -> SourceRead:
    return read_bytes(text.encode(), ";", "utf-8", ("Nej",))


@settings(max_examples=200, deadline=None, database=None)
@example(
    rows=[
        ["E1", "Anna", "Ek", "e1@skola.example.se", "11111111", "Norrskolan"],
        ["E1", "Anna", "Ek", "e1@skola.example.se", "22222222", "Söderskolan", "Ja"],
    ]
)
@given(rows=st.lists(hostile_rows([HEADER_OF[f] for f in FIELDS]), max_size=8))
def test_a_key_with_a_present_protected_marking_comes_back_protected(
    rows: list[list[str]],
) -> None:
    """Stronger than never-unprotected: a marking cell that is there and says protected (on
    any record, however broken) makes the key a protected person, whatever else is in the file.
    """
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\n").writerows([list(HEADER_OF.values()), *rows])
    text = out.getvalue()
    assume_structured = not any(ch in text for ch in EXTRA_LINE_SEPARATORS)
    records = standard_records(text, ";") if assume_structured else None
    if records is None or any(r.end > r.start and len(r.cells) != 7 for r in records):
        return
    layout = Layout(list(HEADER_OF.values()))
    marked = {
        layout.key(r.cells)
        for r in records[1:]
        if layout.key(r.cells)
        and layout.cell(r.cells, "marking") is not None
        and marked_protected(layout.cell(r.cells, "marking"), ("Nej",))
    }
    try:
        result = read_text(text)
    except SourceError as exc:
        # No record carries a marking at all (every cell empty): the file fails as a whole
        # rather than taking every account away; nobody is sent.
        assert "protected-identity marking" in exc.reason
        assert not any((layout.cell(r.cells, "marking") or "").strip() for r in records[1:])
        return
    protected = {p.source_key for p in result.persons if p.protected}
    assert marked <= protected, marked - protected


@settings(max_examples=200, deadline=None, database=None)
@example(separator="\x0c", before="Nej", after="Ja")
@given(
    separator=st.sampled_from(EXTRA_LINE_SEPARATORS),
    before=st.sampled_from(["Nej", "nej ", " NEJ"]),
    after=st.sampled_from(["Ja", "ja", "skyddad"]),
)
def test_extra_line_separators_do_not_hide_a_protected_marking(
    separator: str, before: str, after: str
) -> None:
    marking = f"{before}{separator}{after}"
    assert marked_protected(marking, ("Nej",))
    text = f"{HEADER_LINE}\nE1;Anna;Ek;e1@skola.example.se;11111111;Norrskolan;{marking}\n"
    result = read_text(text)
    assert all(p.protected for p in result.persons if p.source_key == "E1")
    assert all(line <= 2 for line in issue_lines(result))


def test_recovery_inside_a_quoted_field_hides_a_protected_row() -> None:
    lines = [
        HEADER_LINE,
        'E1;"a',  # line 2: a quoted field over two lines, in a row with 9 columns
        '";Anna;Ek;e1@skola.example.se;11111111;S;Nej;EXTRA',
        "E2;Bo;Ek;e2@skola.example.se;11111111;S;Ja",  # line 4: E2 marked protected
        'E3;Cy;Ek;e3@skola.example.se;11111111;S;";Q1;Q2;Q3;Q4;Q5;Q6',  # a two-line marking
        '"',
        "E2;Bo;Ek;e2@skola.example.se;22222222;S;Nej",  # line 7: E2 again, not marked
    ]
    text = "\n".join(lines) + "\n"
    records = standard_records(text, ";")
    assert records is not None  # valid CSV: a standard reader parses all of it
    assert ["E2", "Bo", "Ek", "e2@skola.example.se", "11111111", "S", "Ja"] in [
        r.cells for r in records
    ]
    result = read_text(text)
    assert all(p.protected for p in result.persons if p.source_key == "E2")
