"""The municipal directory (OpenLDAP or Active Directory) as a source of people, on ldap3.

The whole subtree is read with the paged-results control, so directories larger than the
server's size limit are read whole; any incomplete result (size or time limit, a failed page,
a server that cannot be reached) fails the source as a whole, and a failed source is never
taken to mean that its people are gone. Values are read raw and decoded here, so an entry with
a value that is undecodable or unsafe (connector.model.unsafe_text) is reported by its DN and
skipped, and never a protected person's: those are reported without their DN.
"""

from __future__ import annotations

import contextlib
import re
import ssl
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import structlog
from ldap3 import BASE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPNoSuchObjectResult
from ldap3.utils.config import set_config_parameter
from ldap3.utils.conv import escape_filter_chars

from connector.config import LdapGroupRule, LdapSourceConfig
from connector.errors import SourceError
from connector.people.emails import normalize_email
from connector.people.model import (
    Person,
    Placement,
    ReadContext,
    SourceIssue,
    SourceRead,
    unsafe_text,
)
from connector.sources.marking import MarkingReader

# Entries are read by attribute names folded here (see _entries), so ldap3 need not wrap every
# entry in its case-insensitive dictionaries: a tenth of the time of reading 8,000 entries.
set_config_parameter("CASE_INSENSITIVE_ATTRIBUTE_NAMES", False)

log = structlog.get_logger(__name__)

