"""The plan: a pure function from (desired objects, known vendor state) to ordered operations.

It touches no network and no file, so `connector plan` can print exactly what `sync` would do,
and tests can check it without a server. Operations name users and groups by externalId; apply
resolves vendor ids as creates succeed. Updates carry only changed, managed attributes;
membership changes are add/remove operations in bounded chunks, never a replace of the list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from connector.planning.objects import (
    SCRUBBED,
    VALUE_PATHS,
    DesiredGroup,
    DesiredUser,
    Known,
    KnownGroup,
    KnownUser,
    scrubbed,
    value_key,
    values_of,
)
from connector.planning.rekey import Rekey

# The kinds of operation, in the order they are applied: groups before users so members have
# somewhere to go; additions before removals so a person moving school is never in no group at
# all; deprovisioning last, memberships before the accounts they point at. A re-key (an account
# moving to its person's new key, planning/rekey.py) comes before the memberships it carries.
OperationKind = Literal[
    "create_group",
    "update_group",
    "create_user",
    "rekey_user",
    "update_user",
    "grant_values",
    "add_members",
    "remove_members",
    "revoke_values",
    "deactivate_user",
    "delete_user",
    "delete_group",
]
ORDER: tuple[OperationKind, ...] = get_args(OperationKind)
DEPROVISIONING: frozenset[OperationKind] = frozenset(
    {"remove_members", "revoke_values", "deactivate_user", "delete_user", "delete_group"}
)

# Why an operation takes something away. Safety rules hold back some reasons, never "protected":
# taking a protected person off the vendor is never postponed.
Reason = Literal["", "moved", "left", "expired", "protected", "empty"]
CAUSED_BY_MISSING_PLACEMENTS: frozenset[str] = frozenset({"left", "expired"})


@dataclass(frozen=True, slots=True)
class PlanRules:
    """The lifecycle settings the planner applies."""

    member_chunk_size: int = 100
    # Delete an account the connector created this long after it was deactivated; None: never.
    delete_after: timedelta | None = timedelta(days=90)
    # A person who became protected: "delete" the account the connector created (their school
    # is exactly what must not leak), or "deactivate" it and remove every membership.
    protected_policy: Literal["delete", "deactivate"] = "delete"
    delete_empty_groups: bool = False
    # Take away role and entitlement values the connector granted that are no longer wanted
    # (`roles.revoke`); off: grant-only. A protected person's values always go.
    revoke_values: bool = False
    now: datetime | None = None  # for the grace period; None: never expired


@dataclass(frozen=True, slots=True)
class Operation:
    kind: OperationKind
    target: str  # externalId of the user or group
    vendor_id: str | None = None  # known for updates and deactivations
    # create: every managed attribute; update: changed paths only (None = remove the value);
    # grant/revoke_values: path -> the values to add or remove (see VALUE_PATHS)
    attributes: dict[str, Any] = field(default_factory=dict)
    members: tuple[str, ...] = ()  # user externalIds, for add/remove_members
    reason: Reason = ""
    # rekey_user: the externalId the account moves from, and which names matched (paths)
    previous: str = ""
    why: str = ""

    def as_dict(self, *, values: bool = True) -> dict[str, Any]:
        """As JSON. `values=False` (a held plan kept in the state file) names the attributes
        an update changes without their values: approving re-plans them anyway."""
        out: dict[str, Any] = {"op": self.kind, "target": self.target}
        if self.reason:
            out["reason"] = self.reason
        if self.vendor_id:
            out["vendor_id"] = self.vendor_id
        if self.attributes:
            if values:
                out["attributes"] = self.attributes
            else:
                out["paths"] = sorted(self.attributes)
        if self.members:
            out["members"] = list(self.members)
        if self.previous:
            out["from"], out["why"] = self.previous, self.why
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Operation:
        """The inverse of `as_dict`; attributes kept as names only come back without values."""
        attributes = data.get("attributes") or dict.fromkeys(data.get("paths", ()))
        return cls(
            data["op"],
            data["target"],
            data.get("vendor_id"),
            attributes=attributes,
            members=tuple(data.get("members", ())),
            reason=data.get("reason", ""),
            previous=data.get("from", ""),
            why=data.get("why", ""),
        )


@dataclass(slots=True)
class Plan:
    operations: list[Operation] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = dict.fromkeys(ORDER, 0)
        for op in self.operations:
            counts[op.kind] += len(op.members) if op.members else 1
        return counts

    def of_kind(self, kind: OperationKind) -> list[Operation]:
        return [op for op in self.operations if op.kind == kind]

    def without_deprovisioning(self) -> Plan:
        """Everything but deprovisioning; a protected person's removal is never held back."""
        return Plan(
            [
                op
                for op in self.operations
                if op.kind not in DEPROVISIONING or op.reason == "protected"
            ]
        )

    def split(self, hold: Callable[[Operation], bool]) -> tuple[Plan, Plan]:
        """(operations to run, operations held back)."""
        kept, held = Plan(), Plan()
        for op in self.operations:
            (held if hold(op) else kept).operations.append(op)
        return kept, held

    def __bool__(self) -> bool:
        return bool(self.operations)


