"""The roster CSV source: a student information system's export, one row per placement.

Exports differ (Adela, Procapita/Edlevo, IST Extens: `;` or `,`, UTF-8 with or without BOM or
Windows-1252, Swedish headers), so delimiter, encoding and columns come from the config. A row
that cannot be used is reported by file and line number, never by what it holds, and skipped.
A file that cannot be read at all fails the source as a whole.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

import structlog

from connector.config import CsvSourceConfig
from connector.errors import SourceError
from connector.people.emails import normalize_email
from connector.people.model import (
    REASONS,
    Person,
    Placement,
    ReadContext,
    School,
    SourceIssue,
    SourceRead,
    unsafe_text,
    unsafe_text_screen,
)
from connector.sources.marking import MarkingReader

log = structlog.get_logger(__name__)

# Generous, but bounded: a field this long is a broken export, not a name.
MAX_FIELD_LENGTH = 1024


def decode(data: bytes, encoding: str) -> tuple[str, str]:
    """Decode the file. Undecodable bytes become lone surrogates so the row can be reported."""
    if encoding == "auto":
        encoding = guess_encoding(data)
    if encoding == "utf-8":
        return data.decode("utf-8-sig", errors="surrogateescape"), "utf-8"
    return data.decode("cp1252", errors="surrogateescape"), "windows-1252"


def guess_encoding(data: bytes) -> str:
    """UTF-8 or Windows-1252, for `encoding: auto`, decided line by line.

    One bad byte must not turn a UTF-8 file into mojibake for everyone in it, so the lines
    that hold bytes beyond ASCII vote: a header that holds any decides alone (it was written
    by the same program as the rows); otherwise the file is UTF-8 unless most of those lines
    are not valid UTF-8. Windows-1252 text beyond ASCII is practically never valid UTF-8.
    """
    try:
        data.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError:
        pass
    lines = data.splitlines()  # bytes split at \n, \r and \r\n only
    if lines and not lines[0].isascii():  # a BOM counts: it is beyond ASCII and valid UTF-8
        return "utf-8" if _is_utf8(lines[0]) else "windows-1252"
    votes = [_is_utf8(line) for line in lines if not line.isascii()]
    return "utf-8" if 2 * sum(votes) >= len(votes) else "windows-1252"


def _is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


_UNDECODABLE = re.compile("[\udc80-\udcff]")


def _has_undecodable(values: list[str]) -> bool:
    return any(_UNDECODABLE.search(value) for value in values)


@dataclass
class _PersonBuilder:
    line: int  # the first row of this key, for reporting a conflicting repeat
    given_name: str
    family_name: str
    email: str | None
    username: str | None
    protected: bool
    join_key: str | None = None
    placements: list[Placement] = field(default_factory=list)


class _RowError(Exception):
    pass


# The free text of a row that can reach a vendor. One search over all of it (each field after a
# separator) finds whatever unsafe_text might refuse in any of them; the field and the reason
# are looked up only for the rare row it finds something in.
_TEXT_FIELDS = ("given_name", "family_name", "email", "username", "school_unit_code")
_TEXT_FIELDS += ("school_name", "school_type", "class_name", "role")
_SEPARATOR = "\uffff"
_SCREEN = unsafe_text_screen(_SEPARATOR)


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each field is in a row, worked out once per file (rows number 100,000+)."""

    width: int
    key: int
    marking: int | None  # the protected-identity column; None: the source carries none
    join_key: int | None
    # Getters of a row with one empty cell appended, where unset columns read: given_name,
    # family_name, email, username, school unit; and type, year, class, role, join key, name.
    named: Callable[[list[str]], tuple[str, ...]]
    optional: Callable[[list[str]], tuple[str, ...]]
    required: tuple[str, ...]

    @classmethod
    def of(cls, config: CsvSourceConfig, header: list[str], index: dict[str, int]) -> _Layout:
        columns = config.columns
        marking = config.protected_identity

        def position(column: str | None) -> int | None:
            return index[column] if column is not None else None

        def cells(*names: str | None) -> Callable[[list[str]], tuple[str, ...]]:
            unset = len(header)  # the empty cell appended to each row
            return itemgetter(*(unset if c is None else index[c] for c in names))

        return cls(
            width=len(header),
            key=index[columns.key],
            marking=position(marking.column),
            join_key=position(columns.join_key),
            named=cells(
                columns.given_name,
                columns.family_name,
                columns.email,
                columns.username,
                columns.school_unit_code,
            ),
            optional=cells(
                columns.school_type,
                columns.school_year,
                columns.class_name,
                columns.role,
                columns.join_key,
                columns.school_name,
            ),
            required=tuple(config.required),
        )


