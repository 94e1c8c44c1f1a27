"""The municipal directory (OpenLDAP or Active Directory) as a source of people, on ldap3.

The whole subtree is read with the paged-results control, so directories larger than the
server's size limit are read whole; any incomplete result (size or time limit, a failed page,
a server that cannot be reached) fails the source as a whole, and a failed source is never
taken to mean that its people are gone. Values are read raw and decoded (ldap_entries), so an
entry with a value that is undecodable or unsafe is reported by its DN and skipped, and never a
protected person's: those are reported without their DN.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

import structlog
from ldap3 import Connection
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars

from connector.config import LdapGroupRule, LdapSourceConfig
from connector.errors import SourceError
from connector.people.model import ReadContext, SourceIssue, SourceRead, normalise_dn
from connector.sources.ldap_changes import ChangeMarker, DirectoryChanges
from connector.sources.ldap_entries import EntryError, EntryReader
from connector.sources.ldap_groups import Memberships, StudyGroupReader
from connector.sources.ldap_search import (
    Counts,
    DirectorySearch,
    close_connection,
    describe,
)
from connector.sources.marking import MarkingReader

__all__ = ["DirectoryCheck", "GroupCheck", "LdapDirectorySource", "close_connection"]

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class GroupCheck:
    rule: LdapGroupRule
    members: int | None  # None: the group does not exist (or the bind account cannot see it)


@dataclass(slots=True)
class DirectoryCheck:
    """What `check` finds in the directory: see LdapDirectorySource.inspect."""

    server: str
    entries_by_base: dict[str, int] = field(default_factory=dict)
    missing_bases: list[str] = field(default_factory=list)
    groups: list[GroupCheck] = field(default_factory=list)


class LdapDirectorySource:
    def __init__(
        self,
        config: LdapSourceConfig,
        school_codes: Iterable[str] = (),
        role_groups: frozenset[str] = frozenset(),
    ) -> None:
        """`school_codes`: the school units under `schools:`, for group rule templates.
        `role_groups`: the (normalised) group DNs role rules name: a person carries those of
        them they are in, and no other group."""
        self.config = config
        self.name = config.name
        self.role_groups = role_groups
        self.search = DirectorySearch(config, member_of=bool(role_groups))
        # Group DN -> its rules (one group may place people at several school units).
        self._group_rules: dict[str, list[LdapGroupRule]] = {}
        for rule in config.expanded_group_rules(school_codes):
            self._group_rules.setdefault(normalise_dn(rule.group), []).append(rule)

    def connect(self) -> Connection:
        return self.search.connect()

    def change_marker(self, previous: ChangeMarker | None = None) -> ChangeMarker:
        """What the directory looks like now, cheaply (sources/ldap_changes.py): a daemon
        takes one before each read and asks again, relative to it, before the next."""
        groups = sorted(set(self._group_rules) | set(self.role_groups))
        connection = self.connect()
        try:
            return DirectoryChanges(self.config, groups).marker(connection, previous)
        finally:
            close_connection(connection)

    def read(self, context: ReadContext | None = None) -> SourceRead:
        only = context.only if context is not None else None
        marking = self.config.protected_identity
        entries = EntryReader(
            self.config,
            self._group_rules,
            self.role_groups,
            MarkingReader(
                marking.not_protected_values, assume_not_protected=marking.assume_not_protected
            ),
        )
        result = SourceRead(source=self.name)
        counts = Counts()
        matched: set[str] = set()  # groups (normalised) of rules some entry is in
        connection = self.connect()
        try:
            groups = self._study_groups(connection, entries, result)
            self._read_entries(
                connection, self._filter(only), entries, result, counts, matched, groups
            )
        except LDAPException as exc:
            raise SourceError(
                self.name, f"{connection.server.name}: search failed: {describe(exc)}"
            ) from None
        finally:
            close_connection(connection)
        if only is None:
            entries.marking.require_present(self.name, f"attribute {marking.attribute!r}")
            result.suspect += self._rules_that_matched_nobody(matched)
        result.marking_values = entries.marking.other_values
        log.info(
            "source.read",
            source=self.name,
            entries=counts.entries,
            persons=len(result.persons),
            disabled=counts.disabled,
            referrals_ignored=counts.referrals,
            issues=len(result.issues),
        )
        return result

    def _filter(self, only: str | None) -> str:
        """The configured filter; for an on-demand sync of one person, their entry alone."""
        if only is None:
            return self.config.filter
        attributes = self.config.attributes
        names = [attributes.email, attributes.username, attributes.join_key]
        if attributes.key.casefold() != "objectguid":
            names.append(attributes.key)
        value = escape_filter_chars(only)
        clauses = "".join(f"({name}={value})" for name in names if name)
        return f"(&{self.config.filter}(|{clauses}))"

    def _study_groups(
        self, connection: Connection, entries: EntryReader, result: SourceRead
    ) -> Memberships:
        groups = self.config.study_groups
        if groups is None:
            return {}
        return StudyGroupReader(self.config, groups).read(connection, entries, result)

    def _read_entries(
        self,
        connection: Connection,
        search_filter: str,
        entries: EntryReader,
        result: SourceRead,
        counts: Counts,
        matched: set[str],
        groups: Memberships,
    ) -> None:
        seen_keys: set[str] = set()
        bases = self.config.base_dns
        for dn, raw in self.search.entries(connection, search_filter, counts, bases):
            result.rows_read += 1
            matched |= entries.rule_groups_of(raw)
            protected = entries.is_protected(raw)
            where = "an entry marked protected" if protected else dn
            try:
                person = entries.person(raw, protected)
            except EntryError as exc:
                result.issues.append(SourceIssue(self.name, where, str(exc)))
                with contextlib.suppress(EntryError):
                    result.unreadable_keys.add(entries.key(raw))
                continue
            if person is None:
                counts.disabled += 1
            elif person.source_key in seen_keys:
                result.issues.append(
                    SourceIssue(self.name, where, "its key is used by another entry")
                )
            else:
                seen_keys.add(person.source_key)
                in_groups = None if protected else groups.get(normalise_dn(dn))
                if in_groups:
                    person = replace(person, study_groups=tuple(dict.fromkeys(in_groups)))
                result.persons.append(person)

    def inspect(self) -> DirectoryCheck:
        """For `check`: bind, then whether each base DN and each group rule's group exists,
        how many entries the filter returns under each base and how many members each group has."""
        connection = self.connect()
        report = DirectoryCheck(server=connection.server.name)
        try:
            for base in self.config.base_dns:
                if self.search.exists(connection, base):
                    report.entries_by_base[base] = 0
                else:
                    report.missing_bases.append(base)
            counts = Counts()
            found = list(report.entries_by_base)
            for _ in self.search.entries(connection, self.config.filter, counts, found):
                pass
            report.entries_by_base.update(counts.by_base)
            for rules in self._group_rules.values():
                members = self.search.member_count(connection, rules[0].group)
                report.groups += [GroupCheck(rule, members) for rule in rules]
        except LDAPException as exc:
            raise SourceError(
                self.name, f"{connection.server.name}: search failed: {describe(exc)}"
            ) from None
        finally:
            close_connection(connection)
        return report

    def _rules_that_matched_nobody(self, matched: set[str]) -> list[str]:
        """A rule whose group nobody read is in was most likely broken by a renamed or emptied
        group: the people it placed would lose their school. Its reasons make the read suspect,
        so nothing is deprovisioned from this source until it is fixed or approved."""
        reasons = []
        for group, rules in self._group_rules.items():
            if group in matched:
                continue
            for rule in rules:
                log.warning(
                    "source.rule_matched_nobody",
                    source=self.name,
                    group=rule.group,
                    school_unit_code=rule.school_unit_code,
                    consequence="nobody read is a member of this group: deactivations and "
                    "membership removals are held this cycle",
                )
                reasons.append(
                    f"group rule {rule.group} (school unit {rule.school_unit_code}) matched nobody"
                )
        return reasons
