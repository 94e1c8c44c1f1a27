"""One roster row at a time: its marking, its checks, and the person and school it adds to.

This is the hot path of a large export (100,000+ rows), so where each field sits is worked out
once per file (`Layout`) and a row is checked for unsafe text with one search over all of it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import itemgetter

from connector.config import CsvSourceConfig
from connector.people.emails import normalize_email
from connector.people.model import (
    Kind,
    Placement,
    School,
    StudyGroup,
    StudyGroupRole,
    unsafe_text,
    unsafe_text_screen,
)
from connector.people.phones import normalize_mobile
from connector.sources.csv_decoding import has_undecodable
from connector.sources.marking import MarkingReader

# Generous, but bounded: a field this long is a broken export, not a name.
MAX_FIELD_LENGTH = 1024

# The free text of a row that can reach a vendor. One search over all of it (each field after a
# separator) finds whatever unsafe_text might refuse in any of them; the field and the reason
# are looked up only for the rare row it finds something in.
_TEXT_FIELDS: tuple[str, ...] = ("given_name", "family_name", "email", "username")
_TEXT_FIELDS += ("school_unit_code", "school_name", "school_type", "class_name", "role")
_SEPARATOR = "\uffff"
_SCREEN = unsafe_text_screen(_SEPARATOR)


class RowError(Exception):
    """A row that cannot be used; the message says why, never what it holds."""


@dataclass(frozen=True, slots=True)
class Layout:
    """Where each field is in a row, worked out once per file (rows number 100,000+)."""

    width: int
    key: int
    key_name: str
    marking: int | None  # the protected-identity column; None: the source carries none
    join_key: int | None
    # Getters of a row with one empty cell appended, where unset columns read: given_name,
    # family_name, email, username, school unit; and type, year, class, role, join key, name,
    # mobile.
    named: Callable[[list[str]], tuple[str, ...]]
    optional: Callable[[list[str]], tuple[str, ...]]
    required: tuple[tuple[str, int], ...]  # a required field's name and place in `named`
    groups: GroupCells | None = None  # where the study groups are, if the file has any

    @classmethod
    def of(cls, config: CsvSourceConfig, header: list[str], index: dict[str, int]) -> Layout:
        columns = config.columns
        unset = len(header)  # the empty cell appended to each row

        def position(column: str | None) -> int | None:
            return index[column] if column is not None else None

        def cells(*names: str | None) -> Callable[[list[str]], tuple[str, ...]]:
            return itemgetter(*(unset if c is None else index[c] for c in names))

        return cls(
            width=len(header),
            key=index[columns.key],
            key_name=columns.key,
            marking=position(config.protected_identity.column),
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
                columns.mobile,
            ),
            required=tuple((name, _TEXT_FIELDS.index(name)) for name in config.required),
            groups=GroupCells.of(config, index),
        )


@dataclass(frozen=True, slots=True)
class GroupCells:
    """The columns naming a row's study groups at the row's school unit (see CsvColumns)."""

    groups: int | None
    classes: int | None
    separator: str
    class_pattern: re.Pattern[str] | None
    role: StudyGroupRole

    @classmethod
    def of(cls, config: CsvSourceConfig, index: dict[str, int]) -> GroupCells | None:
        columns = config.columns
        if columns.groups is None and columns.classes is None:
            return None
        return cls(
            groups=None if columns.groups is None else index[columns.groups],
            classes=None if columns.classes is None else index[columns.classes],
            separator=config.group_separator,
            class_pattern=re.compile(config.class_pattern) if config.class_pattern else None,
            role="student" if config.kind is Kind.STUDENT else "teacher",
        )

    def read(self, row: list[str], code: str) -> list[StudyGroup]:
        """The row's groups; RowError when a name may not be sent (text-safety rule)."""
        found: list[StudyGroup] = []
        for at, is_class in ((self.groups, False), (self.classes, True)):
            if at is None:
                continue
            for part in row[at].split(self.separator):
                name = part.strip()
                if not name:
                    continue
                reason = unsafe_text(name)
                if reason is not None:
                    raise RowError(f"{'classes' if is_class else 'groups'} {reason}")
                klass = is_class or (
                    self.class_pattern is not None and self.class_pattern.fullmatch(name)
                )
                found.append(
                    StudyGroup(code, name, "Klass" if klass else "Undervisning", self.role)
                )
        return found


@dataclass
class PersonBuilder:
    line: int  # the first row of this key, for reporting a conflicting repeat
    given_name: str
    family_name: str
    email: str | None
    username: str | None
    protected: bool
    join_key: str | None = None
    placements: list[Placement] = field(default_factory=list)
    mobile: str | None = None
    study_groups: list[StudyGroup] = field(default_factory=list)


