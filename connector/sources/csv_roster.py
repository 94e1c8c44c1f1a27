"""The roster CSV source: a student information system's export, one row per placement.

Exports differ (Adela, Procapita/Edlevo, IST Extens: `;` or `,`, UTF-8 with or without BOM or
Windows-1252, Swedish headers), so delimiter, encoding and columns come from the config. A row
that cannot be used is reported by file and line number, never by what it holds, and skipped.
A file that cannot be read at all fails the source as a whole.
"""

from __future__ import annotations

import hashlib
import io
import os

import structlog

from connector.config import CsvSourceConfig
from connector.errors import SourceError
from connector.people.model import (
    Modified,
    Person,
    ReadContext,
    SourceIssue,
    SourceRead,
)
from connector.sources.csv_decoding import UNDECODABLE, decode
from connector.sources.csv_header import missing_columns, missing_marking
from connector.sources.csv_records import Record, Records
from connector.sources.csv_rows import MAX_FIELD_LENGTH, Layout, RowError, RowReader
from connector.sources.marking import MarkingReader

__all__ = ["MAX_FIELD_LENGTH", "CsvRosterSource", "decode"]

log = structlog.get_logger(__name__)


class CsvRosterSource:
    def __init__(self, config: CsvSourceConfig) -> None:
        self.config = config
        self.name = config.name
        self._fingerprinted: bytes | None = None

    def fingerprint(self) -> str:
        """What the file's content is, cheaply (its size, modification time and SHA-256): an
        unchanged file need not be parsed again. A read that follows parses these very bytes,
        so the fingerprint always belongs to what was read."""
        data, stat = self._bytes()
        self._fingerprinted = data
        digest = hashlib.sha256(data).hexdigest()
        return f"{stat.st_size}:{stat.st_mtime_ns}:{digest}"

    def _bytes(self) -> tuple[bytes, os.stat_result]:
        path = self.config.path
        try:
            with path.open("rb") as file:
                return file.read(), os.fstat(file.fileno())
        except OSError as exc:
            raise SourceError(self.name, f"cannot read {path}: {exc.strerror}") from None

    def read(self, context: ReadContext | None = None) -> SourceRead:
        config = self.config
        data = self._fingerprinted if self._fingerprinted is not None else self._bytes()[0]
        self._fingerprinted = None
        text, used_encoding = decode(data, config.encoding)
        del data  # a 100,000-row export is tens of MB: no copy longer than needed
        undecodable = bool(UNDECODABLE.search(text))
        file_label = config.path.name
        # Only \r, \n and \r\n end a line in CSV (str.splitlines would also split on \f, \v...).
        records = Records(io.StringIO(text, newline="").readlines(), config.delimiter)
        del text
        header, index = self._read_header(records, file_label)
        marking = config.protected_identity
        rows = RowReader(
            Layout.of(config, header, index),
            MarkingReader(
                marking.not_protected_values, assume_not_protected=marking.assume_not_protected
            ),
            used_encoding,
            check_decoding=undecodable,
        )
        result = SourceRead(source=self.name)
        only = context if context is not None and context.only is not None else None
        columns = config.columns
        wanted = [index[c] for c in (columns.key, columns.email, columns.username) if c]
        for record in records:
            if record.row is None:
                self._broken_record(record, result, rows, index, file_label)
            elif not "".join(record.row).strip():
                continue
            elif only is None or only.wants(
                *(record.row[i] for i in wanted if i < len(record.row))
            ):
                self._read_row(record.line, record.row, rows, result, index, file_label)
        self._collect(rows, result, self._modified())
        if only is None:
            rows.marking.require_present(self.name, f"column {marking.column!r}")
        result.marking_values = rows.marking.other_values
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

    def _read_header(self, records: Records, file_label: str) -> tuple[list[str], dict[str, int]]:
        """The header's column positions; a file without a usable header fails."""
        first = next(records, None)
        if first is None:
            raise SourceError(self.name, f"{file_label} is empty (no header row)")
        if first.row is None:
            raise SourceError(self.name, f"{file_label}:1: header cannot be parsed ({first.error})")
        header = [h.strip() for h in first.row]
        records.columns = len(header)
        missing = missing_columns(self.config, header)
        if missing is not None:
            raise SourceError(self.name, f"{file_label}: {missing}")
        # Without the marking nobody in this file can be shown to be unprotected; making
        # everyone protected would take every account away. The file is broken: fail it.
        missing = missing_marking(self.config, header)
        if missing is not None:
            raise SourceError(self.name, f"{file_label}: {missing}")
        return header, {name: i for i, name in enumerate(header)}

    def _broken_record(
        self,
        record: Record,
        result: SourceRead,
        rows: RowReader,
        index: dict[str, int],
        file_label: str,
    ) -> None:
        result.rows_read += 1
        result.issues.append(
            SourceIssue(self.name, f"{file_label}:{record.line}", str(record.error))
        )
        key_column = index[self.config.columns.key]
        for raw in record.swallowed:
            cells = raw.split(self.config.delimiter)
            if key_column < len(cells) and cells[key_column].strip(' "\r\n'):
                # Possibly a row of its own: hold that person, trust nothing of theirs.
                key = cells[key_column].strip(' "\r\n')
                rows.suspect.add(key)
                result.unreadable_keys.add(key)

    def _read_row(
        self,
        line: int,
        row: list[str],
        rows: RowReader,
        result: SourceRead,
        index: dict[str, int],
        file_label: str,
    ) -> None:
        result.rows_read += 1
        try:
            rows.read(line, row)
        except RowError as exc:
            result.issues.append(SourceIssue(self.name, f"{file_label}:{line}", str(exc)))
            key_column = index[self.config.columns.key]
            if key_column < len(row) and row[key_column].strip():
                result.unreadable_keys.add(row[key_column].strip())

    def _modified(self) -> Modified | None:
        """The file's modification time: when its changed rows changed, as far as it says."""
        try:
            return Modified(self.name, self.config.path.stat().st_mtime)
        except OSError:
            return None

    def _collect(self, rows: RowReader, result: SourceRead, modified: Modified | None) -> None:
        """The persons and schools the rows built, with the protected ones known from any row."""
        kind = self.config.kind
        builders = rows.builders
        keys = list(builders)  # in file order: the first of two with one userName keeps it
        # Each builder goes as its person is made: both at once would double the peak.
        for key in keys:
            builder = builders.pop(key)
            if key in rows.suspect and key not in rows.protected_keys:
                result.unreadable_keys.add(key)
                continue
            placements = builder.placements
            protected = builder.protected or key in rows.protected_keys
            result.persons.append(
                Person(
                    source_key=key,
                    kind=kind,
                    given_name=builder.given_name,
                    family_name=builder.family_name,
                    email=builder.email,
                    username=builder.username,
                    protected=protected,
                    placements=tuple(placements)
                    if len(placements) == 1
                    else tuple(dict.fromkeys(placements)),
                    join_key=builder.join_key,
                    mobile=builder.mobile,
                    # Nothing about a protected person's groups goes any further.
                    study_groups=() if protected else tuple(dict.fromkeys(builder.study_groups)),
                    modified=modified,
                )
            )
        built = set(keys)
        for key, join_key in rows.protected_keys.items():
            if key not in built:
                # Only broken rows, but marked protected: still a protected person, so an
                # account made before the marking is taken off the vendor.
                result.persons.append(
                    Person(key, kind, "", "", None, None, True, join_key=join_key)
                )
        result.schools = list(rows.schools.values())
