"""One directory entry, read from its raw bytes into a person (or an EntryError saying why not).

Values are decoded here, so an entry with a value that is undecodable, unsafe
(`people.model.unsafe_text`) or absurdly long is reported and skipped as a whole.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from datetime import UTC, datetime

from connector.config import LdapGroupRule, LdapSourceConfig
from connector.people.emails import normalize_email
from connector.people.model import Modified, Person, Placement, normalise_dn, unsafe_text
from connector.people.phones import normalize_mobile
from connector.sources.marking import MarkingReader

# userAccountControl flag ACCOUNTDISABLE (MS-ADTS 2.2.16).
AD_ACCOUNT_DISABLED = 0x0002
RANGED = re.compile(r"^(?P<name>[^;]+);range=(?P<low>\d+)-(?P<high>\d+|\*)$", re.IGNORECASE)
MAX_VALUE_LENGTH = 1024
# When an entry last changed: OpenLDAP's operational modifyTimestamp, AD's whenChanged (AD also
# constructs modifyTimestamp). Generalized time, UTC: 20261205031500Z, 20261205031500.0Z.
CHANGE_TIME_ATTRIBUTES = ["modifyTimestamp", "whenChanged"]

Raw = dict[str, list[bytes]]  # an entry's attributes, names folded, values as sent


class EntryError(Exception):
    """An entry that cannot be used; the message names the attribute, never its value."""


def generalized_time(raw: bytes) -> float | None:
    """A generalized time (RFC 4517 3.3.13) as Unix time, to the second; None if it is not
    one in UTC."""
    text = raw.decode("ascii", "replace").strip()
    if not text.endswith("Z") or len(text) < 15:
        return None
    try:
        when = datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None
    return when.timestamp()


def guid_from_bytes(raw: bytes) -> str:
    """Active Directory's objectGUID: 16 bytes, the first three fields little-endian."""
    if len(raw) != 16:
        raise EntryError(f"objectGUID has {len(raw)} bytes, not 16")
    return str(uuid.UUID(bytes_le=raw))


def account_disabled(user_account_control: str | None) -> bool:
    """True when userAccountControl has ACCOUNTDISABLE set. A missing value is not disabled."""
    if not user_account_control:
        return False
    try:
        return bool(int(user_account_control) & AD_ACCOUNT_DISABLED)
    except ValueError:
        raise EntryError("userAccountControl is not a number") from None


def split_ranged(attributes: Raw) -> dict[str, tuple[int, str]]:
    """Attributes the server returned only in part (AD range retrieval): name -> (next, high)."""
    ranged = {}
    for name in attributes:
        match = RANGED.match(name)
        if match:
            ranged[match["name"].casefold()] = (int(match["low"]), match["high"])
    return ranged


