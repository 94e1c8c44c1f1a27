"""A roster file's CSV records with their line numbers, recovering from broken quoting."""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    line: int  # where the record starts, 1-based
    row: list[str] | None  # None: the record could not be parsed
    error: str | None = None
    swallowed: tuple[str, ...] = ()  # raw lines taken into a broken multi-line record


class Records:
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

    def __iter__(self) -> Records:
        return self

    def __next__(self) -> Record:
        start = self._offset + self._reader.line_num
        try:
            row = next(self._reader)
        except StopIteration:
            raise
        except csv.Error as exc:
            self._offset = start + 1  # resume on the next line
            self._reader = self._new_reader()
            return Record(start + 1, None, f"cannot be parsed ({exc})")
        end = self._offset + self._reader.line_num
        if end - start > 1 and self.columns is not None and len(row) != self.columns:
            swallowed = tuple(self.lines[start + 1 : end])
            return Record(
                start + 1,
                None,
                f"has {len(row)} columns across lines {start + 1}-{end}: a quote out of place?",
                swallowed,
            )
        return Record(start + 1, row)
