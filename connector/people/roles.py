"""Who is granted which role values (`roles:` in the config), worked out once per cycle for the
people in scope, so every target sees the same grants.

Only people in scope get here: a protected person never does (people/scope.py drops them
first), so they are granted nothing. A grant is a value at a school unit (its code as the type,
its name as the display) or at a division (its name as the type). Each grant keeps why it was
given (the group, duty or list) for `explain`; that is never sent or logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from connector.config import RoleRule, RolesConfig
from connector.people.model import Grant, Person, Placement, School, unsafe_text

# (type, display, reason) of one place a rule grants its value at.
Place = tuple[str, str, str]


class RoleResolver:
    def __init__(
        self, roles: RolesConfig, schools: dict[str, School], school_codes: Iterable[str]
    ) -> None:
        self.roles = roles
        self.schools = schools
        codes = list(school_codes)
        self.groups = [rule.groups(codes) for rule in roles.rules]
        self.people = [{p.strip().casefold() for p in rule.people} for rule in roles.rules]

    def grants(self, person: Person) -> tuple[Grant, ...]:
        """The person's role values, one per (value, type), sorted; their reasons joined."""
        found: dict[tuple[str, str], tuple[str, list[str]]] = {}
        for index, rule in enumerate(self.roles.rules):
            for kind, display, reason in self._places(index, rule, person):
                _, reasons = found.setdefault((rule.value, kind), (display, []))
                if reason not in reasons:
                    reasons.append(reason)
        return tuple(
            Grant(value, kind, display, tuple(reasons))
            for (value, kind), (display, reasons) in sorted(found.items())
        )

    def _places(self, index: int, rule: RoleRule, person: Person) -> list[Place]:
        if rule.group is not None:
            places = []
            for dn, code in self.groups[index].items():
                if dn not in person.groups:
                    continue
                why = f"directory group {rule.group.replace('{school_unit_code}', code or '')}"
                places += [self._school(code, why)] if code else self._where(rule, person, why)
            return places
        if rule.duty is not None:
            duty = rule.duty.casefold()
            holding = [p for p in person.placements if (p.role or "").casefold() == duty]
            if rule.division is not None:
                holding = [p for p in holding if self._in_division(rule.division, p)]
            elif rule.school_unit is not None:
                holding = [p for p in holding if p.school_unit_code == rule.school_unit]
            places = []
            for placement in holding:
                why = f"duty {placement.role} at {placement.school_unit_code}"
                if rule.division is None:
                    places.append(self._school(placement.school_unit_code, why))
                else:
                    places.append(self._division(rule.division, why))
            return places
        names = {person.source_key, person.email or "", person.username or ""}
        if not {n.casefold() for n in names if n} & self.people[index]:
            return []
        return self._where(rule, person, f"listed under roles.rules[{index}].people")

    def _where(self, rule: RoleRule, person: Person, why: str) -> list[Place]:
        """A rule's own place, or each school unit the person is placed at."""
        if rule.division is not None:
            return [self._division(rule.division, why)]
        if rule.school_unit is not None:
            return [self._school(rule.school_unit, why)]
        codes = dict.fromkeys(p.school_unit_code for p in person.placements)
        return [self._school(code, why) for code in codes]

    def _school(self, code: str, why: str) -> Place:
        school = self.schools.get(code)
        name = school.name if school is not None else code
        return code, (name if name and unsafe_text(name) is None else code), why

    def _division(self, name: str, why: str) -> Place:
        return name, self.roles.divisions[name].display or name, why

    def _in_division(self, name: str, placement: Placement) -> bool:
        school = self.schools.get(placement.school_unit_code)
        types = (
            (placement.school_type,)
            if placement.school_type
            else (school.school_types if school else ())
        )
        return self.roles.divisions[name].holds(placement.school_unit_code, types)


def with_roles(
    roles: RolesConfig,
    persons: list[Person],
    schools: dict[str, School],
    school_codes: Iterable[str],
) -> list[Person]:
    """The people in scope, each with the role values granted to them."""
    if not roles.rules:
        return persons
    resolver = RoleResolver(roles, schools, school_codes)
    out = []
    for person in persons:
        grants = resolver.grants(person)
        out.append(replace(person, grants=grants) if grants else person)
    return out
