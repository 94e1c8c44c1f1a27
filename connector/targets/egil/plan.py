"""Planning for an EGIL target: the shared planner (planning/plan.py) over the EGIL objects,
so every safety rule applies unchanged, with what EGIL changes. Pure.

- An object no longer desired is deleted (EGIL has no empty group to keep: an Employment, a
  StudentGroup, an Activity, a school unit is there or not).
- An Employment's deletion says why, as its person's would: `protected` (never held back),
  `left` (held like a leaver's deactivation, e.g. in the rollover window) or `moved`. An
  Employment of a person who is held (an unreadable row) is kept.
- A person who becomes protected is deleted (EGIL's User has no `active`, and what a PUT would
  need is their data): the protected policy is always `delete`.
- "Deactivate" at an EGIL server (no `active` attribute) is a PUT of the User without
  enrolments, while their memberships and employments go (as a leaver's); the User is DELETEd
  once the lifecycle's grace period (`delete_after`) has passed.
- Re-keys are not planned: an EGIL object's id is its externalId, which cannot change. A person
  whose key changed is a leaver and a new person.
"""

from __future__ import annotations

from dataclasses import replace

from connector.mapping.desired import Desired
from connector.planning.objects import Known
from connector.planning.plan import Operation, Plan, PlanRules, Reason, make_plan
from connector.targets.egil.objects import EMPLOYMENTS, RESOURCE


def egil_plan(
    desired: Desired,
    known: Known,
    rules: PlanRules,
    create_only: frozenset[str] = frozenset(),
) -> Plan:
    rules = replace(rules, protected_policy="delete", delete_empty_groups=True)
    plan = make_plan(
        desired.users,
        desired.groups,
        known,
        protected=desired.protected_ids,
        keep=desired.held_ids,
        rules=rules,
        create_only=create_only,
    )
    protected = desired.protected_ids
    operations = []
    for op in plan.operations:
        if op.kind == "delete_group" and _resource(known, op.target) == EMPLOYMENTS:
            user = str(known.groups[op.target].attributes.get("user") or "")
            if user in desired.held_ids and user not in protected:
                continue  # their employment stays while they are held
            reason: Reason = (
                "protected" if user in protected else "moved" if user in desired.users else "left"
            )
            op = replace(op, reason=reason)
        operations.append(op)
    return Plan(operations)


def _resource(known: Known, external_id: str) -> str:
    group = known.groups.get(external_id)
    return str(group.attributes.get(RESOURCE) or "") if group else ""


def resource_of(op: Operation, known: Known) -> str:
    """The endpoint an operation's object lives at: what it is sent as, or was."""
    resource = op.attributes.get(RESOURCE)
    if resource:
        return str(resource)
    seen = known.users.get(op.target) or known.groups.get(op.target)
    return str(seen.attributes.get(RESOURCE) or "") if seen else ""
