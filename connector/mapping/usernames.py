"""Generated usernames, for people the mapping's userName template leaves empty (no e-mail).

A mapping's `user.generate_username` section gives a template ("{given_name|username}.
{family_name|username}"), the vendor's rules (ASCII letters, digits, dots and dashes; a
maximum length) and an optional domain. The first free candidate is the person's for good:
`anna.andersson`, then `anna.andersson2`, `anna.andersson3`... Which names are taken (the
state file, this cycle's other people, the vendor) is found out by the target before planning
(targets/scim/usernames.py); this module only says what the candidates are, so it is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from connector.mapping.template import Template, username
from connector.people.model import unsafe_text

# After the `username` fold: what a vendor accepts in the part before the domain.
_NOT_ALLOWED = re.compile(r"[^a-z0-9.-]+")
_DOTS = re.compile(r"\.{2,}")
# How many numbered candidates are tried before a name is given up on (and the person held).
MAX_CANDIDATES = 999


class UsernameNeeded(ValueError):
    """The userName template is empty for this person and a username is to be generated.

    Carries everything else the mapping made of the person, and the base of the username."""

    def __init__(self, attributes: dict[str, Any], base: str) -> None:
        super().__init__("userName is empty and one is to be generated")
        self.attributes = attributes
        self.base = base


@dataclass(frozen=True, slots=True)
class AssignedName:
    """A generated username as the state file keeps it: the name, and the base it came from."""

    name: str
    base: str


@dataclass(frozen=True, slots=True)
class UsernameRule:
    template: Template
    max_length: int  # of the part before the domain
    domain: str  # "" or "@elev.kommun.se"
    # A renamed person gets a new username (the old one stays reserved). Off by default: a
    # username, once given, is kept.
    regenerate_on_rename: bool = False

    def base(self, context: dict[str, str | None]) -> str:
        """The person's username before any number: folded, vendor-safe, cut to length."""
        text = _NOT_ALLOWED.sub("", username(self.template.render(context)))
        return _DOTS.sub(".", text).strip(".-")[: self.max_length].rstrip(".-")

    def candidates(self, base: str) -> Iterator[str]:
        """The names to try, in order; none for an empty base (nothing to make one from)."""
        if not base:
            return
        for number in range(1, MAX_CANDIDATES + 1):
            suffix = "" if number == 1 else str(number)
            stem = base[: self.max_length - len(suffix)].rstrip(".-")
            name = f"{stem}{suffix}{self.domain}"
            if stem and unsafe_text(name) is None:
                yield name

    def wants_new(self, assigned: AssignedName, base: str) -> bool:
        """Whether an assigned name is to be replaced for a person whose base is now `base`."""
        return self.regenerate_on_rename and bool(base) and assigned.base != base


def pick(rule: UsernameRule, base: str, taken: set[str]) -> Iterator[str]:
    """The candidates not already taken (compared case-insensitively)."""
    for name in rule.candidates(base):
        if name.casefold() not in taken:
            yield name
