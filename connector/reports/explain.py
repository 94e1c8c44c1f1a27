"""`connector explain PERSON`: why a person is (not) at each target, and exactly as what.
PERSON is anything `people/lookup.py` finds a person by, a log line's `ref` too.

For an admin at the terminal. A protected person is only ever reported as excluded, and why:
nothing else about them is shown.
"""

from __future__ import annotations

from dataclasses import dataclass

from connector.config import Config
from connector.cycle.sources import Sources, read_all
from connector.mapping.desired import build_desired
from connector.people.externalid import ExternalIdMaker
from connector.people.lookup import matches
from connector.people.model import Person
from connector.people.scope import EXCLUDED_NO_PLACEMENT, EXCLUDED_PROTECTED
from connector.reports.render import show_value
from connector.state.store import StateStore
from connector.targets.base import Target

PROTECTED_LINES = [
    f"excluded ({EXCLUDED_PROTECTED}).",
    "  Nothing about this person is sent to the vendor, stored or logged.",
]


@dataclass(frozen=True, slots=True)
class Explanation:
    lines: list[str]
    found: bool


def explain(config: Config, targets: list[Target], query: str) -> Explanation:
    sources = read_all(config)
    lines = [
        f"warning: source {f.source} failed ({f.reason}); the answer may be incomplete"
        for f in sources.failures
    ]
    ids = ExternalIdMaker(config.external_id)
    raw = [p for r in sources.reads for p in r.persons if matches(p, query, ids)]
    if not raw:
        lines.append(
            f"No person in the sources matches {query!r} (by source key, e-mail, username or ref)."
        )
        return Explanation(lines, found=False)
    if any(p.protected for p in raw):
        return Explanation(lines + PROTECTED_LINES, found=True)
    keys = {(p.kind, p.source_key) for p in raw}
    join_keys = {p.join_key for p in raw if p.join_key}

    def mine(person: Person) -> bool:
        return (person.kind, person.source_key) in keys or person.join_key in join_keys

    scoped = sources.scoped
    if any(mine(p) for p in scoped.held):
        lines.append("held: a join key shared by several entries, or an unreadable record;")
        lines.append("  nothing is created, changed or removed for this person until it is fixed.")
    joined = [p for p in scoped.joined if mine(p)]
    if not joined and not any(mine(p) for p in scoped.held):
        names = ", ".join(sorted({r.source for r in sources.reads for p in r.persons if p in raw}))
        lines.append(f"excluded: found only in {names}, and the join's rule is to skip them")
    for person in joined:
        lines.append("")
        lines += describe(config, targets, sources, person)
    return Explanation(lines, found=True)


def describe(config: Config, targets: list[Target], sources: Sources, person: Person) -> list[str]:
    """One joined person: in scope or why not, and what each target is sent."""
    if person.protected:
        return [f"A {person.kind.value}: {PROTECTED_LINES[0]}", PROTECTED_LINES[1]]
    names = ", ".join(
        r.source for r in sources.reads if any(p.source_key == person.source_key for p in r.persons)
    )
    lines = [f"{person.kind.value} {person.source_key} (from {names})"]
    in_scope = {(p.kind, p.source_key): p for p in sources.scoped.persons}
    scoped_person = in_scope.get((person.kind, person.source_key))
    if scoped_person is None:
        lines.append(f"  excluded: {EXCLUDED_NO_PLACEMENT}")
        for placement in person.placements:
            detail = ", ".join(
                f"{k} {v}"
                for k, v in (("school type", placement.school_type), ("role", placement.role))
                if v
            )
            where = f"{placement.school_unit_code}{' (' + detail + ')' if detail else ''}"
            lines.append(f"    placement at {where}: not in scope")
        return lines
    ids = ExternalIdMaker(config.external_id)
    try:
        external_id = ids.for_person(person)
    except ValueError as exc:
        return [*lines, f"  excluded: cannot be mapped ({exc})"]
    lines += ["  in scope: yes", f"  externalId: {external_id}", "  groups:"]
    for placement in scoped_person.placements:
        school = sources.scoped.schools.get(placement.school_unit_code)
        lines.append(f"    - {placement.school_unit_code} {school.name if school else ''}".rstrip())
    lines += describe_grants(scoped_person)
    for target in targets:
        lines += describe_at(config, target, sources, scoped_person, external_id, len(targets) > 1)
    return lines


def describe_at(
    config: Config,
    target: Target,
    sources: Sources,
    person: Person,
    external_id: str,
    several: bool,
) -> list[str]:
    """What one target is sent for this person, and its link in the state file."""
    where = f" to {target.name}" if several else ""
    state = StateStore.open_readonly(config.state)
    try:
        tstate = state.target(target.name) if state else None
        usernames = tstate.generated_usernames() if tstate else {}
        link = tstate.load_known_for([external_id]).users.get(external_id) if tstate else None
    finally:
        if state:
            state.close()
    ids = ExternalIdMaker(config.external_id)
    desired = build_desired(sources.scoped, target.mapping, ids, usernames)
    user = desired.users.get(external_id)
    if external_id in desired.pending_usernames:
        return [f"  userName{where}: none yet; the next sync generates one"]
    if user is None:
        try:
            target.mapping.user_attributes(person, external_id)
            return [f"  excluded{where}: userName shared with another person in the sources"]
        except ValueError as exc:
            return [f"  excluded{where}: cannot be mapped ({exc})"]
    lines = [f"  SCIM attributes sent{where}:"]
    lines += [f"    {path}: {show_value(value)}" for path, value in sorted(user.attributes.items())]
    lines += describe_values(target, person, sources)
    if link is None:
        lines.append("  vendor: not linked yet (the next sync creates or links the account)")
    else:
        status = "active" if link.active else "deactivated"
        lines.append(f"  vendor: id {link.vendor_id} ({link.origin} by the connector, {status})")
    return lines


def describe_grants(person: Person) -> list[str]:
    """The role values `roles:` grants this person, each with why."""
    if not person.grants:
        return ["  roles: none"]
    lines = ["  roles:"]
    for grant in person.grants:
        where = f"{grant.type} ({grant.display})" if grant.display != grant.type else grant.type
        lines.append(f"    - {grant.value} at {where}: {'; '.join(grant.reasons)}")
    return lines


def describe_values(target: Target, person: Person, sources: Sources) -> list[str]:
    """Roles and entitlements as this target's mapping sends them, each with why; only the
    values the connector granted are ever changed by it (see planning/objects.VALUE_PATHS)."""
    values = getattr(target.mapping, "values", None)
    if not values:
        return []
    lines = []
    for path, explained in values.explained(person, sources.scoped.schools).items():
        lines.append(f"  {path}, granted and owned by the connector value by value:")
        for value, reasons in explained:
            lines.append(f"    - {show_value(value)}: {'; '.join(reasons)}")
    return lines
