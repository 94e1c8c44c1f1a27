"""The roster CSV source: a student information system's export, one row per placement.

Exports differ (Adela, Procapita/Edlevo, IST Extens: `;` or `,`, UTF-8 with or without BOM or
Windows-1252, Swedish headers), so delimiter, encoding and columns come from the config. A row
that cannot be used is reported by file and line number, never by what it holds, and skipped.
A file that cannot be read at all fails the source as a whole.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

import structlog
from email_validator import EmailNotValidError, validate_email

from connector.config import CsvSourceConfig
from connector.errors import SourceError
from connector.model import Person, Placement, School, SourceIssue, SourceRead

log = structlog.get_logger(__name__)

# Generous, but bounded: a field this long is a broken export, not a name.
MAX_FIELD_LENGTH = 1024


def decode(data: bytes, encoding: str) -> tuple[str, str]:
    """Decode the file. Undecodable bytes become lone surrogates so the row can be reported."""
    if encoding == "auto":
        try:
            return data.decode("utf-8-sig"), "utf-8"
        except UnicodeDecodeError:
            return data.decode("cp1252", errors="surrogateescape"), "windows-1252"
    if encoding == "utf-8":
        return data.decode("utf-8-sig", errors="surrogateescape"), "utf-8"
    return data.decode("cp1252", errors="surrogateescape"), "windows-1252"


def _has_undecodable(values: list[str]) -> bool:
    return any("\udc80" <= ch <= "\udcff" for value in values for ch in value)


@dataclass
class _PersonBuilder:
    given_name: str
    family_name: str
    email: str | None
    username: str | None
    protected: bool
    join_key: str | None = None
    placements: list[Placement] = field(default_factory=list)


class _RowError(Exception):
    pass


class CsvRosterSource:
    def __init__(self, config: CsvSourceConfig) -> None:
        self.config = config
        self.name = config.name

    def read(self) -> SourceRead:
        config = self.config
        try:
            data = config.path.read_bytes()
        except OSError as exc:
            raise SourceError(self.name, f"cannot read {config.path}: {exc.strerror}") from None
        text, used_encoding = decode(data, config.encoding)
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=config.delimiter, strict=True)
        file_label = config.path.name
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError(self.name, f"{file_label} is empty (no header row)") from None
        except csv.Error as exc:
            raise SourceError(
                self.name, f"{file_label}:1: header cannot be parsed ({exc})"
            ) from None
        header = [h.strip() for h in header]
        index = self._column_index(header, file_label)
        protected_column = config.protected_identity.column
        if protected_column is not None and protected_column not in index:
            # Fail closed: nobody in this file can be shown to be unprotected.
            log.warning(
                "source.protected_column_missing",
                source=self.name,
                column=protected_column,
                consequence="every person in this source is treated as protected",
            )
        not_protected = {
            v.strip().casefold() for v in config.protected_identity.not_protected_values
        }

        result = SourceRead(source=self.name)
        builders: dict[str, _PersonBuilder] = {}
        protected_keys: set[str] = set()
        schools: dict[str, School] = {}
        line = 1
        while True:
            start_line = line + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                line = reader.line_num
                result.issues.append(
                    SourceIssue(
                        self.name, f"{file_label}:{start_line}", f"cannot be parsed ({exc})"
                    )
                )
                # csv cannot resume inside a broken record; what follows is still read.
                continue
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            result.rows_read += 1
            location = f"{file_label}:{start_line}"
            try:
                self._read_row(row, header, index, not_protected, builders, protected_keys, schools)
            except _RowError as exc:
                result.issues.append(SourceIssue(self.name, location, str(exc)))
                key_column = index[config.columns.key]
                if key_column < len(row) and row[key_column].strip():
                    result.unreadable_keys.add(row[key_column].strip())

        for key, builder in builders.items():
            result.persons.append(
                Person(
                    source_key=key,
                    kind=config.kind,
                    given_name=builder.given_name,
                    family_name=builder.family_name,
                    email=builder.email,
                    username=builder.username,
                    protected=builder.protected or key in protected_keys,
                    placements=tuple(dict.fromkeys(builder.placements)),
                    join_key=builder.join_key,
                )
            )
        result.schools = list(schools.values())
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
                f"{file_label}: header lacks configured column(s) {', '.join(missing)}",
            )
        return index

    def _read_row(
        self,
        row: list[str],
        header: list[str],
        index: dict[str, int],
        not_protected: set[str],
        builders: dict[str, _PersonBuilder],
        protected_keys: set[str],
        schools: dict[str, School],
    ) -> None:
        config = self.config
        columns = config.columns
        key_cell = row[index[columns.key]].strip() if index[columns.key] < len(row) else ""
        protected = self._is_protected(row, index, not_protected)
        if key_cell and protected:
            # Whatever else is wrong with the row, this key is marked protected (or unreadable).
            protected_keys.add(key_cell)
        if len(row) != len(header):
            raise _RowError(f"has {len(row)} columns, the header has {len(header)}")
        if _has_undecodable(row):
            raise _RowError(f"holds bytes that are not valid {config.encoding}")
        if any(len(cell) > MAX_FIELD_LENGTH for cell in row):
            raise _RowError(f"a field is longer than {MAX_FIELD_LENGTH} characters")
        if not key_cell:
            raise _RowError(f"the key column {columns.key!r} is empty")

        def cell(column: str | None) -> str:
            return row[index[column]].strip() if column is not None else ""

        values = {
            "given_name": cell(columns.given_name),
            "family_name": cell(columns.family_name),
            "email": cell(columns.email),
            "username": cell(columns.username),
            "school_unit_code": cell(columns.school_unit_code),
        }
        for required in config.required:
            if not values[required]:
                raise _RowError(f"the required field {required} is empty")
        email = values["email"] or None
        if email is not None:
            try:
                email = validate_email(email, check_deliverability=False).normalized
            except EmailNotValidError:
                raise _RowError("the e-mail address is not valid") from None
        placement = Placement(
            school_unit_code=values["school_unit_code"],
            school_type=cell(columns.school_type) or None,
            school_year=cell(columns.school_year) or None,
            class_name=cell(columns.class_name) or None,
            role=cell(columns.role) or None,
        )
        builder = builders.get(key_cell)
        if builder is None:
            builder = builders[key_cell] = _PersonBuilder(
                given_name=values["given_name"],
                family_name=values["family_name"],
                email=email,
                username=values["username"] or None,
                protected=protected,
                join_key=cell(columns.join_key) or None,
            )
        else:
            builder.protected = builder.protected or protected
        builder.placements.append(placement)
        school_name = cell(columns.school_name)
        code = placement.school_unit_code
        if code not in schools or (school_name and schools[code].name == code):
            types = (placement.school_type,) if placement.school_type else ()
            schools[code] = School(code=code, name=school_name or code, school_types=types)

    def _is_protected(self, row: list[str], index: dict[str, int], not_protected: set[str]) -> bool:
        marking = self.config.protected_identity
        if marking.assume_not_protected:
            return False
        column = marking.column
        if column is None or column not in index or index[column] >= len(row):
            return True
        value = row[index[column]].strip().casefold()
        return not value or value not in not_protected
