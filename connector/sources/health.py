"""Whether a source's read can be trusted, told the same way to `sync` and `check`.

A read that returned nobody, or that had most of its records skipped as unreadable (a file read
with the wrong encoding or delimiter, a broken export), fails its source: nothing is sent or
taken away for the people in it, except that a person it marks protected is still taken off
the vendor. A marking value the source never wrote before is reported by count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import structlog

from connector.people.externalid import ExternalIdMaker
from connector.people.model import SourceRead

log = structlog.get_logger(__name__)


def read_problem(read: SourceRead, max_skipped_percent: float) -> str | None:
    """Why this read cannot be trusted as a whole, or None."""
    records = max(read.rows_read, len(read.issues))
    skipped = len(read.issues)
    if records and 100 * skipped / records > max_skipped_percent:
        return (
            f"{skipped} of {records} records could not be read (more than "
            f"{max_skipped_percent:g}%): the file's encoding or delimiter, or a broken export?"
        )
    if not read.persons:
        # An export with nobody in it is a broken export far more often than an empty town.
        return "returned no persons"
    return None


def hold_all_but_protected(read: SourceRead) -> None:
    """A read that failed as a whole: its people are neither sent nor taken away - held -
    except those it marks protected, who still come off the vendor."""
    for person in read.persons:
        if not person.protected:
            read.unreadable_keys.add(person.source_key)
    read.persons = [person for person in read.persons if person.protected]


def marking_digests(read: SourceRead, ids: ExternalIdMaker) -> dict[str, int]:
    """Opaque fingerprints of the read's marking values (other than the not-protected ones)
    -> how many records held each."""
    return {ids.digest(value): rows for value, rows in read.marking_values.items()}


def report_new_marking_values(source: str, digests: dict[str, int], seen: Iterable[str]) -> None:
    """Report marking values this source never wrote before - by count, never the value."""
    known = set(seen)
    new = {digest: rows for digest, rows in digests.items() if digest not in known}
    if new:
        log.warning(
            "source.marking_new_value",
            source=source,
            values=len(new),
            rows=sum(new.values()),
            consequence="these records count as protected: nothing is sent for them, and an "
            "account they have is taken off the vendor (held if many: safety.max_newly_protected)",
        )


# Reasons the CSV source gives for a skipped row, and what most rows failing that way suggests.
_CAUSES = (
    (
        "bytes that are not valid",
        "most records hold bytes the configured encoding cannot read: is the file's encoding "
        "right? (encoding: windows-1252, or auto)",
    ),
    (
        "looks like mojibake",
        "most records look like UTF-8 read as Windows-1252: is the file's encoding right? "
        "(encoding: utf-8, or auto)",
    ),
    (
        "columns, the header has",
        "most records have another number of columns than the header: is the delimiter right?",
    ),
)


def likely_cause(read: SourceRead) -> str | None:
    """A hint at why most of a read's records were skipped, where one is likely."""
    if not read.issues:
        return None
    reasons = Counter(
        next((cause for marker, cause in _CAUSES if marker in issue.reason), None)
        for issue in read.issues
    )
    cause, count = reasons.most_common(1)[0]
    return cause if cause is not None and 2 * count > len(read.issues) else None
