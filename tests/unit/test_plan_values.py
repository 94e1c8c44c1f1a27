"""Unit tests for the values the connector owns value by value (roles, entitlements): the plan
grants and revokes only what it granted, revokes only when allowed, and a protected person's
values always go; the guard counts revocations as deprovisioning."""

from __future__ import annotations

from typing import Any

from connector.config import SafetyConfig
from connector.planning.guard import approval_keys, hold_for_thresholds
from connector.planning.objects import DesiredUser, Known, KnownUser
from connector.planning.plan import DEPROVISIONING, Operation, PlanRules, make_plan

A, B = "11111111", "22222222"
ADMIN_A = {"value": "admin", "display": "Ekeby skola", "type": A}
ADMIN_B = {"value": "admin", "display": "Björkängsskolan", "type": B}
BEGREPPA = {"value": "Begreppa", "display": "Begreppa"}


def attributes(ext: str, **values: Any) -> dict[str, Any]:
    return {"externalId": ext, "active": True, "userName": f"{ext}@skola.example.se", **values}


def desired(ext: str = "u1", **values: Any) -> dict[str, DesiredUser]:
    return {ext: DesiredUser(ext, attributes(ext, **values))}


def known(ext: str = "u1", *, origin: str = "created", **granted: Any) -> Known:
    return Known(users={ext: KnownUser(ext, f"v-{ext}", origin, True, attributes(ext, **granted))})


def ops(
    users: dict[str, DesiredUser],
    state: Known,
    protected: frozenset[str] = frozenset(),
    **rules: Any,
) -> list[Operation]:
    return make_plan(users, {}, state, protected=protected, rules=PlanRules(**rules)).operations


def test_a_new_value_is_granted_alone_and_no_update_is_planned() -> None:
    (op,) = ops(desired(roles=[ADMIN_A, ADMIN_B]), known(roles=[ADMIN_A]))
    assert (op.kind, op.vendor_id, op.attributes) == ("grant_values", "v-u1", {"roles": [ADMIN_B]})


def test_values_already_granted_plan_nothing_whatever_their_order() -> None:
    assert ops(desired(roles=[ADMIN_A, ADMIN_B]), known(roles=[ADMIN_B, ADMIN_A])) == []


def test_a_value_no_longer_wanted_stays_unless_revoking_is_on() -> None:
    users, state = desired(roles=[ADMIN_A]), known(roles=[ADMIN_A, ADMIN_B])
    assert ops(users, state) == []  # grant-only by default
    (op,) = ops(users, state, revoke_values=True)
    assert (op.kind, op.attributes, op.reason) == ("revoke_values", {"roles": [ADMIN_B]}, "")
    assert op.kind in DEPROVISIONING


def test_only_granted_values_are_ever_revoked() -> None:
    """The known state holds only what the connector granted: a value the vendor holds by hand
    is in neither desired nor known, so no plan can name it."""
    (op,) = ops(desired(), known(roles=[ADMIN_A], entitlements=[BEGREPPA]), revoke_values=True)
    assert op.attributes == {"roles": [ADMIN_A], "entitlements": [BEGREPPA]}


def test_a_create_carries_the_values() -> None:
    (op,) = ops(desired(roles=[ADMIN_A]), Known())
    assert op.kind == "create_user"
    assert op.attributes["roles"] == [ADMIN_A]


def test_a_protected_person_with_a_kept_account_loses_the_values_first() -> None:
    state = known(roles=[ADMIN_A], origin="linked")
    plan = ops({}, state, frozenset({"u1"}), protected_policy="deactivate")
    assert [(op.kind, op.reason) for op in plan] == [
        ("revoke_values", "protected"),
        ("deactivate_user", "protected"),
    ]
    assert plan[0].attributes == {"roles": [ADMIN_A]}


def test_a_deleted_protected_account_needs_no_revoke() -> None:
    plan = ops({}, known(roles=[ADMIN_A]), frozenset({"u1"}))
    assert [op.kind for op in plan] == ["delete_user"]


def test_a_leaver_keeps_the_values_on_the_deactivated_account() -> None:
    plan = ops({}, known(roles=[ADMIN_A]), revoke_values=True)
    assert [op.kind for op in plan] == ["deactivate_user"]


def test_revocations_beyond_the_threshold_are_held_and_approvable() -> None:
    granted = {
        f"u{i}": KnownUser(f"u{i}", f"v{i}", "created", True, attributes(f"u{i}", roles=[ADMIN_A]))
        for i in range(10)
    }
    users = {ext: DesiredUser(ext, attributes(ext)) for ext in granted}
    plan = make_plan(users, {}, Known(users=granted), rules=PlanRules(revoke_values=True))
    assert len(plan.of_kind("revoke_values")) == 10
    safety = SafetyConfig.model_validate({"max_revocations": {"count": 5, "percent": 5}})
    kept, held = hold_for_thresholds(plan, safety, Known(users=granted))
    assert held is not None and "10 role/entitlement revocations" in held.reason
    assert not kept.of_kind("revoke_values")
    assert "revoke_values:u3" in approval_keys(held.plan)
    relaxed = SafetyConfig.model_validate({"max_revocations": {"count": 10, "percent": 5}})
    assert hold_for_thresholds(plan, relaxed, Known(users=granted))[1] is None


# -- found by mutation testing (mutation/SURVIVORS.md) ---------------------------------------


def test_grants_and_revocations_name_the_user_and_the_vendor_account() -> None:
    users, state = desired(roles=[ADMIN_B]), known(roles=[ADMIN_A])
    assert ops(users, state, revoke_values=True) == [
        Operation("grant_values", "u1", "v-u1", {"roles": [ADMIN_B]}),
        Operation("revoke_values", "u1", "v-u1", {"roles": [ADMIN_A]}),
    ]
    kept = known(roles=[ADMIN_A], origin="linked")
    assert ops({}, kept, frozenset({"u1"}), protected_policy="deactivate")[0] == Operation(
        "revoke_values", "u1", "v-u1", {"roles": [ADMIN_A]}, reason="protected"
    )


def test_a_user_with_roles_and_entitlements_is_granted_value_by_value() -> None:
    users = desired(roles=[ADMIN_A, ADMIN_B], entitlements=[BEGREPPA])
    state = known(roles=[ADMIN_A], entitlements=[BEGREPPA])
    assert ops(users, state) == [Operation("grant_values", "u1", "v-u1", {"roles": [ADMIN_B]})]
