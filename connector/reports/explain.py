"""`connector explain PERSON`: why a person is (not) at the vendor, and exactly as what.

For an admin at the terminal. A protected person is only ever reported as excluded, and why:
nothing else about them is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.config import Config
from connector.cycle.run import read_sources
from connector.mapping.desired import build_desired
from connector.mapping.profile import Mapping
from connector.people.externalid import ExternalIdMaker
from connector.people.join import join_persons
from connector.people.model import Person
from connector.people.scope import EXCLUDED_NO_PLACEMENT, EXCLUDED_PROTECTED, apply_scope
from connector.reports.render import show_value
from connector.state.store import StateStore


@dataclass(frozen=True, slots=True)
class Explanation:
    lines: list[str]
    found: bool


def _matches(person: Person, query: str) -> bool:
    folded = query.casefold()
    return (
        person.source_key == query
        or (person.email or "").casefold() == folded
        or (person.username or "").casefold() == folded
    )


def explain(config: Config, mapping: Mapping, query: str) -> Explanation:
    reads, failures = read_sources(config)
    lines = [
        f"warning: source {f.source} failed ({f.reason}); the answer may be incomplete"
        for f in failures
    ]
    raw = [p for r in reads for p in r.persons if _matches(p, query)]
    if not raw:
        lines.append(
            f"No person in the sources matches {query!r} (by source key, e-mail or username)."
        )
        return Explanation(lines, found=False)
    if any(p.protected for p in raw):
        lines.append(f"excluded ({EXCLUDED_PROTECTED}).")
        lines.append("  Nothing about this person is sent to the vendor, stored or logged.")
        return Explanation(lines, found=True)
    joined = join_persons(config, reads)
    keys = {(p.kind, p.source_key) for p in raw}
    join_keys = {p.join_key for p in raw if p.join_key}
    held = [p for p in joined.held if (p.kind, p.source_key) in keys or p.join_key in join_keys]
    matches = [
        p
        for p in joined.persons
        if (p.kind, p.source_key) in keys or (p.join_key and p.join_key in join_keys)
    ]
    if held:
        lines.append("held: a join key shared by several entries, or an unreadable record;")
        lines.append("  nothing is created, changed or removed for this person until it is fixed.")
    if not matches and not held:
        sources = ", ".join(sorted({r.source for r in reads for p in r.persons if p in raw}))
        lines.append(f"excluded: found only in {sources}, and the join's rule is to skip them")

    scoped = apply_scope(config, reads)
    in_scope = {(p.kind, p.source_key): p for p in scoped.persons}
    ids = ExternalIdMaker(config.external_id)
    desired = build_desired(scoped, mapping, ids)
    state = StateStore.open_readonly(config.state.path)
    known = state.load_known() if state else None
    if state:
        state.close()
    schools = scoped.schools

    for person in matches:
        lines.append("")
        if person.protected:
            lines.append(f"A {person.kind.value}: excluded ({EXCLUDED_PROTECTED}).")
            lines.append("  Nothing about this person is sent to the vendor, stored or logged.")
            continue
        sources = ", ".join(
            r.source for r in reads if any(p.source_key == person.source_key for p in r.persons)
        )
        lines.append(f"{person.kind.value} {person.source_key} (from {sources})")
        scoped_person = in_scope.get((person.kind, person.source_key))
        if scoped_person is None:
            lines.append(f"  excluded: {EXCLUDED_NO_PLACEMENT}")
            for placement in person.placements:
                detail = ", ".join(
                    f"{k} {v}"
                    for k, v in (
                        ("school type", placement.school_type),
                        ("role", placement.role),
                    )
                    if v
                )
                lines.append(
                    f"    placement at {placement.school_unit_code}{' (' + detail + ')' if detail else ''}: not in scope"
                )
            continue
        try:
            external_id = ids.for_person(person)
        except ValueError as exc:
            lines.append(f"  excluded: cannot be mapped ({exc})")
            continue
        user = desired.users.get(external_id)
        if user is None:
            try:
                mapping.user_attributes(scoped_person, external_id)
                lines.append("  excluded: userName shared with another person in the sources")
            except ValueError as exc:
                lines.append(f"  excluded: cannot be mapped ({exc})")
            continue
        lines.append("  in scope: yes")
        lines.append(f"  externalId: {external_id}")
        lines.append("  groups:")
        for placement in scoped_person.placements:
            school = schools.get(placement.school_unit_code)
            lines.append(
                f"    - {placement.school_unit_code} {school.name if school else ''}".rstrip()
            )
        lines.append("  SCIM attributes sent:")
        for path, value in sorted(user.attributes.items()):
            lines.append(f"    {path}: {show_value(value)}")
        link = known.users.get(external_id) if known else None
        if link is None:
            lines.append("  vendor: not linked yet (the next sync creates or links the account)")
        else:
            status = "active" if link.active else "deactivated"
            lines.append(
                f"  vendor: id {link.vendor_id} ({link.origin} by the connector, {status})"
            )
    return Explanation(lines, found=True)