# userAccountControl flag ACCOUNTDISABLE (MS-ADTS 2.2.16).
AD_ACCOUNT_DISABLED = 0x0002
_RANGED = re.compile(r"^(?P<name>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)
MAX_VALUE_LENGTH = 1024


class _EntryError(Exception):
    pass


def guid_from_bytes(raw: bytes) -> str:
    """Active Directory's objectGUID: 16 bytes, the first three fields little-endian."""
    if len(raw) != 16:
        raise _EntryError(f"objectGUID has {len(raw)} bytes, not 16")
    return str(uuid.UUID(bytes_le=raw))


def account_disabled(user_account_control: str | None) -> bool:
    """True when userAccountControl has ACCOUNTDISABLE set. A missing value is not disabled."""
    if not user_account_control:
        return False
    try:
        return bool(int(user_account_control) & AD_ACCOUNT_DISABLED)
    except ValueError:
        raise _EntryError("userAccountControl is not a number") from None


def normalise_dn(dn: str) -> str:
    """For comparing DNs written by people with DNs returned by servers."""
    return ",".join(part.strip() for part in dn.split(",")).casefold()


def split_ranged(attributes: dict[str, list[bytes]]) -> dict[str, tuple[int, str]]:
    """Attributes the server returned only in part (AD range retrieval): name -> (next, high)."""
    ranged = {}
    for name in attributes:
        match = _RANGED.match(name)
        if match:
            ranged[match["name"].casefold()] = (int(match["low"]), match["high"])
    return ranged


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


@dataclass(slots=True)
class _Counts:
    entries: int = 0
    disabled: int = 0
    referrals: int = 0
    by_base: dict[str, int] = field(default_factory=dict)


def close_connection(connection: Connection) -> None:
    """Unbind, and close the socket even where there was no bind (a failed open or StartTLS
    leaves ldap3's socket open)."""
    with contextlib.suppress(LDAPException, OSError):
        connection.unbind()
    sock = getattr(connection, "socket", None)
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


class LdapDirectorySource:
    def __init__(self, config: LdapSourceConfig, school_codes: Iterable[str] = ()) -> None:
        """`school_codes`: the school units under `schools:`, for group rule templates."""
        self.config = config
        self.name = config.name
        # Group DN -> its rules (one group may place people at several school units).
        self._group_rules: dict[str, list[LdapGroupRule]] = {}
        for rule in config.expanded_group_rules(school_codes):
            self._group_rules.setdefault(normalise_dn(rule.group), []).append(rule)
        self._filter = config.filter

    # -- connection ------------------------------------------------------------------------

    def _tls(self) -> Tls:
        config = self.config
        return Tls(
            validate=ssl.CERT_REQUIRED if config.verify_tls else ssl.CERT_NONE,
            ca_certs_file=str(config.ca_file) if config.ca_file else None,
        )

    def connect(self) -> Connection:
        """Bind to the first server that answers; fail with every server's reason otherwise."""
        config = self.config
        reasons = []
        for url in config.servers:
            secure = url.lower().startswith("ldaps://")
            server = Server(
                url,
                use_ssl=secure,
                tls=self._tls() if (secure or config.start_tls) else None,
                connect_timeout=config.timeout_seconds,
                get_info="NO_INFO",
            )
            connection = Connection(
                server,
                user=config.bind_dn,
                password=config.bind_password(),
                read_only=True,
                raise_exceptions=True,
                receive_timeout=int(max(config.timeout_seconds, 1)),
                auto_referrals=False,
                # Entries are read from their raw bytes; without this, ldap3 would also decode
                # and format every value (half the read time for a big directory).
                check_names=False,
            )
            try:
                connection.open()
                if config.start_tls:
                    connection.start_tls()
                connection.bind()
                return connection
            except (LDAPException, OSError, ssl.SSLError) as exc:
                reasons.append(f"{url}: {_describe(exc)}")
                close_connection(connection)
        raise SourceError(self.name, "; ".join(reasons))

    def _attributes_to_read(self) -> list[str]:
        config = self.config
        names = [v for v in config.attributes.model_dump().values() if v]
        if config.protected_identity.attribute:
            names.append(config.protected_identity.attribute)
        if config.group_rules:
            names.append("memberOf")
        if config.active_directory:
            names.append("userAccountControl")
        return sorted(set(names), key=str.casefold)

    def _entries(
        self, connection: Connection, counts: _Counts, bases: list[str] | None = None
    ) -> Iterator[tuple[str, dict[str, list[bytes]]]]:
        attributes = self._attributes_to_read()
        for base in self.config.base_dns if bases is None else bases:
            before = counts.entries
            try:
                yield from self._entries_under(connection, base, attributes, counts)
            except LDAPException as exc:
                raise self._search_error(connection, base, exc) from None
            result = connection.result or {}
            if result.get("result", 0) != 0:
                raise SourceError(
                    self.name,
                    f"{connection.server.name}: the search under {base!r} is incomplete "
                    f"({result.get('description')})",
                )
            counts.by_base[base] = counts.entries - before

    def _entries_under(
        self, connection: Connection, base: str, attributes: list[str], counts: _Counts
    ) -> Iterator[tuple[str, dict[str, list[bytes]]]]:
        results = connection.extend.standard.paged_search(
            search_base=base,
            search_filter=self._filter,
            search_scope=SUBTREE,
            attributes=attributes,
            paged_size=self.config.page_size,
            generator=True,
        )
        for item in results:
            if item.get("type") != "searchResEntry":
                counts.referrals += 1
                continue
            counts.entries += 1
            raw = {k.casefold(): list(v) for k, v in item["raw_attributes"].items()}
            if self.config.active_directory:
                raw = self._complete_ranged(connection, item["dn"], raw)
            yield item["dn"], raw

    def _search_error(self, connection: Connection, base: str, exc: LDAPException) -> SourceError:
        """A failed search, named by server and base DN: with several of each, which one?"""
        server = connection.server.name
        if isinstance(exc, LDAPNoSuchObjectResult):
            return SourceError(
                self.name,
                f"{server}: the base DN {base!r} does not exist "
                "(or the bind account may not see it)",
            )
        return SourceError(
            self.name, f"{server}: the search under {base!r} failed: {_describe(exc)}"
        )

    def _complete_ranged(
        self, connection: Connection, dn: str, raw: dict[str, list[bytes]]
    ) -> dict[str, list[bytes]]:
        """AD returns large multi-valued attributes in ranges (member;range=0-1499): fetch the rest."""
        ranged = split_ranged(raw)
        for name, (_, high) in ranged.items():
            values: list[bytes] = []
            for key in [k for k in raw if k.startswith(name + ";range=")]:
                values += raw.pop(key)
            while high != "*":
                start = int(high) + 1
                connection.search(
                    dn, "(objectClass=*)", search_scope=BASE, attributes=[f"{name};range={start}-*"]
                )
                if not connection.response:
                    break
                part = {
                    k.casefold(): list(v)
                    for k, v in connection.response[0]["raw_attributes"].items()
                }
                high = "*"
                for key, chunk in part.items():
                    match = _RANGED.match(key)
                    if match and match["name"].casefold() == name:
                        values += chunk
                        high = match["high"]
            raw[name] = values
        return raw

    # -- reading ---------------------------------------------------------------------------

    def read(self, context: ReadContext | None = None) -> SourceRead:
        self._filter = self.config.filter
        if context is not None and context.only is not None:
            # On-demand sync of one person: ask the directory for their entry alone.
            attributes = self.config.attributes
            names = [attributes.email, attributes.username, attributes.join_key]
            if attributes.key.casefold() != "objectguid":
                names.append(attributes.key)
            value = escape_filter_chars(context.only)
            clauses = "".join(f"({name}={value})" for name in names if name)
            self._filter = f"(&{self.config.filter}(|{clauses}))"
        result = SourceRead(source=self.name)
        counts = _Counts()
        seen_keys: set[str] = set()
        marking = self.config.protected_identity
        self._marking = MarkingReader(
            marking.not_protected_values, assume_not_protected=marking.assume_not_protected
        )
        matched: set[str] = set()  # groups (normalised) of rules some entry is in
        connection = self.connect()
        try:
            for dn, raw in self._entries(connection, counts):
                result.rows_read += 1
                matched |= self._rule_groups_of(raw)
                protected = self._is_protected(raw)
                try:
                    person = self._person(dn, raw, protected)
                except _EntryError as exc:
                    where = "an entry marked protected" if protected else dn
                    result.issues.append(SourceIssue(self.name, where, str(exc)))
                    with contextlib.suppress(_EntryError):
                        result.unreadable_keys.add(self._key(raw))
                    continue
                if person is None:
                    counts.disabled += 1
                    continue
                if person.source_key in seen_keys:
                    where = "an entry marked protected" if protected else dn
                    result.issues.append(
                        SourceIssue(self.name, where, "its key is used by another entry")
                    )
                    continue
                seen_keys.add(person.source_key)
                result.persons.append(person)
        except LDAPException as exc:
            raise SourceError(
                self.name, f"{connection.server.name}: search failed: {_describe(exc)}"
            ) from None
        finally:
            close_connection(connection)
        if context is None or context.only is None:
            attribute = self.config.protected_identity.attribute
            self._marking.require_present(self.name, f"attribute {attribute!r}")
            result.suspect += self._rules_that_matched_nobody(matched)
        result.marking_values = self._marking.other_values
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

    def inspect(self) -> DirectoryCheck:
        """For `check`: bind, then whether each base DN and each group rule's group exists,
        how many entries the filter returns under each base and how many members each group has."""
        connection = self.connect()
        report = DirectoryCheck(server=connection.server.name)
        try:
            for base in self.config.base_dns:
                if self._exists(connection, base):
                    report.entries_by_base[base] = 0
                else:
                    report.missing_bases.append(base)
            counts = _Counts()
            for _ in self._entries(connection, counts, list(report.entries_by_base)):
                pass
            report.entries_by_base.update(counts.by_base)
            for rules in self._group_rules.values():
                members = self._member_count(connection, rules[0].group)
                report.groups += [GroupCheck(rule, members) for rule in rules]
        except LDAPException as exc:
            raise SourceError(
                self.name, f"{connection.server.name}: search failed: {_describe(exc)}"
            ) from None
        finally:
            close_connection(connection)
        return report

    def _exists(self, connection: Connection, dn: str) -> bool:
        try:
            connection.search(dn, "(objectClass=*)", search_scope=BASE, attributes=["1.1"])
        except LDAPNoSuchObjectResult:
            return False
        return bool(connection.response)

    def _member_count(self, connection: Connection, group: str) -> int | None:
        """How many members the group has (member, uniqueMember); None if it does not exist."""
        try:
            connection.search(
                group, "(objectClass=*)", search_scope=BASE, attributes=["member", "uniqueMember"]
            )
        except LDAPNoSuchObjectResult:
            return None
        if not connection.response:
            return None
        raw = {k.casefold(): list(v) for k, v in connection.response[0]["raw_attributes"].items()}
        if self.config.active_directory:
            raw = self._complete_ranged(connection, group, raw)
        return len(raw.get("member", [])) + len(raw.get("uniquemember", []))

    def _rule_groups_of(self, raw: dict[str, list[bytes]]) -> set[str]:
        """The groups with rules that this entry is in (memberOf), whatever else it holds."""
        groups = set()
        for value in raw.get("memberof", []) if self._group_rules else []:
            with contextlib.suppress(UnicodeDecodeError):
                group = normalise_dn(value.decode("utf-8"))
                if group in self._group_rules:
                    groups.add(group)
        return groups

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

    def _is_protected(self, raw: dict[str, list[bytes]]) -> bool:
        attribute = self.config.protected_identity.attribute
        values = raw.get(attribute.casefold()) or [] if attribute else []
        try:
            decoded = [v.decode("utf-8") for v in values]
        except UnicodeDecodeError:
            return self._marking.unreadable()
        return self._marking.protected(decoded)

    def _text(self, raw: dict[str, list[bytes]], attribute: str | None) -> list[str]:
        if attribute is None:
            return []
        values = []
        for value in raw.get(attribute.casefold()) or []:
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                raise _EntryError(f"{attribute} cannot be decoded as UTF-8") from None
            reason = unsafe_text(text)  # the one rule for text that can reach a vendor
            if reason is not None:
                raise _EntryError(f"{attribute} {reason}")
            if len(text) > MAX_VALUE_LENGTH:
                raise _EntryError(f"{attribute} is longer than {MAX_VALUE_LENGTH} characters")
            if text.strip():
                values.append(text.strip())
        return values

    def _first(self, raw: dict[str, list[bytes]], attribute: str | None) -> str:
        values = self._text(raw, attribute)
        return values[0] if values else ""

    def _key(self, raw: dict[str, list[bytes]]) -> str:
        attribute = self.config.attributes.key
        values = raw.get(attribute.casefold()) or []
        if not values:
            raise _EntryError(f"the key attribute {attribute} is missing")
        if attribute.casefold() == "objectguid":
            return guid_from_bytes(values[0])
        key = self._first(raw, attribute)
        if not key:
            raise _EntryError(f"the key attribute {attribute} is empty")
        return key

    def _person(self, dn: str, raw: dict[str, list[bytes]], protected: bool) -> Person | None:
        config = self.config
        attributes = config.attributes
        if config.active_directory and account_disabled(self._first(raw, "userAccountControl")):
            return None  # a disabled account counts as not present
        key = self._key(raw)
        values = {
            "given_name": self._first(raw, attributes.given_name),
            "family_name": self._first(raw, attributes.family_name),
            "email": self._first(raw, attributes.email),
            "username": self._first(raw, attributes.username),
        }
        for required in config.required:
            if not values[required]:
                attribute = getattr(attributes, required) or required
                raise _EntryError(f"the required attribute {attribute} is missing")
        email = values["email"] or None
        if email is not None:
            try:
                email = normalize_email(email)
            except ValueError:
                raise _EntryError("the e-mail address is not valid") from None
        role = self._first(raw, attributes.role) or config.default_role
        placements = [
            Placement(school_unit_code=code, role=role)
            for code in self._text(raw, attributes.school_unit_codes)
        ]
        for group_dn in self._text(raw, "memberOf") if self._group_rules else []:
            for rule in self._group_rules.get(normalise_dn(group_dn), []):
                placements.append(
                    Placement(school_unit_code=rule.school_unit_code, role=rule.role or role)
                )
        return Person(
            source_key=key,
            kind=config.kind,
            given_name=values["given_name"],
            family_name=values["family_name"],
            email=email,
            username=values["username"] or None,
            protected=protected,
            placements=tuple(dict.fromkeys(placements)),
            join_key=self._first(raw, attributes.join_key) or None,
        )


def _describe(exc: BaseException) -> str:
    """A reason for the log: the error's kind and message, never a password."""
    message = str(exc).strip() or type(exc).__name__
    return f"{type(exc).__name__}: {message}"[:300]