def changed_attributes(desired: dict[str, Any], applied: dict[str, Any]) -> dict[str, Any]:
    """Paths whose desired value differs from the last applied one; None means 'remove it'."""
    changes = {path: value for path, value in desired.items() if applied.get(path) != value}
    for path in applied.keys() - desired.keys():
        if applied[path] is not None:
            changes[path] = None
    return changes


def _chunks(items: Iterable[str], size: int) -> Iterator[tuple[str, ...]]:
    ordered = sorted(items)
    for start in range(0, len(ordered), size):
        yield tuple(ordered[start : start + size])


def make_plan(
    users: dict[str, DesiredUser],
    groups: dict[str, DesiredGroup],
    known: Known,
    *,
    protected: frozenset[str] = frozenset(),
    keep: frozenset[str] = frozenset(),
    rules: PlanRules | None = None,
    member_chunk_size: int | None = None,
    create_only: frozenset[str] = frozenset(),
    rekeys: dict[str, Rekey] | None = None,
) -> Plan:
    """`protected`: externalIds of people the sources now mark protected (never desired).
    `keep`: externalIds of people neither in scope nor gone (unreadable, in a join conflict):
    their accounts and memberships are left as they are. `create_only`: user attributes set
    when an account is created and never updated after (`on: create` in the mapping).
    `rekeys`: new externalId -> the re-key that moves a gone person's account to it
    (planning/rekey.py)."""
    rules = rules or PlanRules()
    # A user whose record was scrubbed for protected identity stays protected until the
    # sources show them unprotected (desired) again: an incremental source mentions them only
    # once, and a removal held back or failed must stay a protected person's removal.
    protected = protected | {
        ext for ext, user in known.users.items() if ext not in users and scrubbed(user)
    }
    planner = _Planner(users, known, protected, keep, rules, member_chunk_size)
    planner.create_only = create_only
    planner.rekey(rekeys or {})
    planner.groups(groups)
    planner.users()
    planner.leavers()
    return Plan([op for kind in ORDER for op in planner.ops[kind]])


