"""One person per human: entries from several sources merged by a shared join key.

A roster knows a student's school; the directory knows their username and e-mail. With a `join:`
section, entries with the same join key in the listed sources become one person: each field
from the first source (in the configured order) that has it, placements from all, protected if
any source says so. The joined identity is `join:<key>`, so the vendor's externalId stays the
same whichever sources a person is found in. The join key itself is never sent.

A join key held by several entries of one source is a conflict: reported, nobody merged, and
nobody deprovisioned because of it.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field, replace

from connector.config import Config, JoinConfig
from connector.people.model import Kind, Person, SourceIssue, SourceRead, latest

EXCLUDED_JOIN_CONFLICT = "join key shared by several entries"


@dataclass(slots=True)
class Joined:
    persons: list[Person] = field(default_factory=list)
    # Not in scope this cycle, but not gone either: nothing is deprovisioned for them.
    held: list[Person] = field(default_factory=list)
    excluded: Counter[str] = field(default_factory=Counter)
    issues: list[SourceIssue] = field(default_factory=list)


def merge_by_key(persons: list[Person]) -> list[Person]:
    """One person per (kind, source key): placements joined, protected if any says so."""
    merged: dict[tuple[str, str], Person] = {}
    for person in persons:
        key = (person.kind.value, person.source_key)
        seen = merged.get(key)
        if seen is None:
            merged[key] = person
        else:
            merged[key] = replace(
                seen,
                protected=seen.protected or person.protected,
                placements=tuple(dict.fromkeys(seen.placements + person.placements)),
                email=seen.email or person.email,
                username=seen.username or person.username,
                groups=tuple(dict.fromkeys(seen.groups + person.groups)),
                mobile=seen.mobile or person.mobile,
                study_groups=tuple(dict.fromkeys(seen.study_groups + person.study_groups)),
                modified=latest(seen.modified, person.modified),
            )
    return list(merged.values())


def _merge_entries(join: JoinConfig, key: str, present: list[tuple[str, Person]]) -> Person:
    def first(field_name: str) -> str | None:
        order = join.prefer.get(field_name, join.sources)  # type: ignore[call-overload]
        by_source = dict(present)
        for name in order:
            person = by_source.get(name)
            value = getattr(person, field_name) if person else None
            if value:
                return str(value)
        return None

    placements = tuple(dict.fromkeys(p for _, person in present for p in person.placements))
    return Person(
        source_key=f"join:{key}",
        kind=present[0][1].kind,
        given_name=first("given_name") or "",
        family_name=first("family_name") or "",
        email=first("email"),
        username=first("username"),
        protected=any(person.protected for _, person in present),
        placements=placements,
        join_key=key,
        groups=tuple(dict.fromkeys(g for _, person in present for g in person.groups)),
        mobile=first("mobile"),
        study_groups=tuple(dict.fromkeys(g for _, person in present for g in person.study_groups)),
        modified=functools.reduce(latest, (person.modified for _, person in present), None),
    )


def join_persons(config: Config, reads: list[SourceRead]) -> Joined:
    join = config.join
    result = Joined()
    joined_names = set(join.sources) if join else set()
    _take_unjoined(config, [r for r in reads if r.source not in joined_names], result)
    if join is None:
        return result
    reads_by_name = {r.source: r for r in reads}
    by_source = _entries_by_join_key(join, reads_by_name, result)
    keys = dict.fromkeys(k for name in join.sources for k in by_source[name])
    missing = [name for name in join.sources if name not in reads_by_name]
    for key in keys:
        present = [(name, p) for name in join.sources for p in by_source[name].get(key, [])]
        if missing:
            # A joined source failed: nobody can be joined reliably, and using the rest as
            # they are would rewrite e-mail addresses and usernames. Hold everyone until it
            # is back (a protected person is still taken off).
            _protected_or_held(_merge_entries(join, key, present), result)
            continue
        crowded = [name for name in join.sources if len(by_source[name].get(key, [])) > 1]
        if crowded:
            result.issues.append(
                SourceIssue(
                    "join",
                    ", ".join(crowded),
                    f"{len(present)} entries share one join key; nobody merged or sent",
                )
            )
            result.excluded[EXCLUDED_JOIN_CONFLICT] += 1
            _protected_or_held(_merge_entries(join, key, present), result)
        elif len(present) > 1:
            result.persons.append(_merge_entries(join, key, present))
        else:
            name, person = present[0]
            _unmatched(join, name, replace(person, source_key=f"join:{key}"), result)
    if missing:
        result.excluded[f"held: joined source {', '.join(missing)} failed"] += len(keys)
    return result


def _take_unjoined(config: Config, reads: list[SourceRead], result: Joined) -> None:
    """The people of sources outside the join, and those whose only record could not be read:
    not gone, so held. A source without a fixed kind (SS 12000) could have had either kind."""
    result.persons = merge_by_key([p for read in reads for p in read.persons])
    kinds = {
        source.name: (source.kind,) if hasattr(source, "kind") else (Kind.STUDENT, Kind.STAFF)
        for source in config.sources
    }
    present = {(p.kind, p.source_key) for p in result.persons}
    for read in reads:
        for key in sorted(read.unreadable_keys):
            for kind in kinds[read.source]:
                if (kind, key) not in present:
                    result.held.append(Person(key, kind, "", "", None, None, False))


def _entries_by_join_key(
    join: JoinConfig, reads_by_name: dict[str, SourceRead], result: Joined
) -> dict[str, dict[str, list[Person]]]:
    """Source name -> join key -> its entries; entries without a join key are unmatched."""
    by_source: dict[str, dict[str, list[Person]]] = {name: {} for name in join.sources}
    for name in join.sources:
        read = reads_by_name.get(name)
        if read is None:
            continue  # a failed source: its people are not gone (see the guard)
        for person in read.persons:
            if person.join_key:
                by_source[name].setdefault(person.join_key, []).append(person)
            else:
                _unmatched(join, name, person, result)
    return by_source


def _protected_or_held(person: Person, result: Joined) -> None:
    (result.persons if person.protected else result.held).append(person)


def _unmatched(join: JoinConfig, source: str, person: Person, result: Joined) -> None:
    if person.protected or join.unmatched.get(source, "skip") == "use":
        result.persons.append(person)  # a protected one is dropped by scope, and counted there
    else:
        result.excluded[f"only in source {source}"] += 1
