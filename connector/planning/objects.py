"""The objects a plan is made of: what the vendor should hold (desired) and what the connector
believes it holds (known). Plain data, importing nothing that does I/O, so planning stays a
pure function that `plan` and the tests can run without a server or a state file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class DesiredUser:
    external_id: str
    attributes: dict[str, Any]  # PATCH path -> value; always includes "active"


@dataclass(slots=True)
class DesiredGroup:
    external_id: str  # the school unit code
    attributes: dict[str, Any]
    members: set[str] = field(default_factory=set)  # users' external ids


@dataclass(slots=True)
class KnownUser:
    external_id: str
    vendor_id: str
    origin: str  # "created" (by the connector: it may delete it) or "linked"
    active: bool
    attributes: dict[str, Any]
    deactivated_at: datetime | None = None
    version: str | None = None  # the vendor's ETag after our last write, for If-Match


@dataclass(slots=True)
class KnownGroup:
    external_id: str
    vendor_id: str
    origin: str
    attributes: dict[str, Any]
    members: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Known:
    """What the connector believes the vendor holds of the objects it manages."""

    users: dict[str, KnownUser] = field(default_factory=dict)
    groups: dict[str, KnownGroup] = field(default_factory=dict)


# Multi-valued attributes the connector owns value by value (roles and entitlements it
# granted): a value at the vendor that the connector did not grant is never touched. The
# known state holds, under these paths, only the values the connector granted.
VALUE_PATHS: tuple[str, ...] = ("roles", "entitlements")


def value_key(value: dict[str, Any]) -> tuple[str, str]:
    """What makes two values of a multi-valued attribute the same value: value and type."""
    return str(value.get("value") or ""), str(value.get("type") or "")


def values_of(attributes: dict[str, Any], path: str) -> list[dict[str, Any]]:
    """The granted values under `path` (an empty list when there are none)."""
    found = attributes.get(path)
    return [v for v in found if isinstance(v, dict)] if isinstance(found, list) else []


# What the state keeps of a person who became protected: whether the account is active.
SCRUBBED: dict[str, Any] = {"active": False}


def scrubbed(user: KnownUser) -> bool:
    """Only the link is left of this user's record: they became protected."""
    return user.attributes.keys() <= SCRUBBED.keys()


def account_names(attributes: dict[str, Any]) -> dict[str, str]:
    """The names a vendor account is found by besides its externalId: its userName and its
    (first) e-mail address, as SCIM filter paths. The one place that says so."""
    names = {"userName": str(attributes.get("userName") or "")}
    emails = attributes.get("emails") or []
    first = emails[0] if isinstance(emails, list) and emails else None
    if isinstance(first, dict) and first.get("value"):
        names["emails.value"] = str(first["value"])
    return {path: value for path, value in names.items() if value}


def addresses(attributes: dict[str, Any]) -> set[str]:
    """Every name an account answers to (userName and all e-mail values), case-folded."""
    found = {str(attributes.get("userName") or "").casefold()}
    for email in attributes.get("emails") or []:
        if isinstance(email, dict) and email.get("value"):
            found.add(str(email["value"]).casefold())
    return found - {""}
