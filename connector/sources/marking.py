"""The protected-identity marking: one rule for every source.

Fail closed: only a value the source's config lists as *not protected* means not protected; an
empty, missing, unreadable or unknown value means protected. Two things that no single record
can show are told from the whole read:

- A marking absent from every record (a column dropped from the export, an attribute nobody
  carries, a field the API stopped sending) shows nobody to be unprotected. The source fails
  as a whole rather than making everyone protected, which would take every account away.
- The values other than the not-protected ones are counted, in memory only, so that a value the
  source never wrote before (say the SIS switched from "Nej" to "0") is reported - by count,
  never with the value or the person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from connector.errors import SourceError


class MarkingReader:
    """Reads the marking of each record of one read, and keeps the tally."""

    def __init__(self, not_protected_values: Iterable[str], *, assume_not_protected: bool = False):
        self.not_protected = frozenset(v.strip().casefold() for v in not_protected_values)
        self.assume_not_protected = assume_not_protected
        self.records = 0  # records whose marking was looked at
        self.marked = 0  # of those, records that carried a marking at all
        # Values other than the not-protected ones -> how many records held them.
        self.other_values: Counter[str] = Counter()

    def protected(self, values: Iterable[str | None]) -> bool:
        """Whether a record with these marking values (none, one or several) is protected."""
        self.records += 1
        if self.assume_not_protected:
            return False
        present = [v.strip().casefold() for v in values if v is not None and v.strip()]
        if not present:
            return True
        self.marked += 1
        others = [v for v in present if v not in self.not_protected]
        self.other_values.update(set(others))
        return bool(others)

    def unreadable(self) -> bool:
        """A record whose marking is there but cannot be read (bad bytes): protected."""
        self.records += 1
        self.marked += 1
        return not self.assume_not_protected

    def require_present(self, source: str, where: str, *, at_least: int = 1) -> None:
        """Fail the source when at least `at_least` records were read and none carried the
        marking: nobody can be shown not to be protected."""
        if self.assume_not_protected or self.records < at_least or self.marked:
            return
        raise SourceError(
            source,
            f"the protected-identity marking ({where}) is empty or missing in all "
            f"{self.records} records: nobody can be shown not to be protected, so nothing "
            "is sent or taken away for anyone from this source",
        )