class RowReader:
    """Reads the rows of one file into person builders and schools.

    Keys seen marked protected (or unreadably marked) on any row, even a broken one, are kept
    in `protected_keys` with the row's join key where it could be read; keys whose rows cannot
    show their marking are `suspect`: nothing is sent or taken away for them this cycle.
    """

    def __init__(
        self, layout: Layout, marking: MarkingReader, encoding: str, *, check_decoding: bool
    ):
        self.layout = layout
        self.marking = marking
        self._encoding = encoding  # what undecodable bytes are not valid in
        self._check_decoding = check_decoding  # only worth it if the file has any
        self.builders: dict[str, PersonBuilder] = {}
        self.protected_keys: dict[str, str | None] = {}
        self.suspect: set[str] = set()
        self.schools: dict[str, School] = {}
        # One object per distinct placement: thousands of students share a school, year and
        # class, and a daemon keeps its last read in memory (cycle/quiet.py).
        self._placements: dict[Placement, Placement] = {}

    def read(self, line: int, row: list[str]) -> None:
        """Add one row; raise RowError (after noting its marking) when it cannot be used."""
        layout = self.layout
        key_cell = row[layout.key].strip() if layout.key < len(row) else ""
        protected = self._read_marking(row, key_cell)
        # The checks are inline: this runs for every row of a large export.
        if len(row) != layout.width:
            raise RowError(f"has {len(row)} columns, the header has {layout.width}")
        if self._check_decoding and has_undecodable(row):
            raise RowError(f"holds bytes that are not valid {self._encoding}")
        if max(map(len, row)) > MAX_FIELD_LENGTH:
            raise RowError(f"a field is longer than {MAX_FIELD_LENGTH} characters")
        if not key_cell:
            raise RowError(f"the key column {layout.key_name!r} is empty")
        self._add(line, row, key_cell, protected)

    def _read_marking(self, row: list[str], key_cell: str) -> bool:
        marking = self.layout.marking
        if marking is None:  # the source carries no marking (assume_not_protected)
            return False
        width = len(row)
        if marking >= width:
            # The row is too short to carry its marking: this person cannot be shown to be
            # unprotected, so nothing is sent for them this cycle (and nothing taken away),
            # unless another row marks them protected.
            if key_cell:
                self.suspect.add(key_cell)
            return True
        protected = self.marking.protected((row[marking],))
        if key_cell and protected:
            # Whatever else is wrong with the row, this key is marked protected (or unreadable).
            join = self.layout.join_key
            join_cell = row[join].strip() if join is not None and join < width else ""
            known = self.protected_keys.get(key_cell)
            self.protected_keys[key_cell] = known or join_cell or None
        return protected

    def _add(self, line: int, row: list[str], key_cell: str, protected: bool) -> None:
        padded = [*row, ""]
        named = tuple(cell.strip() for cell in self.layout.named(padded))
        given_name, family_name, email_cell, username, code = named
        for required, at in self.layout.required:
            if not named[at]:
                raise RowError(f"the required field {required} is empty")
        optional = tuple(cell.strip() for cell in self.layout.optional(padded))
        school_type, school_year, class_name, role, join_key, school_name, mobile = optional
        texts = (*named, school_name, school_type, class_name, role)
        if _SCREEN.search(_SEPARATOR + _SEPARATOR.join(texts)):
            _refuse_unsafe(texts)
        email = _email(email_cell) if email_cell else None
        groups = self.layout.groups.read(row, code) if self.layout.groups is not None else ()
        builder = self.builders.get(key_cell)
        if builder is None:
            builder = self.builders[key_cell] = PersonBuilder(
                line, given_name, family_name, email, username or None, protected, join_key or None
            )
            builder.mobile = _mobile(mobile) if mobile else None
        elif (builder.given_name, builder.family_name, builder.email) != (
            given_name,
            family_name,
            email,
        ):
            # One key, two different people (or a half-edited export): keep the first.
            raise RowError(f"the key repeats line {builder.line} with a different name or e-mail")
        else:
            builder.protected = builder.protected or protected
        placement = Placement(
            code, school_type or None, school_year or None, class_name or None, role or None
        )
        builder.placements.append(self._placements.setdefault(placement, placement))
        builder.study_groups.extend(groups)
        self._add_school(code, school_name, school_type)

    def _add_school(self, code: str, name: str, school_type: str) -> None:
        if code not in self.schools or (name and self.schools[code].name == code):
            types = (school_type,) if school_type else ()
            self.schools[code] = School(code=code, name=name or code, school_types=types)


def _email(cell: str) -> str:
    try:
        return normalize_email(cell)
    except ValueError:
        raise RowError("the e-mail address is not valid") from None


def _mobile(cell: str) -> str:
    # Checked as a phone number (stricter than the text rule, which refuses a leading +).
    try:
        return normalize_mobile(cell)
    except ValueError:
        raise RowError("the mobile number is not valid") from None


def _refuse_unsafe(texts: tuple[str, ...]) -> None:
    """The rare row the screen found something in: say which field and why, if it is refused."""
    for name, value in zip(_TEXT_FIELDS, texts, strict=True):
        reason = unsafe_text(value)
        if reason is not None:
            raise RowError(f"{name} {reason}")