@dataclass(frozen=True, slots=True)
class _Record:
    line: int  # where the record starts, 1-based
    row: list[str] | None  # None: the record could not be parsed
    error: str | None = None
    swallowed: tuple[str, ...] = ()  # raw lines taken into a broken multi-line record


class _Records:
    """CSV records with their line numbers, recovering from broken quoting.

    A record that cannot be parsed (a quote left open to the end of the file) is reported at
    the line it starts on, and reading resumes on the next line. A record that spans lines
    and has the wrong number of columns is either a stray quote that swallowed the lines
    after it or a valid record with a wrong column count - the two cannot be told apart - so
    it is reported, reading goes on after it, and `swallowed` lists the lines it took, whose
    people are then held rather than trusted.
    """

    def __init__(self, lines: list[str], delimiter: str) -> None:
        self.lines = lines
        self._delimiter = delimiter
        self._offset = 0  # lines before the current reader's first line
        self._reader = self._new_reader()
        self.columns: int | None = None  # known once the header is read

    def _new_reader(self) -> Any:
        # The csv module counts the lines it takes (line_num), so where a record starts and
        # ends is known without wrapping each line in Python.
        rest = itertools.islice(self.lines, self._offset, None)
        return csv.reader(rest, delimiter=self._delimiter, strict=True)

    def __iter__(self) -> _Records:
        return self

    def __next__(self) -> _Record:
        start = self._offset + self._reader.line_num
        try:
            row = next(self._reader)
        except StopIteration:
            raise
        except csv.Error as exc:
            self._offset = start + 1  # resume on the next line
            self._reader = self._new_reader()
            return _Record(start + 1, None, f"cannot be parsed ({exc})")
        end = self._offset + self._reader.line_num
        if end - start > 1 and self.columns is not None and len(row) != self.columns:
            swallowed = tuple(self.lines[start + 1 : end])
            return _Record(
                start + 1,
                None,
                f"has {len(row)} columns across lines {start + 1}-{end}: a quote out of place?",
                swallowed,
            )
        return _Record(start + 1, row)

    def _resume_after(self, start: int) -> None:
        self._lines.position = start + 1
        self._reader = self._new_reader()