class EntryReader:
    """Reads the entries of one directory read: marking, key, person, group rules matched."""

    def __init__(
        self,
        config: LdapSourceConfig,
        group_rules: dict[str, list[LdapGroupRule]],
        role_groups: frozenset[str],
        marking: MarkingReader,
    ) -> None:
        self.config = config
        self.group_rules = group_rules  # normalised group DN -> its rules
        self.role_groups = role_groups  # normalised group DNs that role rules name
        self.marking = marking

    def rule_groups_of(self, raw: Raw) -> set[str]:
        """The groups with rules that this entry is in (memberOf), whatever else it holds."""
        groups = set()
        for value in raw.get("memberof", []) if self.group_rules else []:
            with contextlib.suppress(UnicodeDecodeError):
                group = normalise_dn(value.decode("utf-8"))
                if group in self.group_rules:
                    groups.add(group)
        return groups

    def is_protected(self, raw: Raw) -> bool:
        attribute = self.config.protected_identity.attribute
        values = (raw.get(attribute.casefold()) or []) if attribute else []
        try:
            decoded = [v.decode("utf-8") for v in values]
        except UnicodeDecodeError:
            return self.marking.unreadable()
        return self.marking.protected(decoded)

    def text(self, raw: Raw, attribute: str | None) -> list[str]:
        if attribute is None:
            return []
        values = []
        for value in raw.get(attribute.casefold()) or []:
            try:
                text = value.decode("utf-8")
            except UnicodeDecodeError:
                raise EntryError(f"{attribute} cannot be decoded as UTF-8") from None
            reason = unsafe_text(text)  # the one rule for text that can reach a vendor
            if reason is not None:
                raise EntryError(f"{attribute} {reason}")
            if len(text) > MAX_VALUE_LENGTH:
                raise EntryError(f"{attribute} is longer than {MAX_VALUE_LENGTH} characters")
            if text.strip():
                values.append(text.strip())
        return values

    def first(self, raw: Raw, attribute: str | None) -> str:
        values = self.text(raw, attribute)
        return values[0] if values else ""

    def key(self, raw: Raw) -> str:
        attribute = self.config.attributes.key
        values = raw.get(attribute.casefold()) or []
        if not values:
            raise EntryError(f"the key attribute {attribute} is missing")
        if attribute.casefold() == "objectguid":
            return guid_from_bytes(values[0])
        key = self.first(raw, attribute)
        if not key:
            raise EntryError(f"the key attribute {attribute} is empty")
        return key

    def person(self, raw: Raw, protected: bool) -> Person | None:
        """The entry's person; None for a disabled AD account (it counts as not present)."""
        config = self.config
        attributes = config.attributes
        if config.active_directory and account_disabled(self.first(raw, "userAccountControl")):
            return None
        key = self.key(raw)
        values = {
            "given_name": self.first(raw, attributes.given_name),
            "family_name": self.first(raw, attributes.family_name),
            "email": self.first(raw, attributes.email),
            "username": self.first(raw, attributes.username),
        }
        for required in config.required:
            if not values[required]:
                attribute = getattr(attributes, required) or required
                raise EntryError(f"the required attribute {attribute} is missing")
        email = values["email"] or None
        if email is not None:
            try:
                email = normalize_email(email)
            except ValueError:
                raise EntryError("the e-mail address is not valid") from None
        return Person(
            source_key=key,
            kind=config.kind,
            given_name=values["given_name"],
            family_name=values["family_name"],
            email=email,
            username=values["username"] or None,
            protected=protected,
            placements=self._placements(raw),
            join_key=self.first(raw, attributes.join_key) or None,
            groups=() if protected else self._role_groups(raw),
            mobile=self._mobile(raw),
            modified=self._modified(raw),
        )

    def _modified(self, raw: Raw) -> Modified | None:
        for attribute in CHANGE_TIME_ATTRIBUTES:
            values = raw.get(attribute.casefold())
            if values:
                when = generalized_time(values[0])
                if when is not None:
                    return Modified(self.config.name, when)
        return None

    def _role_groups(self, raw: Raw) -> tuple[str, ...]:
        """The groups role rules name that this entry is in: those alone."""
        if not self.role_groups:
            return ()
        found = (normalise_dn(dn) for dn in self.text(raw, "memberOf"))
        return tuple(sorted({dn for dn in found if dn in self.role_groups}))

    def _mobile(self, raw: Raw) -> str | None:
        """Checked as a phone number (stricter than the text rule, which refuses a leading +)."""
        attribute = self.config.attributes.mobile
        values = (raw.get(attribute.casefold()) or []) if attribute else []
        if not values or not values[0].strip():
            return None
        try:
            return normalize_mobile(values[0].decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise EntryError(f"{attribute} is not a mobile number") from None

    def _placements(self, raw: Raw) -> tuple[Placement, ...]:
        attributes = self.config.attributes
        role = self.first(raw, attributes.role) or self.config.default_role
        placements = [
            Placement(school_unit_code=code, role=role)
            for code in self.text(raw, attributes.school_unit_codes)
        ]
        for group_dn in self.text(raw, "memberOf") if self.group_rules else []:
            for rule in self.group_rules.get(normalise_dn(group_dn), []):
                if rule.school_unit_code is not None:  # always, once templates are expanded
                    placements.append(Placement(rule.school_unit_code, role=rule.role or role))
        return tuple(dict.fromkeys(placements))
