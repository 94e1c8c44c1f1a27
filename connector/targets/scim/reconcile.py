"""Full reconcile: what the vendor really holds of the objects the connector owns.

Ordinary cycles trust the state file. A full reconcile lists the vendor's users and groups
(paged) and builds the known state from them instead, so the plan repairs drift: attributes
changed by hand, owned accounts deleted at the vendor (re-created and re-linked), memberships
added or removed by hand in owned groups. Objects the connector does not own are read but never
become part of the known state, so nothing is ever planned for them; members that are not the
connector's users (a hand-made account in a school's group) are likewise left alone.

A listing is believed only if it is plausible: one that is empty, or that has lost more of the
linked accounts than the deletion threshold allows, is a vendor-side fault (a wrong tenant, a
broken page) far more often than a real loss, so nothing is unlinked because of it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import structlog

from connector.config import Limit
from connector.errors import TargetError
from connector.mapping.desired import Desired
from connector.planning.objects import (
    VALUE_PATHS,
    Known,
    KnownGroup,
    KnownUser,
    value_key,
    values_of,
)
from connector.progress import Progress
from connector.state.target import TargetState
from connector.targets.scim.client import ScimClient, ScimError
from connector.targets.scim.resources import flatten, quote_filter_value, same_value

log = structlog.get_logger(__name__)


class ImplausibleListing(TargetError):
    """The vendor's listing cannot be the truth about the accounts the connector links."""


def implausible(what: str, linked: int, listed: int, vanished: int, limit: Limit) -> str | None:
    """Why a listing of `what` (users, groups) is not believed, or None when it is."""
    if not linked:
        return None
    if listed == 0:
        return (
            f"the vendor lists no {what}, but the state file links {linked}: not believed "
            "(a wrong base URL or tenant, or a fault at the vendor?); nothing is unlinked"
        )
    if vanished > limit.count and 100 * vanished / linked > limit.percent:
        return (
            f"{vanished} of the {linked} linked {what} are missing from the vendor's listing "
            f"(more than {limit.count} and {limit.percent:g}%): not believed; nothing is unlinked"
        )
    return None


@dataclass(slots=True)
class Observation:
    known: Known
    described: ClassVar[str] = "full reconcile with the vendor's real state"
    vanished_users: list[str] = field(default_factory=list)  # owned, but gone at the vendor
    vanished_groups: list[str] = field(default_factory=list)
    # owned users found under another vendor id (re-created at the vendor with our externalId)
    relinked_users: dict[str, str] = field(default_factory=dict)
    vendor_users: dict[str, dict[str, Any]] = field(default_factory=dict)  # by vendor id
    vendor_groups: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, state: TargetState) -> None:
        """Forget links to what vanished at the vendor (re-created if still wanted) and follow
        accounts re-created there under our externalId."""
        for ext in self.vanished_users:
            state.forget_user(ext)
        for ext in self.vanished_groups:
            state.forget_group(ext)
        for ext, vendor_id in self.relinked_users.items():
            state.relink_user(ext, vendor_id)


def _observed_attributes(
    resource: dict[str, Any], wanted: dict[str, Any], recorded: dict[str, Any]
) -> dict[str, Any]:
    """The vendor's values of the paths the connector manages for this object.

    Where the vendor's value is equivalent to the wanted one (userName and e-mail ignoring
    case), the wanted value stands in for it, so equivalence never becomes a needless update.
    """
    paths = set(wanted) | set(recorded)
    actual = flatten(resource, paths)
    observed = {}
    for path in paths & set(VALUE_PATHS):
        # Owned value by value: of the values the connector granted, those still there. A
        # value granted by hand is not the connector's, so it is never part of what it knows.
        there = {value_key(v) for v in values_of(actual, path)}
        if still := [v for v in values_of(recorded, path) if value_key(v) in there]:
            observed[path] = still
    for path in paths - set(VALUE_PATHS):
        value = actual.get(path)
        if value is None:
            continue
        want = wanted.get(path)
        observed[path] = want if want is not None and same_value(path, want, value) else value
    return observed


def observe_vendor(
    client: ScimClient,
    recorded: Known,
    desired: Desired,
    *,
    page_size: int = 200,
    limit: Limit | None = None,
    progress: tuple[Progress, str] | None = None,
    concurrency: int = 1,
) -> Observation:
    """What the vendor holds of the owned objects. `limit`: how many linked users may be
    missing from the listing before it is not believed (ImplausibleListing); None: any.
    `progress`: a tracker and the target's name, told of each page read."""
    vendor_users = _list_all(client, "Users", page_size, progress, concurrency)
    vendor_groups = _list_all(client, "Groups", page_size, progress, concurrency)
    users_by_ext = _by_external_id(vendor_users)
    groups_by_ext = _by_external_id(vendor_groups)
    if limit is not None:
        _believe(recorded, vendor_users, users_by_ext, vendor_groups, groups_by_ext, limit)
    observation = Observation(Known(), vendor_users=vendor_users, vendor_groups=vendor_groups)
    for ext, user in recorded.users.items():
        resource = vendor_users.get(user.vendor_id) or users_by_ext.get(ext)
        if resource is None:
            observation.vanished_users.append(ext)
            continue
        if resource["id"] != user.vendor_id:
            observation.relinked_users[ext] = resource["id"]
        wanted = desired.users[ext].attributes if ext in desired.users else user.attributes
        observation.known.users[ext] = _observed_user(resource, user, wanted)
    owned = {u.vendor_id: ext for ext, u in observation.known.users.items()}
    for ext, group in recorded.groups.items():
        resource = vendor_groups.get(group.vendor_id) or groups_by_ext.get(ext)
        if resource is None:
            observation.vanished_groups.append(ext)
            continue
        if "members" not in resource:  # some vendors leave members out of list responses
            resource = client.get("Groups", resource["id"])
        wanted = desired.groups[ext].attributes if ext in desired.groups else group.attributes
        observation.known.groups[ext] = _observed_group(resource, group, wanted, owned)
    log.info(
        "reconcile.observed",
        vendor_users=len(vendor_users),
        vendor_groups=len(vendor_groups),
        owned_users=len(observation.known.users),
        owned_groups=len(observation.known.groups),
        vanished_users=len(observation.vanished_users),
        vanished_groups=len(observation.vanished_groups),
    )
    return observation


