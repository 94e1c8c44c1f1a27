"""The plan: a pure function from (desired objects, known vendor state) to ordered operations.

It touches no network and no file, so `connector plan` can print exactly what `sync` would do,
and tests can check it without a server. Operations name users and groups by externalId; apply
resolves vendor ids as creates succeed. Updates carry only changed, managed attributes;
membership changes are add/remove operations in bounded chunks, never a replace of the list.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from connector.mapping import DesiredGroup, DesiredUser
from connector.state import Known

OperationKind = Literal[
    "create_group",
    "update_group",
    "create_user",
    "update_user",
    "add_members",
    "remove_members",
    "deactivate_user",
]
# Groups before users so members have somewhere to go; additions before removals so a
# person moving school is never in no group at all; deprovisioning last.
ORDER: tuple[OperationKind, ...] = (
    "create_group",
    "update_group",
    "create_user",
    "update_user",
    "add_members",
    "remove_members",
    "deactivate_user",
)
DEPROVISIONING: frozenset[OperationKind] = frozenset({"remove_members", "deactivate_user"})


@dataclass(frozen=True, slots=True)
class Operation:
    kind: OperationKind
    target: str  # externalId of the user or group
    vendor_id: str | None = None  # known for updates and deactivations
    # create: every managed attribute; update: changed paths only (None = remove the value)
    attributes: dict[str, Any] = field(default_factory=dict)
    members: tuple[str, ...] = ()  # user externalIds, for add/remove_members

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.kind, "target": self.target}
        if self.vendor_id:
            out["vendor_id"] = self.vendor_id
        if self.attributes:
            out["attributes"] = self.attributes
        if self.members:
            out["members"] = list(self.members)
        return out


@dataclass(slots=True)
class Plan:
    operations: list[Operation] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ORDER, 0)
        for op in self.operations:
            counts[op.kind] += len(op.members) if op.members else 1
        return counts

    def of_kind(self, kind: OperationKind) -> list[Operation]:
        return [op for op in self.operations if op.kind == kind]

    def without_deprovisioning(self) -> Plan:
        return Plan([op for op in self.operations if op.kind not in DEPROVISIONING])

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
    member_chunk_size: int = 100,
) -> Plan:
    ops: dict[OperationKind, list[Operation]] = {kind: [] for kind in ORDER}

    for ext, group in sorted(groups.items()):
        seen = known.groups.get(ext)
        if seen is None:
            ops["create_group"].append(Operation("create_group", ext, attributes=group.attributes))
            recorded_members: set[str] = set()
        else:
            changes = changed_attributes(group.attributes, seen.attributes)
            if changes:
                ops["update_group"].append(
                    Operation("update_group", ext, seen.vendor_id, attributes=changes)
                )
            recorded_members = seen.members
        for chunk in _chunks(group.members - recorded_members, member_chunk_size):
            ops["add_members"].append(Operation("add_members", ext, members=chunk))
        for chunk in _chunks(recorded_members - group.members, member_chunk_size):
            ops["remove_members"].append(Operation("remove_members", ext, members=chunk))

    # Groups no longer desired (a school with nobody left) are kept, but emptied of the
    # members the connector put there.
    for ext, seen in sorted(known.groups.items()):
        if ext not in groups:
            for chunk in _chunks(seen.members, member_chunk_size):
                ops["remove_members"].append(Operation("remove_members", ext, members=chunk))

    for ext, user in sorted(users.items()):
        seen_user = known.users.get(ext)
        if seen_user is None:
            ops["create_user"].append(Operation("create_user", ext, attributes=user.attributes))
            continue
        changes = changed_attributes(user.attributes, seen_user.attributes)
        if changes:
            ops["update_user"].append(
                Operation("update_user", ext, seen_user.vendor_id, attributes=changes)
            )

    for ext, seen_user in sorted(known.users.items()):
        if ext not in users and seen_user.active:
            ops["deactivate_user"].append(
                Operation("deactivate_user", ext, seen_user.vendor_id, attributes={"active": False})
            )

    return Plan([op for kind in ORDER for op in ops[kind]])
