"""Finding a person by what an operator types: a source key, a join key, an e-mail address, a
username, or a ref (the first 12 or more characters of their externalId, as the logs give it;
for a person in the sources this needs the externalId key: `explain` has it).
One rule for `sync --only`, `explain` and `history`."""

from __future__ import annotations

import contextlib
import dataclasses
import string
from collections.abc import Iterable

from connector.people.externalid import ExternalIdMaker
from connector.people.model import Kind, Person
from connector.planning.objects import addresses

# The logs' `ref` is this many characters of the (opaque) externalId.
REF_LENGTH = 12


def looks_like_ref(query: str) -> bool:
    """A ref as logged, or more of the externalId: hexadecimal (an EGIL target's UUID with
    its dashes), at least REF_LENGTH long."""
    return len(query) >= REF_LENGTH and all(c in string.hexdigits or c == "-" for c in query)


# An EGIL UUID keeps the externalId's hex digits up to its version digit (the 13th).
_UUID_KEEPS = 12


def refers_to(query: str, external_id: str) -> bool:
    """Whether the query is this externalId, or a ref (a prefix of it) - also an EGIL ref
    (a UUID's first characters, dashes and all) of the person's externalId."""
    folded = query.lower()
    if query == external_id or (looks_like_ref(folded) and external_id.startswith(folded)):
        return True
    bare = folded.replace("-", "")
    return (
        "-" in folded
        and looks_like_ref(folded)
        and len(bare) <= _UUID_KEEPS
        and external_id.startswith(bare)
    )


def person_external_ids(person: Person, ids: ExternalIdMaker) -> set[str]:
    """The externalIds a source's person can have: by their own key and, where joined, by
    their joined identity. None for a key that may not be sent (it never was)."""
    candidates = [person]
    if person.join_key:
        candidates.append(dataclasses.replace(person, source_key=f"join:{person.join_key}"))
    found = set()
    for candidate in candidates:
        with contextlib.suppress(ValueError):
            found.add(ids.for_person(candidate))
    return found


def matches(person: Person, query: str, ids: ExternalIdMaker | None = None) -> bool:
    """Whether a source's person is the one the query names (by a ref only given `ids`)."""
    folded = query.casefold()
    if query in (person.source_key, person.join_key) or folded in (
        (person.email or "").casefold(),
        (person.username or "").casefold(),
    ):
        return True
    return (
        ids is not None
        and looks_like_ref(query)
        and any(refers_to(query, ext) for ext in person_external_ids(person, ids))
    )


def external_ids_for(
    query: str,
    persons: Iterable[Person],
    ids: ExternalIdMaker,
    accounts: Iterable[tuple[str, dict[str, object]]] = (),
) -> frozenset[str]:
    """The externalIds a query can mean: of the persons it names, and of accounts
    (externalId, attributes) whose ref, userName or e-mail it is - someone who left the
    sources, or is now protected, is found that way."""
    folded = query.casefold()
    found = {
        ext
        for ext, attributes in accounts
        if folded in addresses(attributes) or refers_to(query, ext)
    }
    for person in persons:
        if matches(person, query, ids):
            found |= person_external_ids(person, ids)
    return frozenset(found)


def keyed_external_ids(key: str, ids: ExternalIdMaker) -> frozenset[str]:
    """The externalIds a source key (or a join key) gives, for a student or a staff member:
    with `external_id.mode: hmac` only the externalId's secret key turns one into the other."""
    found: set[str] = set()
    for kind in Kind:
        person = Person(key, kind, "", "", None, None, False, join_key=key)
        found |= person_external_ids(person, ids)
    return frozenset(found)
