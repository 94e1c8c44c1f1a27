"""Who is in and who is out, and why. Protected identity is decided first and is final.

A protected person is dropped here, before mapping: nothing downstream (desired objects, plan,
state, logs) ever sees them. Only the number of people left out per reason survives.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace

from connector.config import Config
from connector.people.join import Joined, join_persons
from connector.people.model import Kind, Person, Placement, School, SourceIssue, SourceRead
from connector.people.roles import with_roles

EXCLUDED_PROTECTED = "protected identity"
EXCLUDED_NO_PLACEMENT = "no placement in a school in scope"


@dataclass(slots=True)
class Scoped:
    persons: list[Person] = field(default_factory=list)
    schools: dict[str, School] = field(default_factory=dict)
    excluded: Counter[str] = field(default_factory=Counter)
    # Held in memory only, to find accounts that must now be taken off the vendor.
    protected: list[Person] = field(default_factory=list, repr=False)
    # Neither in scope nor gone (a join conflict, an unreadable record): left as they are.
    held: list[Person] = field(default_factory=list, repr=False)
    # Everyone after the join, before scope (for `explain`: why someone is not in scope).
    joined: list[Person] = field(default_factory=list, repr=False)
    issues: list[SourceIssue] = field(default_factory=list)


def known_schools(config: Config, reads: list[SourceRead]) -> dict[str, School]:
    """School names and types: from the sources, overridden by the config's `schools:` list."""
    schools: dict[str, School] = {}
    for read in reads:
        for school in read.schools:
            if school.code not in schools or schools[school.code].name == school.code:
                schools[school.code] = school
    for configured in config.schools:
        schools[configured.code] = School(
            code=configured.code,
            name=configured.name,
            school_types=tuple(configured.school_types)
            or (schools[configured.code].school_types if configured.code in schools else ()),
        )
    return schools


def apply_scope(config: Config, reads: list[SourceRead], joined: Joined | None = None) -> Scoped:
    """Who of the joined people is in scope (`joined`: the join's result, made here if not
    given), with their placements narrowed to those in scope and the role values granted to
    them (once for every target; a protected person never gets this far)."""
    scoped = _in_scope(config, reads, joined)
    schools = known_schools(config, reads)
    scoped.persons = with_roles(config.roles, scoped.persons, schools, config.school_codes())
    return scoped


def _in_scope(config: Config, reads: list[SourceRead], joined: Joined | None) -> Scoped:
    scope = config.scope
    school_types = {t.casefold() for t in scope.school_types}
    school_units = set(scope.school_units)
    staff_roles = {r.casefold() for r in scope.staff_roles}
    schools = known_schools(config, reads)
    joined = joined if joined is not None else join_persons(config, reads)
    result = Scoped(
        excluded=Counter(joined.excluded),
        held=joined.held,
        issues=joined.issues,
        joined=joined.persons,
    )
    # Whether a placement's school type is in scope, worked out once per (school, type).
    type_in_scope: dict[tuple[str, str | None], bool] = {}

    def wanted_type(placement: Placement) -> bool:
        key = (placement.school_unit_code, placement.school_type)
        answer = type_in_scope.get(key)
        if answer is None:
            school = schools.get(placement.school_unit_code)
            types = (
                (placement.school_type,)
                if placement.school_type
                else (school.school_types if school else ())
            )
            answer = type_in_scope[key] = any(t.casefold() in school_types for t in types)
        return answer

    for person in joined.persons:
        if person.protected:
            result.excluded[EXCLUDED_PROTECTED] += 1
            result.protected.append(person)
            continue
        placements = []
        for placement in person.placements:
            if school_units and placement.school_unit_code not in school_units:
                continue
            if school_types and not wanted_type(placement):
                continue
            if (
                staff_roles
                and person.kind is Kind.STAFF
                and (placement.role or "").casefold() not in staff_roles
            ):
                continue
            placements.append(placement)
        if not placements:
            result.excluded[EXCLUDED_NO_PLACEMENT] += 1
            continue
        if len(placements) != len(person.placements):
            person = replace(person, placements=tuple(placements))
        if person.study_groups:
            person = _groups_at_placements(person)
        result.persons.append(person)
        for placement in placements:
            code = placement.school_unit_code
            if code not in result.schools:
                result.schools[code] = schools.get(code) or School(code=code, name=code)
    return result


def _groups_at_placements(person: Person) -> Person:
    """Only the study groups at school units the person is placed at in scope: a group at a
    school out of scope is not sent, as the placement there is not."""
    codes = {placement.school_unit_code for placement in person.placements}
    groups = tuple(g for g in person.study_groups if g.school_unit_code in codes)
    return (
        person if len(groups) == len(person.study_groups) else replace(person, study_groups=groups)
    )
