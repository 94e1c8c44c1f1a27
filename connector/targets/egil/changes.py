"""A plan's operations as requests to an EGIL server: one request per object (a group's
membership changes and attribute changes are ONE PUT of the whole object), staged in EGIL's
send order - Organisation, SchoolUnitGroup, SchoolUnit, Student, Teacher, Employment,
StudentGroup, Activity - with deletions after, in the reverse order. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from connector.planning.objects import Known
from connector.planning.plan import Operation, Plan
from connector.targets.egil.objects import RESOURCE, SEND_ORDER, TEACHERS, USER_RESOURCES
from connector.targets.egil.plan import resource_of

Method = Literal["POST", "PUT", "DELETE"]


@dataclass(slots=True)
class Change:
    """One object's request: what it is, how it is sent, and the operations it carries."""

    target: str
    resource: str  # "" where the record no longer says (a protected person's: scrubbed)
    method: Method
    ops: list[Operation] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)  # flat, as the plan keeps them
    members: set[str] = field(default_factory=set)


def gather(plan: Plan, known: Known, *, resend: bool = False) -> list[Change]:
    """Each object's operations, as one request. `resend` (a full reconcile): every other
    known object too, as a PUT of what it is believed to be (a Change without operations)."""
    by_object: dict[str, list[Operation]] = {}
    for op in plan.operations:
        by_object.setdefault(op.target, []).append(op)
    changes = [_change(target, ops, known) for target, ops in by_object.items()]
    if resend:
        for target in sorted((known.users.keys() | known.groups.keys()) - by_object.keys()):
            change = _change(target, [], known)
            if sendable(change) is None:
                changes.append(change)
    return changes


def stages(changes: list[Change]) -> list[list[Change]]:
    """The requests in the order they are sent: each stage's may run concurrently."""
    order = {resource: i for i, resource in enumerate(SEND_ORDER)}
    writes: dict[int, list[Change]] = {}
    deletes: dict[int, list[Change]] = {}
    for change in changes:
        rank = order.get(change.resource, order[TEACHERS])
        (deletes if change.method == "DELETE" else writes).setdefault(rank, []).append(change)
    found = [writes[rank] for rank in sorted(writes)]
    found += [deletes[rank] for rank in sorted(deletes, reverse=True)]
    return found


def _change(target: str, ops: list[Operation], known: Known) -> Change:
    kinds = {op.kind for op in ops}
    seen_at = known.users.get(target) or known.groups.get(target)
    resource = next((r for op in ops if (r := resource_of(op, known))), "") or str(
        seen_at.attributes.get(RESOURCE) or "" if seen_at else ""
    )
    if kinds & {"delete_user", "delete_group"}:
        return Change(target, resource, "DELETE", ops)
    if kinds & {"create_user", "create_group"}:
        create = next(op for op in ops if op.kind in ("create_user", "create_group"))
        members = {m for op in ops if op.kind == "add_members" for m in op.members}
        return Change(target, resource, "POST", ops, dict(create.attributes), members)
    seen = known.users.get(target) or known.groups.get(target)
    attributes = dict(seen.attributes) if seen else {}
    members = set(getattr(seen, "members", set()))
    for op in ops:
        if op.kind in ("update_user", "update_group", "deactivate_user"):
            attributes.update(op.attributes)
        elif op.kind == "add_members":
            members |= set(op.members)
        elif op.kind == "remove_members":
            members -= set(op.members)
    if "deactivate_user" in kinds:
        # EGIL has no `active`: a deactivated User stays, enrolled nowhere, until deleted.
        attributes["enrolments"] = []
    attributes = {k: v for k, v in attributes.items() if v is not None}
    return Change(target, resource, "PUT", ops, attributes, members)


def sendable(change: Change) -> str | None:
    """Why a PUT or POST cannot be sent (its record holds too little), or None."""
    if change.method == "DELETE":
        return None
    if change.attributes.get(RESOURCE) is None:
        return "the state file holds too little of this object to send it whole"
    if change.resource in USER_RESOURCES and not change.attributes.get("userName"):
        return "the state file holds too little of this user to send it whole"
    return None
