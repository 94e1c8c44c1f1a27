"""What applying one operation came to, and what a whole plan came to (the report)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.planning.plan import Operation
from connector.targets.base import ApplyReport

__all__ = ["ApplyReport", "Conflict", "Outcome"]


class Conflict(Exception):
    """The vendor holds objects that make linking ambiguous; nothing is changed."""


@dataclass(slots=True)
class Outcome:
    op: Operation
    # created | recovered | linked | rekeyed | updated | deactivated | added | removed | failed
    # | conflict
    result: str
    vendor_id: str | None = None
    applied: dict[str, Any] | None = None
    members: tuple[str, ...] = ()
    error: str | None = None
    gone: bool = False  # the object no longer exists at the vendor
    version: str | None = None  # the vendor's ETag after this change
    transient: bool = False  # the vendor failed (no answer, 429, 5xx), not the object
    vendor_wide: bool = False  # the vendor refused the connector as a whole (VendorError)
    status: int | None = None  # the HTTP status of a failure, where there was one


# After this many transient failures in a row, the vendor is taken to be down for the rest
# of the cycle: the remaining operations wait for the next cycle instead of each retrying.
VENDOR_DOWN_AFTER = 5


def failure_key(op: Operation) -> str:
    """What a failure is remembered under (opaque: kinds and externalIds)."""
    return f"{op.kind}:{op.target}"


def origin_of(result: str) -> str:
    """Who made the account: the connector (created now, or earlier and found again) or
    somebody else (linked). Only what the connector made is ever deleted."""
    return "linked" if result == "linked" else "created"


def version_of(resource: dict[str, Any]) -> str | None:
    meta = resource.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    return str(version) if version else None


def ref(external_id: str) -> str:
    """An opaque, short reference for logs: a prefix of the (already opaque) externalId."""
    return external_id[:12]


def scrub_error(text: str, attributes: dict[str, Any]) -> str:
    """Remove the object's own values from a vendor's error text before it is logged."""
    for value in attributes.values():
        if isinstance(value, str) and len(value) > 2:
            text = text.replace(value, "<redacted>")
    return text
