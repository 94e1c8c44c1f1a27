"""Generated usernames, picked before planning: for each person the mapping left without a
userName (no e-mail), the first candidate (connector/mapping/usernames.py) that no account in
the state file holds or reserves, nobody else in this cycle is mapped to, and the vendor does
not know (`userName eq "..."`: a hand-made account counts too). The name is stored in the
state file at once and used for that person from then on; planning stays pure."""

from __future__ import annotations

import structlog

from connector.errors import TargetError
from connector.mapping.desired import EXCLUDED_MAPPING, Desired, add_user
from connector.mapping.usernames import AssignedName, UsernameRule, pick
from connector.people.model import SourceIssue
from connector.state.target import TargetState
from connector.targets.scim.client import ScimClient, VendorError
from connector.targets.scim.resources import quote_filter_value

log = structlog.get_logger(__name__)


def assign_usernames(
    desired: Desired,
    rule: UsernameRule,
    state: TargetState | None,
    client: ScimClient,
    *,
    store: bool = True,
) -> None:
    """Give each of `desired.pending_usernames` a free name and add them to `desired`; one
    who gets none is left out with an issue and held. `store`: record what is given (not
    for `connector plan`, which changes nothing)."""
    pending, desired.pending_usernames = desired.pending_usernames, {}
    if not pending:
        return
    owner = {str(u.attributes["userName"]).casefold(): e for e, u in desired.users.items()}
    taken = (state.usernames_in_use() if state else set()) | owner.keys()
    held, given, vendor_down = set(desired.held_ids), 0, False
    for ext in sorted(pending):
        person, name, why = pending[ext], None, "no free username could be made from the name"
        if vendor_down:
            why = "the vendor could not be asked whether a username is free"
        else:
            try:
                name = _first_free(rule, person.base, taken, client, ext)
            except TargetError as exc:
                vendor_down = isinstance(exc, VendorError)
                why = "the vendor could not be asked whether a username is free"
        if name is None:
            desired.excluded[EXCLUDED_MAPPING] += 1
            desired.issues.append(SourceIssue("mapping", f"user {ext[:12]}", why))
            held.add(ext)
            continue
        taken.add(name.casefold())
        if store and state is not None:
            state.assign_username(ext, AssignedName(name, person.base))
        given += 1
        attributes = {**person.attributes, "userName": name}
        if not add_user(desired, ext, attributes, person.schools, owner):
            held.add(ext)
    desired.held_ids = frozenset(held)
    log.info("username.generated", count=given, failed=len(pending) - given, stored=store)


def _first_free(
    rule: UsernameRule, base: str, taken: set[str], client: ScimClient, ext: str
) -> str | None:
    """The first candidate neither taken here nor at the vendor (an account there carrying
    our externalId is this person's own: a name given before the state file knew it)."""
    for name in pick(rule, base, taken):
        found = client.search("Users", f"userName eq {quote_filter_value(name)}")
        if all(resource.get("externalId") == ext for resource in found):
            return name
        taken.add(name.casefold())
    return None
