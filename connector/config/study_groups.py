"""Study groups (classes and teaching groups) from the directory: group entries found by a
search, their names read by a pattern into a school unit, a group name and a type, as EgilSCIM
reads them."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from connector.config.base import _Strict

StudyGroupTypeName = Literal["Klass", "Undervisning"]
DEFAULT_TYPES: dict[str, StudyGroupTypeName] = {"klass": "Klass", "undervisning": "Undervisning"}


class LdapStudyGroupsConfig(_Strict):
    """Which directory groups are classes and teaching groups, and what their names say."""

    base_dns: list[str] = Field(min_length=1)
    """One or more subtrees holding the group entries (quote each DN)."""
    filter: str = "(|(objectClass=group)(objectClass=groupOfNames))"
    """The LDAP search filter for the group entries."""
    name_attribute: str = "cn"
    """The attribute holding the group's name, which `pattern` reads."""
    member_attribute: str = "member"
    """The attribute listing the group's members by DN (member, uniqueMember). Members of this
    source become students (role student) or, in a staff source, the group's teachers."""
    pattern: str
    """A regular expression matched against the whole name, with the named groups
    school_unit_code (8 digits) and name, and optionally type (see `types`), e.g.
    "(?P<school_unit_code>[0-9]{8})-(?P<type>KL|UG)-(?P<name>.+)". Groups whose name does not
    match are not study groups and are left alone."""
    types: dict[str, StudyGroupTypeName] = Field(default_factory=lambda: dict(DEFAULT_TYPES))
    """What the pattern's type group says (compared ignoring case) -> Klass or Undervisning. A
    group whose type is not listed is reported and left out."""
    default_type: StudyGroupTypeName = "Undervisning"
    """The type of every group when the pattern has no type group."""

    @field_validator("pattern")
    @classmethod
    def _named_groups(cls, pattern: str) -> str:
        try:
            compiled = re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        missing = {"school_unit_code", "name"} - set(compiled.groupindex)
        if missing:
            raise ValueError(
                "the pattern needs the named groups (?P<school_unit_code>...) and (?P<name>...); "
                f"it lacks {', '.join(sorted(missing))}"
            )
        return pattern

    @field_validator("types")
    @classmethod
    def _folded(cls, types: dict[str, StudyGroupTypeName]) -> dict[str, StudyGroupTypeName]:
        return {key.strip().casefold(): value for key, value in types.items()}
