"""Finding a person by what an operator types: a source key, a join key, an e-mail address or
a username. One rule for `sync --only`, `explain` and `history`."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable

from connector.people.externalid import ExternalIdMaker
from connector.people.model import Person
from connector.planning.objects import addresses


def matches(person: Person, query: str) -> bool:
    """Whether a source's person is the one the query names."""
    folded = query.casefold()
    return query in (person.source_key, person.join_key) or folded in (
        (person.email or "").casefold(),
        (person.username or "").casefold(),
    )


def external_ids_for(
    query: str,
    persons: Iterable[Person],
    ids: ExternalIdMaker,
    accounts: Iterable[tuple[str, dict[str, object]]] = (),
) -> frozenset[str]:
    """The externalIds a query can mean: of the persons it names (by their own key and, where
    joined, by their joined identity), and of accounts (externalId, attributes) whose userName
    or e-mail it is - someone who left the sources, or is now protected, is found that way."""
    folded = query.casefold()
    found = {ext for ext, attributes in accounts if folded in addresses(attributes)}
    for person in persons:
        if not matches(person, query):
            continue
        candidates = [person]
        if person.join_key:
            candidates.append(dataclasses.replace(person, source_key=f"join:{person.join_key}"))
        for candidate in candidates:
            with contextlib.suppress(ValueError):  # a key that may not be sent was never sent
                found.add(ids.for_person(candidate))
    return frozenset(found)