class CsvRosterSource:
    def __init__(self, config: CsvSourceConfig) -> None:
        self.config = config
        self.name = config.name

    def read(self, context: ReadContext | None = None) -> SourceRead:
        config = self.config
        try:
            data = config.path.read_bytes()
        except OSError as exc:
            raise SourceError(self.name, f"cannot read {config.path}: {exc.strerror}") from None
        text, used_encoding = decode(data, config.encoding)
        self._encoding = used_encoding  # what undecodable bytes are not valid in
        file_label = config.path.name
        # Only \r, \n and \r\n end a line in CSV (str.splitlines would also split on \f, \v...).
        lines = io.StringIO(text, newline="").readlines()
        records = _Records(lines, config.delimiter)
        # Checking every row for undecodable bytes is only worth it if the file has any.
        self._check_decoding = bool(_UNDECODABLE.search(text))
        first = next(records, None)
        if first is None:
            raise SourceError(self.name, f"{file_label} is empty (no header row)")
        if first.row is None:
            raise SourceError(self.name, f"{file_label}:1: header cannot be parsed ({first.error})")
        header = [h.strip() for h in first.row]
        records.columns = len(header)
        index = self._column_index(header, file_label)
        marking_config = config.protected_identity
        if marking_config.column is not None and marking_config.column not in index:
            # Nobody in this file can be shown to be unprotected; making everyone protected
            # would take every account away. The file is broken: fail it.
            raise SourceError(
                self.name,
                f"{file_label}: the protected-identity column {marking_config.column!r} is "
                "missing from the header: nothing is sent or taken away for anyone from it",
            )
        layout = _Layout.of(config, header, index)
        self._marking = MarkingReader(
            marking_config.not_protected_values,
            assume_not_protected=marking_config.assume_not_protected,
        )

        result = SourceRead(source=self.name)
        builders: dict[str, _PersonBuilder] = {}
        # Keys seen marked protected (or unreadably marked) on any row, even a broken one,
        # with the row's join key where it could be read.
        protected_keys: dict[str, str | None] = {}
        suspect: set[str] = set()
        schools: dict[str, School] = {}
        only = context if context is not None and context.only is not None else None
        columns = config.columns
        wanted = [index[c] for c in (columns.key, columns.email, columns.username) if c]
        for record in records:
            if record.row is None:
                result.rows_read += 1
                location = f"{file_label}:{record.line}"
                result.issues.append(SourceIssue(self.name, location, str(record.error)))
                key_column = index[config.columns.key]
                for raw in record.swallowed:
                    cells = raw.split(config.delimiter)
                    if key_column < len(cells) and cells[key_column].strip(' "\r\n'):
                        # Possibly a row of its own: hold that person, trust nothing of theirs.
                        key = cells[key_column].strip(' "\r\n')
                        suspect.add(key)
                        result.unreadable_keys.add(key)
                continue
            row = record.row
            if not "".join(row).strip():
                continue
            if only is not None and not only.wants(*(row[i] for i in wanted if i < len(row))):
                continue  # on-demand sync of someone else
            result.rows_read += 1
            try:
                self._read_row(record.line, row, layout, builders, protected_keys, suspect, schools)
            except _RowError as exc:
                location = f"{file_label}:{record.line}"
                result.issues.append(SourceIssue(self.name, location, str(exc)))
                key_column = index[config.columns.key]
                if key_column < len(row) and row[key_column].strip():
                    result.unreadable_keys.add(row[key_column].strip())

        for key, builder in builders.items():
            if key in suspect and key not in protected_keys:
                result.unreadable_keys.add(key)
                continue
            result.persons.append(
                Person(
                    source_key=key,
                    kind=config.kind,
                    given_name=builder.given_name,
                    family_name=builder.family_name,
                    email=builder.email,
                    username=builder.username,
                    protected=builder.protected or key in protected_keys,
                    placements=tuple(builder.placements)
                    if len(builder.placements) == 1
                    else tuple(dict.fromkeys(builder.placements)),
                    join_key=builder.join_key,
                )
            )
        for key, join_key in protected_keys.items():
            if key not in builders:
                # Only broken rows, but marked protected: still a protected person, so an
                # account made before the marking is taken off the vendor.
                result.persons.append(
                    Person(key, config.kind, "", "", None, None, True, join_key=join_key)
                )
        result.schools = list(schools.values())
        if only is None:
            self._marking.require_present(self.name, f"column {marking_config.column!r}")
        result.marking_values = self._marking.other_values
        log.info(
            "source.read",
            source=self.name,
            file=file_label,
            encoding=used_encoding,
            rows=result.rows_read,
            persons=len(result.persons),
            issues=len(result.issues),
        )
        return result

    def _column_index(self, header: list[str], file_label: str) -> dict[str, int]:
        index = {name: i for i, name in enumerate(header)}
        columns = self.config.columns.model_dump(exclude_none=True)
        missing = sorted({col for col in columns.values() if col not in index})
        if missing:
            raise SourceError(
                self.name,
                f"{file_label}: header lacks configured column(s) {', '.join(missing)}; "
                + self._describe_header(header),
            )
        return index

    def _describe_header(self, header: list[str]) -> str:
        """What the first line holds, for an operator to see what went wrong - but only if
        it is a header row (one of the configured column names in it): a file without one
        starts with a person."""
        config = self.config
        if _has_undecodable(header):
            return (
                f"the header holds bytes that are not valid {config.encoding}: is the file's "
                "encoding right? (encoding: windows-1252, or auto)"
            )
        wanted = [c.casefold() for c in config.columns.model_dump(exclude_none=True).values()]
        if config.protected_identity.column:
            wanted.append(config.protected_identity.column.casefold())
        if not any(name in cell.casefold() for cell in header for name in wanted):
            return (
                "the first line does not look like a header row (no configured column name is "
                "in it): does the file start with its header?"
            )
        shown = " | ".join(cell[:60] for cell in header[:30])
        found = f"header found: {shown}"
        if any(unsafe_text(cell) == REASONS["mojibake"] for cell in header):
            found += (
                "; it looks like UTF-8 read as Windows-1252: is the file's encoding right? "
                "(encoding: utf-8, or auto)"
            )
        others = [d for d in ";,\t|" if d != config.delimiter and any(d in c for c in header)]
        if len(header) == 1 and others:
            found += (
                f"; is the delimiter right? {config.delimiter!r} is configured, the header "
                f"holds {others[0]!r}"
            )
        return found

    def _read_row(
        self,
        line: int,
        row: list[str],
        layout: _Layout,
        builders: dict[str, _PersonBuilder],
        protected_keys: dict[str, str | None],
        suspect_keys: set[str],
        schools: dict[str, School],
    ) -> None:
        width = len(row)
        key_cell = row[layout.key].strip() if layout.key < width else ""
        marking = layout.marking
        too_short = marking is not None and marking >= width
        if key_cell and too_short:
            # The row is too short to carry its marking: this person cannot be shown to be
            # unprotected, so nothing is sent for them this cycle (and nothing taken away),
            # unless another row marks them protected.
            suspect_keys.add(key_cell)
        if marking is None:  # the source carries no marking (assume_not_protected)
            protected = False
        elif too_short:
            protected = True
        else:
            protected = self._marking.protected((row[marking],))
        if key_cell and protected and not too_short:
            # Whatever else is wrong with the row, this key is marked protected (or unreadable).
            join = layout.join_key
            join_cell = row[join].strip() if join is not None and join < width else ""
            protected_keys[key_cell] = protected_keys.get(key_cell) or join_cell or None
        if width != layout.width:
            raise _RowError(f"has {width} columns, the header has {layout.width}")
        if self._check_decoding and _has_undecodable(row):
            raise _RowError(f"holds bytes that are not valid {self._encoding}")
        if max(map(len, row)) > MAX_FIELD_LENGTH:
            raise _RowError(f"a field is longer than {MAX_FIELD_LENGTH} characters")
        if not key_cell:
            raise _RowError(f"the key column {self.config.columns.key!r} is empty")

        padded = [*row, ""]
        given_name, family_name, email_cell, username, code = (
            cell.strip() for cell in layout.named(padded)
        )
        values = {
            "given_name": given_name,
            "family_name": family_name,
            "email": email_cell,
            "username": username,
            "school_unit_code": code,
        }
        for required in layout.required:
            if not values[required]:
                raise _RowError(f"the required field {required} is empty")
        school_type, school_year, class_name, role, join_key, school_name = (
            cell.strip() for cell in layout.optional(padded)
        )
        texts = ("", given_name, family_name, email_cell, username, code)
        texts += (school_name, school_type, class_name, role)
        if _SCREEN.search(_SEPARATOR.join(texts)):
            _refuse_unsafe(texts[1:])
        email = None
        if email_cell:
            try:
                email = normalize_email(email_cell)
            except ValueError:
                raise _RowError("the e-mail address is not valid") from None
        placement = Placement(
            code, school_type or None, school_year or None, class_name or None, role or None
        )
        builder = builders.get(key_cell)
        if builder is not None and (
            (builder.given_name, builder.family_name, builder.email)
            != (given_name, family_name, email)
        ):
            # One key, two different people (or a half-edited export): keep the first.
            raise _RowError(f"the key repeats line {builder.line} with a different name or e-mail")
        if builder is None:
            builder = builders[key_cell] = _PersonBuilder(
                line=line,
                given_name=given_name,
                family_name=family_name,
                email=email,
                username=username or None,
                protected=protected,
                join_key=join_key or None,
            )
        else:
            builder.protected = builder.protected or protected
        builder.placements.append(placement)
        if code not in schools or (school_name and schools[code].name == code):
            types = (school_type,) if school_type else ()
            schools[code] = School(code=code, name=school_name or code, school_types=types)


def _refuse_unsafe(texts: tuple[str, ...]) -> None:
    """The rare row the screen found something in: say which field and why, if it is refused."""
    for name, value in zip(_TEXT_FIELDS, texts, strict=True):
        reason = unsafe_text(value)
        if reason is not None:
            raise _RowError(f"{name} {reason}")
