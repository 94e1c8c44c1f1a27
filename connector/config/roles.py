"""`roles:` - role values the connector grants, and owns value by value.

A rule names a source of truth (a directory group, an SS 12000 duty role, or a list of
people), the role value it grants (say `admin`), and where: at a school unit, at a division (a
named set of school units and school forms, under `divisions:`), or - by default - at each
school unit the person is placed at in scope (for a duty: where they hold that duty). How
people get them: connector/people/roles.py; how they reach a vendor: the mapping's `roles:`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import Field, field_validator, model_validator

from connector.config.base import _Strict
from connector.config.sources import SCHOOL_UNIT_PLACEHOLDER
from connector.people.model import normalise_dn, unsafe_text


class DivisionConfig(_Strict):
    """A named set of school units and school forms (say GR+GY, or VUX): a role granted at a
    division is one value whose type is the division's name."""

    display: str | None = None
    """Sent as the value's `display`; default: the division's name."""
    school_types: list[str] = Field(default_factory=list)
    """The school forms in the division (GR, GY...)."""
    school_units: list[str] = Field(default_factory=list)
    """The school units (8-digit codes) in the division."""

    @field_validator("school_units")
    @classmethod
    def _codes(cls, codes: list[str]) -> list[str]:
        for code in codes:
            if not re.fullmatch(r"\d{8}", code):
                raise ValueError(f"{code!r} is not an 8-digit school unit code")
        return codes

    @model_validator(mode="after")
    def _not_empty(self) -> DivisionConfig:
        if not self.school_types and not self.school_units:
            raise ValueError("a division needs school_types, school_units, or both")
        reason = unsafe_text(self.display) if self.display else None
        if reason is not None:
            raise ValueError(f"display {reason}")
        return self

    def holds(self, code: str, school_types: Iterable[str]) -> bool:
        """Whether a school unit (with these school forms) is in this division."""
        wanted = {t.casefold() for t in self.school_types}
        return code in self.school_units or any(t.casefold() in wanted for t in school_types)


class RoleRule(_Strict):
    """Exactly one of `group`, `duty`, `people`; at most one of `school_unit`, `division`."""

    value: str = Field(min_length=1, max_length=100)
    """The role value granted (say admin)."""
    group: str | None = Field(default=None, min_length=3)
    """A directory group DN, via memberOf; with {school_unit_code}: one group per school
    under `schools:`."""
    duty: str | None = Field(default=None, min_length=1)
    """A placement's duty role, from SS 12000 or a roster's role column."""
    people: list[str] = Field(default_factory=list)
    """Source keys, e-mail addresses or usernames."""
    school_unit: str | None = Field(default=None, pattern=r"^\d{8}$")
    """Grant at this school unit (8 digits); without school_unit or division: at each school
    unit the person is placed at in scope (for a duty: where they hold it)."""
    division: str | None = None
    """Grant at this division (a name under roles.divisions)."""

    @field_validator("value")
    @classmethod
    def _safe(cls, value: str) -> str:
        reason = unsafe_text(value)
        if reason is not None or value != value.strip():
            raise ValueError(reason or "has spaces around it")
        return value

    @property
    def is_template(self) -> bool:
        return self.group is not None and SCHOOL_UNIT_PLACEHOLDER in self.group

    @model_validator(mode="after")
    def _one_source_one_place(self) -> RoleRule:
        sources = [s for s in (self.group, self.duty, self.people or None) if s]
        if len(sources) != 1:
            raise ValueError("a rule names exactly one of group, duty, people")
        if self.school_unit is not None and self.division is not None:
            raise ValueError("a rule grants at a school_unit or a division, not both")
        if self.group is not None:
            unknown = set(re.findall(r"\{[^{}]*\}", self.group)) - {SCHOOL_UNIT_PLACEHOLDER}
            if unknown:
                raise ValueError(f"group: {', '.join(sorted(unknown))} is not a placeholder")
            if self.is_template and (self.school_unit or self.division):
                raise ValueError(
                    f"a group template with {SCHOOL_UNIT_PLACEHOLDER} grants at each school "
                    "unit under `schools:`: leave out school_unit and division"
                )
        return self

    def groups(self, school_codes: Iterable[str]) -> dict[str, str | None]:
        """Normalised group DN -> the school unit it grants at (a template's code), or None."""
        if self.group is None:
            return {}
        if not self.is_template:
            return {normalise_dn(self.group): None}
        return {
            normalise_dn(self.group.replace(SCHOOL_UNIT_PLACEHOLDER, code)): code
            for code in school_codes
        }


class RolesConfig(_Strict):
    """Role rules, the divisions they may grant at, and whether to revoke."""

    rules: list[RoleRule] = Field(default_factory=list)
    """Each rule: `value`, exactly one source of truth (`group`, `duty` or `people`) and
    where: `school_unit`, `division`, or neither."""
    divisions: dict[str, DivisionConfig] = Field(default_factory=dict)
    """Named sets of school units and school forms, for rules that grant at a division."""
    revoke: bool = False
    """Grant-only (false, the default): a value the connector granted that no rule gives any
    more stays at the vendor (and stays recorded as granted) until this is true. Revocations
    then count against safety.max_revocations. A person who becomes protected loses the
    values the connector granted at once, whatever this says."""

    @model_validator(mode="after")
    def _divisions_exist(self) -> RolesConfig:
        for name in self.divisions:
            reason = unsafe_text(name)
            if reason is not None:
                raise ValueError(f"divisions.{name}: the name {reason}")
        for index, rule in enumerate(self.rules):
            if rule.division is not None and rule.division not in self.divisions:
                raise ValueError(
                    f"rules[{index}].division: {rule.division!r} is not under divisions: "
                    f"({', '.join(sorted(self.divisions)) or 'none'})"
                )
        return self

    def group_dns(self, school_codes: Iterable[str]) -> frozenset[str]:
        """Every (normalised) group DN a rule names: what a directory source looks for."""
        codes = list(school_codes)
        return frozenset(dn for rule in self.rules for dn in rule.groups(codes))
