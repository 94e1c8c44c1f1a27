"""`connector report duplicates`: vendor accounts that look like the same person as one of ours.

Staff sometimes have two accounts (one with the e-mail as username, one made up). The report
lists vendor accounts the connector does not own that share an e-mail address with an owned
or desired account, or the same name at the same school, and says which one the connector owns.
It only reads; it never merges or deletes anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog

from connector.mapping.desired import Desired
from connector.planning.objects import Known, addresses
from connector.state.target import TargetState
from connector.targets.base import Observation
from connector.targets.scim.reconcile import Observation as ScimObservation

log = structlog.get_logger(__name__)


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


_Ours = tuple[str | None, str, set[str], str, set[str]]


def _ours(known: Known, desired: Desired) -> list[_Ours]:
    """Every desired account: (its vendor id if linked, userName, addresses, name, schools)."""
    schools_of: dict[str, set[str]] = {}
    for code, group in desired.groups.items():
        for ext in group.members:
            schools_of.setdefault(ext, set()).add(code)
    ours: list[_Ours] = []
    for ext, user in desired.users.items():
        link = known.users.get(ext)
        ours.append(
            (
                link.vendor_id if link else None,
                str(user.attributes.get("userName", "")),
                addresses(user.attributes),
                _name(user.attributes),
                schools_of.get(ext, set()),
            )
        )
    return ours


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
    ours = _ours(known, desired)
    # Indexed by address and by name, so a full reconcile of 20,000 can count them cheaply.
    by_address: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    for index, (_, _, our_addresses, our_name, _) in enumerate(ours):
        for address in our_addresses:
            by_address.setdefault(address, []).append(index)
        by_name.setdefault(our_name, []).append(index)

    pairs = []
    for vendor_id, resource in sorted(vendor_users.items()):
        if vendor_id in owned_ids:
            continue
        names = addresses(resource)
        name = _resource_name(resource)
        schools = groups_of.get(vendor_id, set())
        candidates = {i for address in names for i in by_address.get(address, ())}
        candidates.update(by_name.get(name, ()) if name else ())
        for index in sorted(candidates):
            owned_id, user_name, our_addresses, our_name, our_schools = ours[index]
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


def remember_count(
    state: TargetState, observation: Observation, desired: Desired, now: datetime
) -> None:
    """After a full reconcile: how many possible duplicates there are, for the status page
    (a count only; the vendor's accounts are already at hand, no request is made)."""
    if not isinstance(observation, ScimObservation):
        return
    try:
        pairs = find_duplicates(
            observation.vendor_users, observation.vendor_groups, observation.known, desired
        )
    except Exception as exc:  # a vendor's odd answer must not cost the cycle
        log.warning("duplicates.not_counted", error=type(exc).__name__)
        return
    state.set_duplicates(len(pairs), now)
