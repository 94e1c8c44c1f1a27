"""`connector report duplicates`: vendor accounts that look like the same person as one of ours.

Staff sometimes have two accounts (one with the e-mail as username, one made up). The report
lists vendor accounts the connector does not own that share an e-mail address with an owned
or desired account, or the same name at the same school, and says which one the connector owns.
It only reads; it never merges or deletes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connector.mapping.desired import Desired
from connector.planning.objects import Known, addresses


@dataclass(frozen=True, slots=True)
class DuplicatePair:
    vendor_id: str
    vendor_user_name: str
    owned_vendor_id: str | None  # None: desired, not yet created
    owned_user_name: str
    why: str


def _name(attributes: dict[str, Any]) -> str:
    given = str(attributes.get("name.givenName") or "")
    family = str(attributes.get("name.familyName") or "")
    return f"{given} {family}".strip().casefold()


def _resource_name(resource: dict[str, Any]) -> str:
    name = resource.get("name")
    name = name if isinstance(name, dict) else {}
    full = f"{name.get('givenName') or ''} {name.get('familyName') or ''}".strip()
    return (full or str(resource.get("displayName") or "")).casefold()


def find_duplicates(
    vendor_users: dict[str, dict[str, Any]],
    vendor_groups: dict[str, dict[str, Any]],
    known: Known,
    desired: Desired,
) -> list[DuplicatePair]:
    owned_ids = {u.vendor_id for u in known.users.values()}
    groups_of: dict[str, set[str]] = {}  # vendor user id -> school codes of the groups it is in
    for group in vendor_groups.values():
        code = str(group.get("externalId") or "")
        for member in group.get("members") or []:
            if isinstance(member, dict) and member.get("value"):
                groups_of.setdefault(member["value"], set()).add(code)

    ours: list[tuple[str | None, str, set[str], str, set[str]]] = []
    for ext, user in desired.users.items():
        link = known.users.get(ext)
        schools = {code for code, group in desired.groups.items() if ext in group.members}
        ours.append(
            (
                link.vendor_id if link else None,
                str(user.attributes.get("userName", "")),
                addresses(user.attributes),
                _name(user.attributes),
                schools,
            )
        )

    pairs = []
    for vendor_id, resource in sorted(vendor_users.items()):
        if vendor_id in owned_ids:
            continue
        names = addresses(resource)
        name = _resource_name(resource)
        schools = groups_of.get(vendor_id, set())
        for owned_id, user_name, our_addresses, our_name, our_schools in ours:
            if names & our_addresses:
                why = "same e-mail address"
            elif name and name == our_name and schools & our_schools:
                why = f"same name at school {sorted(schools & our_schools)[0]}"
            else:
                continue
            pairs.append(
                DuplicatePair(
                    vendor_id, str(resource.get("userName") or ""), owned_id, user_name, why
                )
            )
    return pairs