class _Planner:
    """The operations of one plan, gathered by kind (then emitted in ORDER)."""

    def __init__(
        self,
        users: dict[str, DesiredUser],
        known: Known,
        protected: frozenset[str],
        keep: frozenset[str],
        rules: PlanRules,
        chunk: int | None,
    ) -> None:
        self.desired_users = users
        self.known = known
        self.protected = protected
        self.kept = keep - protected  # protected wins over kept
        self.rules = rules
        self.chunk = chunk or rules.member_chunk_size
        self.ops: dict[OperationKind, list[Operation]] = {kind: [] for kind in ORDER}
        self.create_only: frozenset[str] = frozenset()
        self.rekeys: dict[str, Rekey] = {}
        self.moved: dict[str, str] = {}  # old externalId -> new, for re-keyed accounts

    def rekey(self, rekeys: dict[str, Rekey]) -> None:
        """Accounts moving to their person's new key: the account is the old one's (its
        memberships count as the new key's), and neither is created nor deactivated."""
        left_alone = self.protected | self.kept
        for new, found in rekeys.items():
            old = found.old
            fresh = new in self.desired_users and new not in self.known.users
            gone = old in self.known.users and old not in self.desired_users
            if fresh and gone and old not in left_alone and old not in self.moved:
                self.rekeys[new] = found
                self.moved[old] = new

    def members(self, group: KnownGroup) -> set[str]:
        """A known group's members, re-keyed accounts under their new key."""
        if not self.moved:
            return group.members
        return {self.moved.get(member, member) for member in group.members}

    def add(self, op: Operation) -> None:
        self.ops[op.kind].append(op)

    def removals(self, group_ext: str, gone: set[str]) -> None:
        """Memberships to take away, in chunks, by why they go."""
        by_reason: dict[Reason, set[str]] = {"protected": set(), "left": set(), "moved": set()}
        for user_ext in gone - self.kept:
            reason: Reason = (
                "protected"
                if user_ext in self.protected
                else "moved"
                if user_ext in self.desired_users
                else "left"
            )
            by_reason[reason].add(user_ext)
        for reason, members in by_reason.items():
            for part in _chunks(members, self.chunk):
                self.add(Operation("remove_members", group_ext, members=part, reason=reason))

    def groups(self, groups: dict[str, DesiredGroup]) -> None:
        for ext, group in sorted(groups.items()):
            seen = self.known.groups.get(ext)
            recorded: set[str] = set()
            if seen is None:
                self.add(Operation("create_group", ext, attributes=group.attributes))
            else:
                changes = changed_attributes(group.attributes, seen.attributes)
                if changes:
                    self.add(Operation("update_group", ext, seen.vendor_id, attributes=changes))
                recorded = self.members(seen)
            for part in _chunks(group.members - recorded, self.chunk):
                self.add(Operation("add_members", ext, members=part))
            self.removals(ext, recorded - group.members)
        # A group no longer desired (a school with nobody left) is emptied of the members the
        # connector put there, and kept unless configured otherwise.
        for ext, seen in sorted(self.known.groups.items()):
            if ext in groups:
                continue
            self.removals(ext, self.members(seen))
            still_held = seen.members & self.kept
            if self.rules.delete_empty_groups and seen.origin == "created" and not still_held:
                self.add(Operation("delete_group", ext, seen.vendor_id, reason="empty"))

    def users(self) -> None:
        for ext, user in sorted(self.desired_users.items()):
            seen = self.known.users.get(ext)
            if ext in self.rekeys:
                self.rekey_user(user, self.rekeys[ext])
                continue
            if seen is None:
                self.add(Operation("create_user", ext, attributes=user.attributes))
                continue
            owned = _has_values(user.attributes) or _has_values(seen.attributes)
            desired, applied = (
                (_without_values(user.attributes), _without_values(seen.attributes))
                if owned
                else (user.attributes, seen.attributes)
            )
            changes = changed_attributes(desired, applied)
            for path in self.create_only & changes.keys():
                del changes[path]  # set once, then the vendor's: never updated, nor reverted
            if changes:
                self.add(Operation("update_user", ext, seen.vendor_id, attributes=changes))
            if owned:
                self.values(ext, seen, user.attributes)

    def values(self, ext: str, seen: KnownUser, desired: dict[str, Any]) -> None:
        """Values the connector owns: grant what is missing from what it granted; revoke (if
        allowed) what it granted and is no longer wanted. Nothing else is ever touched."""
        grant, revoke = {}, {}
        for path in VALUE_PATHS:
            granted = {value_key(v): v for v in values_of(seen.attributes, path)}
            wanted = {value_key(v): v for v in values_of(desired, path)}
            if missing := [v for k, v in sorted(wanted.items()) if k not in granted]:
                grant[path] = missing
            if gone := [v for k, v in sorted(granted.items()) if k not in wanted]:
                revoke[path] = gone
        if grant:
            self.add(Operation("grant_values", ext, seen.vendor_id, attributes=grant))
        if revoke and self.rules.revoke_values:
            self.add(Operation("revoke_values", ext, seen.vendor_id, attributes=revoke))

    def rekey_user(self, user: DesiredUser, found: Rekey) -> None:
        """The gone person's account, changed to the new person: its externalId, `active`, and
        whatever else differs from what was last applied to it."""
        moving = self.known.users[found.old]
        # Values the connector owns follow value by value next cycle; what is set once stays.
        changes = changed_attributes(
            _without_values(user.attributes), _without_values(moving.attributes)
        )
        for path in self.create_only & changes.keys():
            del changes[path]
        self.add(
            Operation(
                "rekey_user",
                user.external_id,
                moving.vendor_id,
                changes,
                previous=found.old,
                why=found.why,
            )
        )

    def leavers(self) -> None:
        """Known users no longer desired: protected ones are taken off, leavers deactivated
        (and deleted after the grace period), kept ones left alone."""
        for ext, seen in sorted(self.known.users.items()):
            if ext in self.desired_users or ext in self.kept or ext in self.moved:
                continue
            if ext in self.protected:
                self._protected(ext, seen)
            elif seen.active:
                self.add(
                    Operation(
                        "deactivate_user", ext, seen.vendor_id, {"active": False}, reason="left"
                    )
                )
            elif _grace_expired(seen, self.rules):
                self.add(Operation("delete_user", ext, seen.vendor_id, reason="expired"))

    def _protected(self, ext: str, seen: KnownUser) -> None:
        if self.rules.protected_policy == "delete" and seen.origin == "created":
            self.add(Operation("delete_user", ext, seen.vendor_id, reason="protected"))
            return
        # An account that stays: the values the connector granted go (they name schools).
        revoke = {p: values_of(seen.attributes, p) for p in VALUE_PATHS}
        if revoke := {p: values for p, values in revoke.items() if values}:
            self.add(Operation("revoke_values", ext, seen.vendor_id, revoke, reason="protected"))
        if seen.active or seen.attributes != SCRUBBED:
            self.add(
                Operation(
                    "deactivate_user", ext, seen.vendor_id, {"active": False}, reason="protected"
                )
            )


def _has_values(attributes: dict[str, Any]) -> bool:
    return any(path in attributes for path in VALUE_PATHS)


def _without_values(attributes: dict[str, Any]) -> dict[str, Any]:
    return {p: v for p, v in attributes.items() if p not in VALUE_PATHS}


def _grace_expired(user: KnownUser, rules: PlanRules) -> bool:
    if rules.delete_after is None or rules.now is None or user.origin != "created":
        return False
    if user.deactivated_at is None:
        return False
    return rules.now - user.deactivated_at >= rules.delete_after
