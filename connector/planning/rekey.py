"""Re-keying: a person whose source key changed (a move from one student information system to
another, a new student id) keeps their account.

A new person - desired, with no account linked to their externalId - whose account names
(`account_names`: userName, e-mail) match those of an account the connector holds for a person
who is gone (not desired this cycle: missing, or deactivated earlier) is a re-key candidate:
the account could move to the new key, with its vendor id and memberships. Pure: names are
compared here, and nothing is logged or sent.

Never for a protected person: a protected person is never desired (so never new), an account
whose person became protected is taken off instead (its record is scrubbed of names anyway),
and an account whose names are those of a person now marked protected under another key is
treated as theirs (`protected_accounts`) - never adopted, taken off as theirs. Never when
ambiguous: a new person matching several gone accounts, or a gone account matched by several
new persons, is reported and left as it is.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from connector.planning.objects import DesiredUser, Known, account_names, scrubbed


@dataclass(frozen=True, slots=True)
class Rekey:
    """The account of `old` (a gone person) moves to `new` (a new person)."""

    old: str  # externalId the account is linked to now
    new: str  # externalId it moves to
    why: str  # which names matched, e.g. "userName, emails.value" (paths, never values)


@dataclass(frozen=True, slots=True)
class Ambiguous:
    """New persons and gone accounts whose names match more than one way: nobody is adopted."""

    new: tuple[str, ...]
    old: tuple[str, ...]
    why: str


@dataclass(slots=True)
class RekeyFindings:
    candidates: list[Rekey] = field(default_factory=list)
    ambiguous: list[Ambiguous] = field(default_factory=list)

    def by_new(self) -> dict[str, Rekey]:
        return {rekey.new: rekey for rekey in self.candidates}


def _folded(attributes: dict[str, object]) -> dict[str, str]:
    return {path: str(value).casefold() for path, value in account_names(dict(attributes)).items()}


def gone_accounts(
    users: dict[str, DesiredUser], known: Known, excluded: frozenset[str]
) -> list[str]:
    """Known accounts whose person is not desired this cycle (and not held, not protected)."""
    return sorted(
        ext
        for ext, user in known.users.items()
        if ext not in users and ext not in excluded and not scrubbed(user)
    )


def find_rekeys(
    users: dict[str, DesiredUser],
    known: Known,
    *,
    protected: frozenset[str] = frozenset(),
    keep: frozenset[str] = frozenset(),
) -> RekeyFindings:
    """Re-key candidates: new desired users whose names match exactly one gone account (by
    the same name path, ignoring case), that no other new user matches."""
    findings = RekeyFindings()
    new = [ext for ext in sorted(users) if ext not in known.users]
    if not new:
        return findings
    index: dict[tuple[str, str], set[str]] = {}
    for ext in gone_accounts(users, known, protected | keep):
        for path, value in _folded(known.users[ext].attributes).items():
            index.setdefault((path, value), set()).add(ext)
    matches: dict[str, dict[str, list[str]]] = {}  # new -> old -> matched paths
    for ext in new:
        for path, value in _folded(users[ext].attributes).items():
            for old in index.get((path, value), ()):
                matches.setdefault(ext, {}).setdefault(old, []).append(path)
    claimed: dict[str, list[str]] = {}  # old -> new users matching it
    for ext, olds in matches.items():
        for old in olds:
            claimed.setdefault(old, []).append(ext)
    done: set[str] = set()
    for ext, olds in sorted(matches.items()):
        if ext in done:
            continue
        rivals = sorted({other for old in olds for other in claimed[old]})
        if len(olds) == 1 and rivals == [ext]:
            ((old, paths),) = olds.items()
            findings.candidates.append(Rekey(old, ext, ", ".join(sorted(set(paths)))))
            continue
        done.update(rivals)
        every_old = sorted({old for other in rivals for old in matches[other]})
        paths = sorted({p for other in rivals for ps in matches[other].values() for p in ps})
        findings.ambiguous.append(Ambiguous(tuple(rivals), tuple(every_old), ", ".join(paths)))
    return findings


def fingerprint(name: str) -> str:
    """A name (an e-mail address, a username) as compared with a protected person's, without
    keeping the name itself."""
    return hashlib.sha256(name.strip().casefold().encode()).hexdigest()


def protected_accounts(
    users: dict[str, DesiredUser],
    known: Known,
    protected_names: Iterable[str],
    *,
    excluded: frozenset[str] = frozenset(),
) -> frozenset[str]:
    """Gone accounts whose names are those of a person now marked protected (under another
    key): the account is theirs, so it is never adopted and is taken off as theirs.
    `protected_names`: fingerprints of protected persons' e-mail addresses and usernames."""
    wanted = frozenset(protected_names)
    if not wanted:
        return frozenset()
    found = set()
    for ext in gone_accounts(users, known, excluded):
        names = account_names(known.users[ext].attributes).values()
        if any(fingerprint(name) in wanted for name in names):
            found.add(ext)
    return frozenset(found)
