"""Classes and teaching groups from the directory, as EgilSCIM reads them: group entries found by
a search, each name read by the configured pattern into a school unit code, a group name and a
type, and the members listed by DN. A member of the group who is in this source studies in it
(a student source) or teaches it (a staff source).

Nothing is logged per group, and no count of members: a group whose only members are
protected must look like any other (the scope drops protected people, and their groups with
them)."""

from __future__ import annotations

import contextlib
import re

from ldap3 import Connection

from connector.config import LdapSourceConfig
from connector.config.study_groups import LdapStudyGroupsConfig
from connector.people.model import (
    Kind,
    SourceIssue,
    SourceRead,
    StudyGroup,
    StudyGroupRole,
    normalise_dn,
    unsafe_text,
)
from connector.sources.ldap_entries import EntryError, EntryReader
from connector.sources.ldap_search import Counts, DirectorySearch

NO_GROUPS = "study_groups: no group entry under its base DNs has a name the pattern matches"

# Member DN (normalised) -> the study groups of that member.
Memberships = dict[str, list[StudyGroup]]


class StudyGroupReader:
    def __init__(self, config: LdapSourceConfig, groups: LdapStudyGroupsConfig) -> None:
        self.name = config.name
        self.groups = groups
        self.pattern = re.compile(groups.pattern)
        self.role: StudyGroupRole = "student" if config.kind is Kind.STUDENT else "teacher"
        self.search = DirectorySearch(config)

    def read(self, connection: Connection, entries: EntryReader, result: SourceRead) -> Memberships:
        """Every study group's members; groups that cannot be used are reported by DN (a group's
        name, never a person's) and left out. A search that fails fails the source."""
        groups = self.groups
        members: Memberships = {}
        found = 0
        attributes = [groups.name_attribute, groups.member_attribute]
        counts = Counts()
        for dn, raw in self.search.entries(
            connection, groups.filter, counts, groups.base_dns, attributes=attributes
        ):
            try:
                group = self._group(entries, raw)
            except EntryError as exc:
                result.issues.append(SourceIssue(self.name, dn, str(exc)))
                continue
            if group is None:
                continue  # not a study group
            found += 1
            for member in raw.get(groups.member_attribute.casefold(), []):
                with contextlib.suppress(UnicodeDecodeError):
                    members.setdefault(normalise_dn(member.decode("utf-8")), []).append(group)
        if not found:
            # An emptied folder or a changed naming scheme would take every group away.
            result.suspect.append(NO_GROUPS)
        return members

    def _group(self, entries: EntryReader, raw: dict[str, list[bytes]]) -> StudyGroup | None:
        attribute = self.groups.name_attribute
        names = entries.text(raw, attribute)  # decoded, and the text-safety rule applied
        match = self.pattern.fullmatch(names[0]) if names else None
        if match is None:
            return None
        code = match["school_unit_code"] or ""
        if not re.fullmatch(r"\d{8}", code):
            raise EntryError(f"{attribute}: the school unit code it names is not 8 digits")
        name = (match["name"] or "").strip()
        if not name:
            raise EntryError(f"{attribute}: the group name it names is empty")
        reason = unsafe_text(name)  # the part sent, not only the whole ("7-UG-=A" reads "=A")
        if reason is not None:
            raise EntryError(f"{attribute}: the group name it names {reason}")
        kind = self.groups.default_type
        if "type" in self.pattern.groupindex:
            found = self.groups.types.get((match["type"] or "").strip().casefold())
            if found is None:
                raise EntryError(
                    f"{attribute}: its type is not one listed under study_groups.types"
                )
            kind = found
        return StudyGroup(code, name, kind, self.role)
