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

from collections import Counter
from dataclasses import dataclass, field, replace

from connector.config import Config, JoinConfig
from connector.people.model import Kind, Person, SourceIssue, SourceRead

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
    )


def join_persons(config: Config, reads: list[SourceRead]) -> Joined:
    join = config.join
    result = Joined()
    joined_names = set(join.sources) if join else set()
    result.persons = merge_by_key(
        [p for r in reads if r.source not in joined_names for p in r.persons]
    )
    # A person whose only record could not be read is not gone: hold them, unless joined
    # (then their joined identity is unknown, and the join's own rules apply).
    # A source without a fixed kind (SS 12000) could have had a student or a staff member.
    kinds = {
        source.name: (source.kind,) if hasattr(source, "kind") else (Kind.STUDENT, Kind.STAFF)
        for source in config.sources
    }
    present = {(p.kind, p.source_key) for p in result.persons}
    for read in reads:
        if read.source in joined_names:
            continue
        for key in sorted(read.unreadable_keys):
            for kind in kinds[read.source]:
                if (kind, key) not in present:
                    result.held.append(Person(key, kind, "", "", None, None, False))
    if join is None:
        return result

    by_source: dict[str, dict[str, list[Person]]] = {name: {} for name in join.sources}
    reads_by_name = {r.source: r for r in reads}
    for name in join.sources:
        read = reads_by_name.get(name)
        if read is None:
            continue  # a failed source: its people are not gone (see the guard)
        for person in read.persons:
            if person.join_key:
                by_source[name].setdefault(person.join_key, []).append(person)
            else:
                _unmatched(join, name, person, result)

    missing = [name for name in join.sources if name not in reads_by_name]
    keys = dict.fromkeys(k for name in join.sources for k in by_source[name])
    if missing:
        # A joined source failed: nobody can be joined reliably, and using the rest as they
        # are would rewrite e-mail addresses and usernames. Hold everyone until it is back.
        for key in keys:
            present = [(name, p) for name in join.sources for p in by_source[name].get(key, [])]
            merged = _merge_entries(join, key, present)
            (result.persons if merged.protected else result.held).append(merged)
        result.excluded[f"held: joined source {', '.join(missing)} failed"] += len(keys)
        return result
    for key in keys:
        present = [(name, p) for name in join.sources for p in by_source[name].get(key, [])]
        crowded = [name for name in join.sources if len(by_source[name].get(key, [])) > 1]
        if crowded:
            merged = _merge_entries(join, key, present)
            result.issues.append(
                SourceIssue(
                    "join",
                    ", ".join(crowded),
                    f"{len(present)} entries share one join key; nobody merged or sent",
                )
            )
            result.excluded[EXCLUDED_JOIN_CONFLICT] += 1
            if merged.protected:
                result.persons.append(merged)  # so a protected person is still taken off
            else:
                result.held.append(merged)
        elif len(present) > 1:
            result.persons.append(_merge_entries(join, key, present))
        else:
            name, person = present[0]
            _unmatched(join, name, replace(person, source_key=f"join:{key}"), result)
    return result


def _unmatched(join: JoinConfig, source: str, person: Person, result: Joined) -> None:
    if person.protected or join.unmatched.get(source, "skip") == "use":
        result.persons.append(person)  # a protected one is dropped by scope, and counted there
    else:
        result.excluded[f"only in source {source}"] += 1
