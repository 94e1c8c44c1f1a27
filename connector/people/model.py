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
from typing import Any, Literal


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
class Grant:
    """A role value granted to a person (see `roles:` in the config and people/roles.py):
    `value` (e.g. "admin") at a school unit or a division, named by `type` (the school unit
    code or the division's name) and `display` (the school's or division's name). `reasons`
    say why (which group, duty or list), for `explain`; they are never sent or logged."""

    value: str
    type: str
    display: str
    reasons: tuple[str, ...] = ()


StudyGroupType = Literal["Klass", "Undervisning"]
StudyGroupRole = Literal["student", "teacher"]


@dataclass(frozen=True, slots=True)
class StudyGroup:
    """A group a person studies in (role student) or teaches (role teacher) at one school unit:
    a class (Klass) or a teaching group (Undervisning), named as the source names it. A
    student's class from `Placement.class_name` is not repeated here: the sources add teaching
    groups, and for teachers the groups they teach. The name passes the text-safety rule."""

    school_unit_code: str
    name: str
    type: StudyGroupType
    role: StudyGroupRole


@dataclass(frozen=True, slots=True)
class Modified:
    """When a source last changed a person's record, by that source's own clock (Unix time),
    and which source: what `connector_change_latency_seconds` counts from. A time and a
    source name, never anything about who; in memory only."""

    source: str
    at: float

    def later(self, other: Modified | None) -> Modified:
        return other if other is not None and other.at > self.at else self


def latest(first: Modified | None, second: Modified | None) -> Modified | None:
    """The later of two change times (either may be unknown)."""
    return first.later(second) if first is not None else second


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
    # The directory groups (normalised DNs) named by role rules that this person is in: only
    # those, never a whole group list, and none for a protected person. In memory only.
    groups: tuple[str, ...] = ()
    # Role values granted, resolved once in the people stage (people/roles.py).
    grants: tuple[Grant, ...] = ()
    # E.164 (connector.people.phones); sent only where a mapping opts in (`mobile_opt_in`).
    mobile: str | None = None
    # The classes and teaching groups the person is in or teaches (see StudyGroup); none for a
    # protected person reaches a target (scope drops them).
    study_groups: tuple[StudyGroup, ...] = ()
    # When the source last changed this record (a roster file's modification time, a
    # directory entry's modifyTimestamp, SS 12000's meta.modified), where it says.
    modified: Modified | None = None


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


def normalise_dn(dn: str) -> str:
    """For comparing DNs written by people (group rules, role rules) with DNs returned by
    directory servers."""
    return ",".join(part.strip() for part in dn.split(",")).casefold()


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
    # A daemon's last healthy read of this source (its `snapshot` is the one above): an
    # incremental source that finds nothing changed returns it as it is (`unchanged`).
    previous: SourceRead | None = None

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
    # The source's content is what its last read had (an unchanged file, an incremental read
    # that found no change): a daemon's cycle may then be quiet (cycle/quiet.py).
    unchanged: bool = False
    # Protected-identity marking values other than the not-protected ones -> records holding
    # them (see connector.sources.marking). In memory only: never logged or stored as such.
    marking_values: Counter[str] = field(default_factory=Counter, repr=False)


# -- the text-safety rule ------------------------------------------------------------------------
# Every free-text value bound for a vendor (names, school and class names, roles, usernames,
# addresses) passes one rule. Vendors show these values to people and export them to
# spreadsheets, so a value is refused when it:
_FORMULA_STARTS = ("=", "+", "-", "@")  # would run as a spreadsheet formula (CSV injection)
_CHARACTERS = {
    # breaks lines or records: C0 and C1 controls, Unicode's line and paragraph separators
    "control": "\x00-\x1f\x7f-\x9f\u2028\u2029",
    # reorders how the text reads ("gpj.exe" shown as "exe.jpg"): embeddings, overrides, isolates
    "bidi": "\u202a-\u202e\u2066-\u2069",
    # is invisible, so two values that look the same differ: zero-width spaces and joiners
    "zero_width": "\u200b-\u200d\u2060\ufeff",
}
REASONS = {
    "formula": "starts like a spreadsheet formula (=, +, -, @)",
    "control": "holds control characters (a line break?)",
    "bidi": "holds bidirectional text controls",
    "zero_width": "holds zero-width characters",
    "mojibake": "looks like mojibake (UTF-8 read as Windows-1252)",
}


def _cp1252(low: int, high: int) -> str:
    """The characters Windows-1252 reads the bytes low..high as, escaped for a regex class."""
    characters = bytes(range(low, high + 1)).decode("cp1252", errors="ignore")
    return "".join(re.escape(c) for c in characters)


def _cp1252_class(low: int, high: int) -> str:
    return f"[{_cp1252(low, high)}]"


_TAILS = _cp1252(0x80, 0xBF)  # the bytes after the first of a UTF-8 sequence
_TAIL = f"[{_TAILS}]"
# ... or is UTF-8 read as Windows-1252 ("HÃ¥kansson"): each well-formed UTF-8 sequence beyond
# ASCII (RFC 3629 section 4) as Windows-1252 shows its bytes, "å" (C3 A5) as "Ã¥", "–" (E2 80
# 93) as "â€“". Real names practically never hold an accented capital followed by "¥" or "€".
_MOJIBAKE = "|".join(
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
_UNSAFE = re.compile(
    "|".join(f"(?P<{name}>[{chars}])" for name, chars in _CHARACTERS.items())
    + f"|(?P<mojibake>{_MOJIBAKE})"
)
_REFUSED = "".join(_CHARACTERS.values())
_LEADS = "[\u00c2-\u00f4]"  # how Windows-1252 shows the first byte of a UTF-8 sequence
# A refused character, or a second byte of UTF-8 after a first one: these patterns start with
# one character class, so the regex engine skips in C to the rare characters that can start a
# match (not "å" or "Ö", which read as first bytes, but "¥" or "€"). Most values hold none.
_CANDIDATES = re.compile(f"[{_REFUSED}{_TAILS}](?:(?<=[{_REFUSED}])|(?<={_LEADS}{_TAIL}))")


def unsafe_text(value: str) -> str | None:
    """Why a free-text value may not be sent to a vendor, or None when it may.

    The reason names the rule, never the value, so it can go into issues and logs."""
    if value.lstrip().startswith(_FORMULA_STARTS):
        return REASONS["formula"]
    if _CANDIDATES.search(value) is None:
        return None
    match = _UNSAFE.search(value)
    return None if match is None else REASONS[str(match.lastgroup)]


def unsafe_text_screen(separator: str) -> re.Pattern[str]:
    """One regex for a hot path that checks many values at once, each preceded by `separator`
    (100,000 rows): it finds everything unsafe_text refuses in any of them, and rarely
    something it lets pass, so a hit is then looked at value by value."""
    mark = re.escape(separator)
    return re.compile(
        f"[{_REFUSED}{_TAILS}{mark}]"
        f"(?:(?<=[{_REFUSED}])|(?<={mark})\\s*[=+\\-@]|(?<={_LEADS}{_TAIL}))"
    )