def _list_all(
    client: ScimClient,
    resource_type: str,
    page_size: int,
    progress: tuple[Progress, str] | None,
    concurrency: int,
) -> dict[str, dict[str, Any]]:
    """Every resource of the type by its id, read `concurrency` pages at a time (the pages
    told as phase `list_users` or `list_groups`). Two resources with one id - pages that
    overlapped because the vendor changed under the listing - fail it: it is not whole."""
    if progress is None:
        listing = client.list_all(resource_type, page_size=page_size, concurrency=concurrency)
        return _by_id(resource_type, listing)
    tracker, target = progress
    tracker.begin(target, f"list_{resource_type.lower()}")
    try:
        listing = client.list_all(
            resource_type, page_size=page_size, on_page=tracker.update, concurrency=concurrency
        )
        return _by_id(resource_type, listing)
    finally:
        tracker.finish()


def _by_id(resource_type: str, listing: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for resource in listing:
        if found.setdefault(resource["id"], resource) is not resource:
            raise ScimError(
                "GET",
                f"/{resource_type}",
                200,
                "the listing held one resource twice: the vendor changed under it",
            )
    return found


def _by_external_id(resources: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {str(r["externalId"]): r for r in resources.values() if r.get("externalId")}


def _believe(
    recorded: Known,
    vendor_users: dict[str, dict[str, Any]],
    users_by_ext: dict[str, dict[str, Any]],
    vendor_groups: dict[str, dict[str, Any]],
    groups_by_ext: dict[str, dict[str, Any]],
    limit: Limit,
) -> None:
    """Raise ImplausibleListing for a listing that cannot be the truth about what is linked."""
    checks: tuple[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]], ...] = (
        ("users", recorded.users, vendor_users, users_by_ext),
        ("groups", recorded.groups, vendor_groups, groups_by_ext),
    )
    for what, linked, by_id, by_ext in checks:
        vanished = sum(
            1 for ext, o in linked.items() if o.vendor_id not in by_id and ext not in by_ext
        )
        problem = implausible(what, len(linked), len(by_id), vanished, limit)
        if problem:
            raise ImplausibleListing(problem)


def _observed_user(resource: dict[str, Any], user: KnownUser, wanted: dict[str, Any]) -> KnownUser:
    meta = resource.get("meta")
    return KnownUser(
        user.external_id,
        resource["id"],
        user.origin,
        resource.get("active", True) is not False,
        _observed_attributes(resource, wanted, user.attributes),
        user.deactivated_at,
        meta.get("version") if isinstance(meta, dict) else None,
    )


def _observed_group(
    resource: dict[str, Any], group: KnownGroup, wanted: dict[str, Any], owned: dict[str, str]
) -> KnownGroup:
    """Members the connector does not own (a hand-made account in a school's group) are not
    part of it: nothing is ever planned for them."""
    members = {
        owned[m["value"]]
        for m in resource.get("members") or []
        if isinstance(m, dict) and m.get("value") in owned
    }
    return KnownGroup(
        group.external_id,
        resource["id"],
        group.origin,
        _observed_attributes(resource, wanted, group.attributes),
        members,
    )


def resolve_interrupted_creates(state: TargetState, client: ScimClient, desired: Desired) -> int:
    """Creates a crashed run may have sent without recording: link what the vendor has.

    Objects still wanted are found by the create's own lookup. For the others (gone from the
    sources since the crash) the vendor is asked by externalId, and what exists is linked as
    created, so the ordinary lifecycle deprovisions it instead of leaving an orphan.
    """
    linked = 0
    for ext, kind in state.intents().items():
        wanted = desired.users if kind == "user" else desired.groups
        if ext in wanted:
            continue
        resource_type = "Users" if kind == "user" else "Groups"
        found = client.search(resource_type, f"externalId eq {quote_filter_value(ext)}")
        if len(found) == 1:
            resource = found[0]
            if kind == "user":
                attributes = flatten(resource, {"userName", "active"})
                attributes["externalId"] = ext
                state.record_user(ext, resource["id"], "created", attributes)
            else:
                state.record_group(ext, resource["id"], "created", {"externalId": ext})
            linked += 1
        else:
            state.clear_intent(ext)
    if linked:
        log.warning("reconcile.interrupted_creates", linked=linked)
    return linked
