"""The neutral records every source produces: people, their placements, and schools.

Sources translate their own formats into these; everything downstream (scope, mapping,
planning) only ever sees these types. They are plain frozen dataclasses with slots because a
big city holds 100,000+ of them in memory at once.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    STUDENT = "student"
    STAFF = "staff"


@dataclass(frozen=True, slots=True)
class Placement:
    """A person's place at one school unit: a student's enrolment or a staff member's duty."""

    school_unit_code: str
    school_type: str | None = None
    school_year: str | None = None  # students: year, e.g. "7"
    class_name: str | None = None  # students: class, e.g. "7B"
    role: str | None = None  # staff: duty role, e.g. "Lärare"


@dataclass(frozen=True, slots=True)
class Person:
    """One person as the sources see them.

    `source_key` is the stable key the sources use (a student id, an employee id, a directory
    GUID). It is never sent to the vendor; the vendor's `externalId` is derived from it.
    `protected` is True when any source marks the person as having protected identity, or
    when the marking is missing or unreadable where it should be (fail closed).
    """

    source_key: str
    kind: Kind
    given_name: str
    family_name: str
    email: str | None
    username: str | None
    protected: bool
    placements: tuple[Placement, ...] = field(default=())
    # A key shared with other sources (see `join:` in the config); in memory only, never sent.
    join_key: str | None = None


@dataclass(frozen=True, slots=True)
class School:
    """A school unit, identified by its nationally unique 8-digit school unit code."""

    code: str
    name: str
    school_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SourceIssue:
    """A record a source could not read. Says where and why, never what the record held."""

    source: str
    location: str  # "students.csv:14", a DN, an object id
    reason: str


@dataclass(slots=True)
class ReadContext:
    """What a cycle tells a source about the read it wants."""

    full: bool = True
    # For incremental sources: the last full picture and where it left off.
    snapshot: dict[str, dict[str, dict[str, Any]]] | None = None
    checkpoint: str | None = None
    # On-demand sync of one person: sources may read only records that can be theirs
    # (by key, e-mail or username). Such a read is never taken as a whole picture.
    only: str | None = None

    def wants(self, *values: str | None) -> bool:
        if self.only is None:
            return True
        folded = self.only.casefold()
        return any(v is not None and v.strip().casefold() == folded for v in values)


@dataclass(slots=True)
class SourceRead:
    """What one source returned in one cycle."""

    source: str
    persons: list[Person] = field(default_factory=list)
    schools: list[School] = field(default_factory=list)
    issues: list[SourceIssue] = field(default_factory=list)
    rows_read: int = 0
    # Keys of records that could not be read: their people are not gone, so nothing is
    # deprovisioned for them this cycle.
    unreadable_keys: set[str] = field(default_factory=set)
    # Why this read may be missing people although it succeeded (say, a directory group rule
    # that matched nobody): the source counts as unhealthy, so nothing is deprovisioned from
    # it this cycle. Reasons name configuration, never a person.
    suspect: list[str] = field(default_factory=list)
    # What an incremental source keeps for its next read (see sources/ss12000.py).
    snapshot: Any = None
    # Protected-identity marking values other than the not-protected ones -> records holding
    # them (see connector.marking). In memory only: never logged or stored as such.
    marking_values: Counter[str] = field(default_factory=Counter, repr=False)


_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def has_control_characters(value: str) -> bool:
    """Line breaks, tabs and the like have no place in a name, an address or a username."""
    return bool(_CONTROL_CHARACTERS.search(value))


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def looks_like_formula(value: str) -> bool:
    """A value a spreadsheet would run (`=cmd|' /C calc'!A0`): never a name or an address.
    Vendors export what they are sent to CSV, so such values are refused at the source."""
    return value.startswith(_FORMULA_STARTS)


def _cp1252_class(low: int, high: int) -> str:
    """A regex class of the characters Windows-1252 reads the bytes low..high as."""
    characters = bytes(range(low, high + 1)).decode("cp1252", errors="ignore")
    return "[" + "".join(re.escape(c) for c in characters) + "]"


_TAIL = _cp1252_class(0x80, 0xBF)
# Each well-formed UTF-8 sequence beyond ASCII (RFC 3629 section 4), as Windows-1252 shows
# its bytes: "å" (C3 A5) reads "Ã¥", "–" (E2 80 93) reads "â€“".
MOJIBAKE_PATTERN = "|".join(
    [
        _cp1252_class(0xC2, 0xDF) + _TAIL,
        "\u00e0" + _cp1252_class(0xA0, 0xBF) + _TAIL,
        _cp1252_class(0xE1, 0xEC) + _TAIL * 2,
        "\u00ed" + _cp1252_class(0x80, 0x9F) + _TAIL,
        _cp1252_class(0xEE, 0xEF) + _TAIL * 2,
        "\u00f0" + _cp1252_class(0x90, 0xBF) + _TAIL * 2,
        _cp1252_class(0xF1, 0xF3) + _TAIL * 3,
        "\u00f4" + _cp1252_class(0x80, 0x8F) + _TAIL * 2,
    ]
)
_MOJIBAKE = re.compile(MOJIBAKE_PATTERN)


def looks_like_mojibake(value: str) -> bool:
    """UTF-8 that was read as Windows-1252 ("HÃ¥kansson"): sending it renames the person.

    Real names practically never hold an accented capital followed by a symbol such as "¥"
    or "€", so this is taken to be a broken export, not a name."""
    return bool(_MOJIBAKE.search(value))
