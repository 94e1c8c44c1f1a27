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
from collections.abc import Iterator
from dataclasses import dataclass, field

import structlog
from ldap3 import BASE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException
from ldap3.utils.config import set_config_parameter
from ldap3.utils.conv import escape_filter_chars

from connector.config import LdapSourceConfig
from connector.emails import normalize_email
from connector.errors import SourceError
from connector.marking import MarkingReader
from connector.model import (
    Person,
    Placement,
    ReadContext,
    SourceIssue,
    SourceRead,
    unsafe_text,
)

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
class _Counts:
    entries: int = 0
    disabled: int = 0
    referrals: int = 0
    by_base: dict[str, int] = field(default_factory=dict)


class LdapDirectorySource:
    def __init__(self, config: LdapSourceConfig) -> None:
        self.config = config
        self.name = config.name
        self._group_rules = {normalise_dn(r.group): r for r in config.group_rules}
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
                with contextlib.suppress(LDAPException, OSError):
                    connection.unbind()
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
        self, connection: Connection, counts: _Counts
    ) -> Iterator[tuple[str, dict[str, list[bytes]]]]:
        config = self.config
        attributes = self._attributes_to_read()
        for base in config.base_dns:
            before = counts.entries
            results = connection.extend.standard.paged_search(
                search_base=base,
                search_filter=self._filter,
                search_scope=SUBTREE,
                attributes=attributes,
                paged_size=config.page_size,
                generator=True,
            )
            for item in results:
                if item.get("type") != "searchResEntry":
                    counts.referrals += 1
                    continue
                counts.entries += 1
                raw = {k.casefold(): list(v) for k, v in item["raw_attributes"].items()}
                if config.active_directory:
                    raw = self._complete_ranged(connection, item["dn"], raw)
                yield item["dn"], raw
            result = connection.result or {}
            if result.get("result", 0) != 0:
                raise SourceError(
                    self.name, f"{base}: incomplete result ({result.get('description')})"
                )
            counts.by_base[base] = counts.entries - before

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
        connection = self.connect()
        try:
            for dn, raw in self._entries(connection, counts):
                result.rows_read += 1
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
            raise SourceError(self.name, f"search failed: {_describe(exc)}") from None
        finally:
            with contextlib.suppress(LDAPException, OSError):
                connection.unbind()
        if context is None or context.only is None:
            attribute = self.config.protected_identity.attribute
            self._marking.require_present(self.name, f"attribute {attribute!r}")
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

    def count(self) -> dict[str, int]:
        """For `check`: bind, then how many entries the filter returns under each base DN."""
        counts = _Counts()
        connection = self.connect()
        try:
            for base in self.config.base_dns:
                connection.search(base, "(objectClass=*)", search_scope=BASE, attributes=["1.1"])
            for _ in self._entries(connection, counts):
                pass
        except LDAPException as exc:
            raise SourceError(self.name, f"search failed: {_describe(exc)}") from None
        finally:
            with contextlib.suppress(LDAPException, OSError):
                connection.unbind()
        return counts.by_base

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
        role = self._first(raw, attributes.role) or None
        placements = [
            Placement(school_unit_code=code, role=role)
            for code in self._text(raw, attributes.school_unit_codes)
        ]
        for group_dn in self._text(raw, "memberOf") if self._group_rules else []:
            rule = self._group_rules.get(normalise_dn(group_dn))
            if rule is not None:
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
