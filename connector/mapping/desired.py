"""The desired vendor state: the in-scope people and their schools, mapped to SCIM objects."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from connector.mapping.usernames import AssignedName, UsernameNeeded
from connector.people.externalid import ExternalIdMaker
from connector.people.model import Modified, Person, School, SourceIssue, unsafe_text
from connector.people.scope import Scoped
from connector.planning.objects import DesiredGroup, DesiredUser
from connector.planning.rekey import Rekey

EXCLUDED_MAPPING = "cannot be mapped"
EXCLUDED_DUPLICATE_USERNAME = "userName shared with another person"


@dataclass(slots=True)
class Desired:
    users: dict[str, DesiredUser] = field(default_factory=dict)
    groups: dict[str, DesiredGroup] = field(default_factory=dict)
    excluded: Counter[str] = field(default_factory=Counter)
    issues: list[SourceIssue] = field(default_factory=list)
    # externalIds of people now marked protected; in memory only, never stored or logged.
    protected_ids: frozenset[str] = frozenset()
    # externalIds of people neither in scope nor gone: nothing is deprovisioned for them.
    held_ids: frozenset[str] = frozenset()
    # New externalId -> the re-key moving a gone person's account to it (cycle/rekeying.py).
    rekeys: dict[str, Rekey] = field(default_factory=dict)
    # People without a userName who are to get a generated one (the target picks it).
    pending_usernames: dict[str, PendingUser] = field(default_factory=dict)
    # externalId -> when a source last changed that person's record, where it says (for
    # connector_change_latency_seconds). In memory only.
    modified: dict[str, Modified] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class PendingUser:
    """A person mapped but for their userName, which is to be generated from `base`."""

    base: str
    attributes: dict[str, Any]
    schools: tuple[str, ...]  # school unit codes: the groups they are a member of


class PersonMapping(Protocol):
    """What turns people and schools into a target's objects: a SCIM mapping
    (mapping/profile.py) or a file mapping (targets/file/mapping.py)."""

    @property
    def path(self) -> Path: ...

    def describe(self) -> str:
        """What it maps, in a few words (for `check`)."""
        ...

    def user_attributes(
        self, person: Person, external_id: str, schools: dict[str, School] | None = None
    ) -> dict[str, Any]: ...

    def group_attributes(self, school: School) -> dict[str, Any]: ...


def build_desired(
    scoped: Scoped,
    mapping: PersonMapping,
    ids: ExternalIdMaker,
    usernames: Mapping[str, AssignedName] | None = None,
) -> Desired:
    """`usernames`: the names generated earlier for people without a userName (by
    externalId); people who need one and have none are left in `pending_usernames`."""
    desired = Desired(excluded=Counter(scoped.excluded), issues=list(scoped.issues))
    desired.protected_ids = _ids_of(scoped.protected, ids)
    held = set(_ids_of(scoped.held, ids))
    for code, school in scoped.schools.items():
        desired.groups[code] = DesiredGroup(
            external_id=code, attributes=_group_attributes(mapping, school, desired.issues)
        )
    owner_of_username: dict[str, str] = {}
    for person in scoped.persons:
        external_id = ""
        schools = tuple(p.school_unit_code for p in person.placements)
        try:
            external_id = ids.for_person(person)
            attributes = mapping.user_attributes(person, external_id, scoped.schools)
        except UsernameNeeded as need:
            assigned = (usernames or {}).get(external_id)
            rule = getattr(mapping, "username_rule", None)
            if assigned is None or (rule is not None and rule.wants_new(assigned, need.base)):
                desired.pending_usernames[external_id] = PendingUser(
                    need.base, need.attributes, schools
                )
                continue
            attributes = {**need.attributes, "userName": assigned.name}
        except ValueError as exc:
            desired.excluded[EXCLUDED_MAPPING] += 1
            where = f"user {external_id[:12]}" if external_id else f"a {person.kind.value}"
            desired.issues.append(SourceIssue("mapping", where, str(exc)))
            if external_id:
                held.add(external_id)  # like an unreadable row: not gone, so not deprovisioned
            continue
        if not add_user(desired, external_id, attributes, schools, owner_of_username):
            held.add(external_id)
        elif person.modified is not None:
            desired.modified[external_id] = person.modified
    desired.held_ids = frozenset(held)
    return desired


def add_user(
    desired: Desired,
    external_id: str,
    attributes: dict[str, Any],
    schools: tuple[str, ...],
    owner_of_username: dict[str, str],
) -> bool:
    """Add one mapped person and their memberships; False (reported) if their userName is
    another's. `owner_of_username`: case-folded userName -> externalId, kept up to date."""
    username = str(attributes["userName"]).casefold()
    if username in owner_of_username and owner_of_username[username] != external_id:
        # Vendors key accounts on userName: two people cannot share one. Neither guess is
        # safe, but the first keeps its account, the clash is reported and the other is
        # held (not gone: an account of theirs stays until the clash is fixed).
        desired.excluded[EXCLUDED_DUPLICATE_USERNAME] += 1
        desired.issues.append(
            SourceIssue(
                "mapping",
                f"user {external_id[:12]}",
                f"userName also used by user {owner_of_username[username][:12]}",
            )
        )
        return False
    owner_of_username[username] = external_id
    desired.users[external_id] = DesiredUser(external_id=external_id, attributes=attributes)
    for code in schools:
        desired.groups[code].members.add(external_id)
    return True


def _group_attributes(
    mapping: PersonMapping, school: School, issues: list[SourceIssue]
) -> dict[str, Any]:
    """A school's group, named by its school unit code where its mapped name fails the
    text-safety rule (a group cannot be left out: its members would lose it)."""
    attributes = mapping.group_attributes(school)
    for path, value in list(attributes.items()):
        reason = unsafe_text(value) if path != "externalId" else None
        if reason is not None:
            attributes[path] = school.code
            why = f"{path} {reason}; the group is named by its school unit code"
            issues.append(SourceIssue("mapping", f"school {school.code}", why))
    return attributes


def _ids_of(persons: list[Person], ids: ExternalIdMaker) -> frozenset[str]:
    found = set()
    for person in persons:
        try:
            found.add(ids.for_person(person))
        except ValueError:
            continue  # a key that may not be sent was never sent: nothing to match
    return frozenset(found)
