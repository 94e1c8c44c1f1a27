"""Unit tests for connector.planning.plan: the pure planner from desired objects and known state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.planning.objects import DesiredGroup, DesiredUser, Known, KnownGroup, KnownUser
from connector.planning.plan import (
    DEPROVISIONING,
    ORDER,
    Operation,
    Plan,
    PlanRules,
    changed_attributes,
    make_plan,
)
from connector.planning.rekey import Rekey

SCHOOL_A = "11111111"
SCHOOL_B = "22222222"


def desired_user(ext: str, **extra: Any) -> DesiredUser:
    attributes: dict[str, Any] = {
        "externalId": ext,
        "active": True,
        "userName": f"{ext}@skola.example.se",
        "name.givenName": "Anna",
        "name.familyName": "Ek",
    }
    attributes.update(extra)
    return DesiredUser(external_id=ext, attributes=attributes)


def desired_group(code: str, members: set[str] | None = None, name: str = "") -> DesiredGroup:
    return DesiredGroup(
        external_id=code,
        attributes={"externalId": code, "displayName": name or f"Skola {code}"},
        members=set(members or ()),
    )


def known_user(
    user: DesiredUser,
    *,
    active: bool = True,
    origin: str = "created",
    deactivated_at: datetime | None = None,
) -> KnownUser:
    attributes = dict(user.attributes)
    if not active:
        attributes["active"] = False
    return KnownUser(
        user.external_id, f"v-{user.external_id}", origin, active, attributes, deactivated_at
    )


def known_group(group: DesiredGroup, members: set[str] | None = None) -> KnownGroup:
    recorded = set(group.members if members is None else members)
    return KnownGroup(
        group.external_id, f"g-{group.external_id}", "created", dict(group.attributes), recorded
    )


def known_from(users: dict[str, DesiredUser], groups: dict[str, DesiredGroup]) -> Known:
    return Known(
        users={ext: known_user(u) for ext, u in users.items()},
        groups={ext: known_group(g) for ext, g in groups.items()},
    )


def kinds(plan: Plan) -> list[str]:
    return [op.kind for op in plan.operations]


def assert_in_order(plan: Plan) -> None:
    positions = [ORDER.index(op.kind) for op in plan.operations]
    assert positions == sorted(positions), kinds(plan)


# -- creating from nothing ---------------------------------------------------------------------


def test_empty_known_creates_groups_then_users_then_members() -> None:
    users = {"u1": desired_user("u1"), "u2": desired_user("u2")}
    groups = {
        SCHOOL_A: desired_group(SCHOOL_A, {"u1", "u2"}),
        SCHOOL_B: desired_group(SCHOOL_B, {"u2"}),
    }
    plan = make_plan(users, groups, Known())
    assert kinds(plan) == [
        "create_group",
        "create_group",
        "create_user",
        "create_user",
        "add_members",
        "add_members",
    ]
    assert {op.target for op in plan.of_kind("create_group")} == {SCHOOL_A, SCHOOL_B}
    assert plan.of_kind("create_user")[0].attributes == users["u1"].attributes
    members = {op.target: set(op.members) for op in plan.of_kind("add_members")}
    assert members == {SCHOOL_A: {"u1", "u2"}, SCHOOL_B: {"u2"}}


def test_operations_follow_plan_order_for_every_kind() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    admin_a = {"value": "admin", "display": "A", "type": SCHOOL_A}
    stay = desired_user("stay", roles=[admin_a])  # a role value to grant
    changed = desired_user("changed", **{"name.familyName": "Ny"})
    leaver = desired_user("leaver")
    expired = desired_user("expired")
    new = desired_user("new")
    moved = desired_user("moved", userName="moving@skola.example.se")
    users = {"stay": stay, "changed": changed, "new": new, "moved": moved}
    groups = {
        SCHOOL_A: desired_group(SCHOOL_A, {"stay", "changed", "new"}, name="Nytt namn"),
        SCHOOL_B: desired_group(SCHOOL_B, {"new"}),
    }
    known = Known(
        users={
            "stay": known_user(desired_user("stay")),
            "changed": known_user(desired_user("changed", roles=[admin_a])),  # one to revoke
            "leaver": known_user(leaver),
            "expired": known_user(expired, active=False, deactivated_at=now - timedelta(days=200)),
            "moving": known_user(desired_user("moving", userName="moving@skola.example.se")),
        },
        groups={
            SCHOOL_A: known_group(desired_group(SCHOOL_A), {"stay", "changed", "leaver"}),
            "33333333": known_group(desired_group("33333333"), set()),
        },
    )
    rules = PlanRules(now=now, delete_empty_groups=True, revoke_values=True)
    rekeys = {"moved": Rekey("moving", "moved", "userName")}
    plan = make_plan(users, groups, known, rules=rules, rekeys=rekeys)
    assert_in_order(plan)
    assert set(kinds(plan)) == set(ORDER)


# -- nothing to do, and updates ----------------------------------------------------------------


def test_identical_known_state_gives_empty_plan() -> None:
    users = {"u1": desired_user("u1"), "u2": desired_user("u2")}
    groups = {SCHOOL_A: desired_group(SCHOOL_A, {"u1", "u2"})}
    plan = make_plan(users, groups, known_from(users, groups))
    assert plan.operations == []
    assert not plan


def test_changed_family_name_gives_one_update_with_only_that_path() -> None:
    users = {"u1": desired_user("u1")}
    groups = {SCHOOL_A: desired_group(SCHOOL_A, {"u1"})}
    known = known_from(users, groups)
    users = {"u1": desired_user("u1", **{"name.familyName": "Öberg"})}
    plan = make_plan(users, groups, known)
    assert plan.operations == [
        Operation("update_user", "u1", "v-u1", attributes={"name.familyName": "Öberg"})
    ]


def test_attribute_no_longer_desired_is_removed_with_none() -> None:
    before = {"u1": desired_user("u1", title="Mentor")}
    groups = {SCHOOL_A: desired_group(SCHOOL_A, {"u1"})}
    known = known_from(before, groups)
    plan = make_plan({"u1": desired_user("u1")}, groups, known)
    assert plan.operations == [Operation("update_user", "u1", "v-u1", attributes={"title": None})]


def test_changed_group_name_gives_update_group() -> None:
    users = {"u1": desired_user("u1")}
    groups = {SCHOOL_A: desired_group(SCHOOL_A, {"u1"}, name="Gamla skolan")}
    known = known_from(users, groups)
    groups = {SCHOOL_A: desired_group(SCHOOL_A, {"u1"}, name="Nya skolan")}
    plan = make_plan(users, groups, known)
    assert plan.operations == [
        Operation(
            "update_group", SCHOOL_A, f"g-{SCHOOL_A}", attributes={"displayName": "Nya skolan"}
        )
    ]


# -- leavers and returners ---------------------------------------------------------------------


def test_known_active_user_not_desired_is_deactivated_and_removed_from_group() -> None:
    stay, leaver = desired_user("stay"), desired_user("leaver")
    groups = {SCHOOL_A: desired_group(SCHOOL_A, {"stay"})}
    known = Known(
        users={"stay": known_user(stay), "leaver": known_user(leaver)},
        groups={SCHOOL_A: known_group(groups[SCHOOL_A], {"stay", "leaver"})},
    )
    plan = make_plan({"stay": stay}, groups, known)
    assert kinds(plan) == ["remove_members", "deactivate_user"]
    remove, deactivate = plan.operations
    assert (remove.target, remove.members, remove.reason) == (SCHOOL_A, ("leaver",), "left")
    assert deactivate.target == "leaver"
    assert deactivate.vendor_id == "v-leaver"
    assert deactivate.attributes == {"active": False}
    assert deactivate.reason == "left"


def test_known_inactive_user_not_desired_gives_nothing() -> None:
    gone = desired_user("gone")
    known = Known(users={"gone": known_user(gone, active=False)})
    assert make_plan({}, {}, known).operations == []


def test_inactive_user_within_grace_period_is_not_deleted() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    gone = desired_user("gone")
    known = Known(
        users={"gone": known_user(gone, active=False, deactivated_at=now - timedelta(days=10))}
    )
    plan = make_plan({}, {}, known, rules=PlanRules(now=now))
    assert plan.operations == []


def test_inactive_created_user_past_grace_period_is_deleted() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    gone = desired_user("gone")
    known = Known(
        users={"gone": known_user(gone, active=False, deactivated_at=now - timedelta(days=90))}
    )
    plan = make_plan({}, {}, known, rules=PlanRules(now=now))
    assert plan.operations == [Operation("delete_user", "gone", "v-gone", reason="expired")]


def test_inactive_linked_user_is_never_deleted() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    gone = desired_user("gone")
    known = Known(
        users={
            "gone": known_user(
                gone, active=False, origin="linked", deactivated_at=now - timedelta(days=900)
            )
        }
    )
    assert make_plan({}, {}, known, rules=PlanRules(now=now)).operations == []


def test_known_inactive_user_desired_again_is_reactivated() -> None:
    user = desired_user("u1")
    groups = {SCHOOL_A: desired_group(SCHOOL_A, {"u1"})}
    known = Known(
        users={"u1": known_user(user, active=False)},
        groups={SCHOOL_A: known_group(groups[SCHOOL_A], set())},
    )
    plan = make_plan({"u1": user}, groups, known)
    assert plan.of_kind("update_user") == [
        Operation("update_user", "u1", "v-u1", attributes={"active": True})
    ]
    assert [op.members for op in plan.of_kind("add_members")] == [("u1",)]


# -- memberships -------------------------------------------------------------------------------


def test_250_new_members_are_added_in_chunks_of_100() -> None:
    members = {f"u{i:03d}" for i in range(250)}
    users = {ext: desired_user(ext) for ext in members}
    groups = {SCHOOL_A: desired_group(SCHOOL_A, members)}
    known = Known(
        users={ext: known_user(u) for ext, u in users.items()},
        groups={SCHOOL_A: known_group(groups[SCHOOL_A], set())},
    )
    plan = make_plan(users, groups, known, member_chunk_size=100)
    adds = plan.of_kind("add_members")
    assert [len(op.members) for op in adds] == [100, 100, 50]
    added = [m for op in adds for m in op.members]
    assert len(added) == len(set(added)) == 250
    assert set(added) == members
    assert kinds(plan) == ["add_members"] * 3


def test_no_operation_replaces_a_member_list() -> None:
    members = {f"u{i:03d}" for i in range(250)}
    users = {ext: desired_user(ext) for ext in members}
    plan = make_plan(
        users, {SCHOOL_A: desired_group(SCHOOL_A, members)}, Known(), member_chunk_size=100
    )
    assert {op.kind for op in plan.operations} <= {"create_group", "create_user", "add_members"}
    for op in plan.operations:
        assert "replace" not in op.kind
        assert "members" not in op.attributes
        if op.kind != "add_members":
            assert op.members == ()


def test_chunk_size_comes_from_rules_when_not_given() -> None:
    members = {f"u{i}" for i in range(5)}
    users = {ext: desired_user(ext) for ext in members}
    plan = make_plan(
        users,
        {SCHOOL_A: desired_group(SCHOOL_A, members)},
        Known(),
        rules=PlanRules(member_chunk_size=2),
    )
    assert [len(op.members) for op in plan.of_kind("add_members")] == [2, 2, 1]


def test_person_moving_school_is_added_before_removed() -> None:
    user = desired_user("u1")
    groups = {SCHOOL_A: desired_group(SCHOOL_A), SCHOOL_B: desired_group(SCHOOL_B, {"u1"})}
    known = Known(
        users={"u1": known_user(user)},
        groups={
            SCHOOL_A: known_group(groups[SCHOOL_A], {"u1"}),
            SCHOOL_B: known_group(groups[SCHOOL_B], set()),
        },
    )
    plan = make_plan({"u1": user}, groups, known)
    assert [(op.kind, op.target, op.members, op.reason) for op in plan.operations] == [
        ("add_members", SCHOOL_B, ("u1",), ""),
        ("remove_members", SCHOOL_A, ("u1",), "moved"),
    ]


def test_known_group_no_longer_desired_is_emptied_not_deleted() -> None:
    users = {"u1": desired_user("u1"), "u2": desired_user("u2")}
    old = desired_group(SCHOOL_A)
    known = Known(
        users={ext: known_user(u) for ext, u in users.items()},
        groups={SCHOOL_A: known_group(old, {"u1", "u2"})},
    )
    groups = {SCHOOL_B: desired_group(SCHOOL_B, {"u1", "u2"})}
    known.groups[SCHOOL_B] = known_group(groups[SCHOOL_B])
    plan = make_plan(users, groups, known)
    removes = plan.of_kind("remove_members")
    assert [(op.target, set(op.members)) for op in removes] == [(SCHOOL_A, {"u1", "u2"})]
    assert plan.of_kind("delete_group") == []
    assert kinds(plan) == ["remove_members"]


def test_empty_created_group_is_deleted_when_configured() -> None:
    known = Known(groups={SCHOOL_A: known_group(desired_group(SCHOOL_A), set())})
    plan = make_plan({}, {}, known, rules=PlanRules(delete_empty_groups=True))
    assert plan.operations == [Operation("delete_group", SCHOOL_A, f"g-{SCHOOL_A}", reason="empty")]


# -- protected people --------------------------------------------------------------------------


def test_protected_created_user_is_deleted_and_removed_from_groups() -> None:
    user = desired_user("p1")
    known = Known(
        users={"p1": known_user(user)},
        groups={SCHOOL_A: known_group(desired_group(SCHOOL_A), {"p1"})},
    )
    plan = make_plan({}, {SCHOOL_A: desired_group(SCHOOL_A)}, known, protected=frozenset({"p1"}))
    assert [(op.kind, op.reason) for op in plan.operations] == [
        ("remove_members", "protected"),
        ("delete_user", "protected"),
    ]


def test_protected_user_with_deactivate_policy_is_deactivated() -> None:
    user = desired_user("p1")
    known = Known(users={"p1": known_user(user)})
    plan = make_plan(
        {},
        {},
        known,
        protected=frozenset({"p1"}),
        rules=PlanRules(protected_policy="deactivate"),
    )
    assert plan.operations == [
        Operation("deactivate_user", "p1", "v-p1", attributes={"active": False}, reason="protected")
    ]


def test_kept_user_is_left_alone() -> None:
    user = desired_user("k1")
    known = Known(
        users={"k1": known_user(user)},
        groups={SCHOOL_A: known_group(desired_group(SCHOOL_A), {"k1"})},
    )
    plan = make_plan({}, {SCHOOL_A: desired_group(SCHOOL_A)}, known, keep=frozenset({"k1"}))
    assert plan.operations == []


def test_protected_overrides_keep_for_memberships_too() -> None:
    user = desired_user("p1")
    known = Known(
        users={"p1": known_user(user, origin="linked")},
        groups={SCHOOL_A: known_group(desired_group(SCHOOL_A), {"p1"})},
    )
    plan = make_plan(
        {},
        {SCHOOL_A: desired_group(SCHOOL_A)},
        known,
        protected=frozenset({"p1"}),
        keep=frozenset({"p1"}),
    )
    assert [op.kind for op in plan.of_kind("deactivate_user")] == ["deactivate_user"]
    assert [(op.target, op.members) for op in plan.of_kind("remove_members")] == [
        (SCHOOL_A, ("p1",))
    ]


# -- Plan helpers ------------------------------------------------------------------------------


def test_without_deprovisioning_drops_only_removals_and_deactivations() -> None:
    stay, leaver, new = desired_user("stay"), desired_user("leaver"), desired_user("new")
    users = {"stay": stay, "new": new}
    groups = {SCHOOL_A: desired_group(SCHOOL_A, {"stay", "new"})}
    known = Known(
        users={"stay": known_user(desired_user("stay", title="x")), "leaver": known_user(leaver)},
        groups={SCHOOL_A: known_group(groups[SCHOOL_A], {"stay", "leaver"})},
    )
    plan = make_plan(users, groups, known)
    assert set(kinds(plan)) == {
        "create_user",
        "update_user",
        "add_members",
        "remove_members",
        "deactivate_user",
    }
    kept = plan.without_deprovisioning()
    assert kinds(kept) == ["create_user", "update_user", "add_members"]
    assert [op for op in plan.operations if op.kind not in DEPROVISIONING] == kept.operations
    assert len(plan.operations) == 5  # the original plan is not changed


def test_without_deprovisioning_keeps_protected_removals() -> None:
    known = Known(users={"p1": known_user(desired_user("p1"))})
    plan = make_plan({}, {}, known, protected=frozenset({"p1"}))
    assert kinds(plan.without_deprovisioning()) == ["delete_user"]


def test_counts_counts_members_not_operations() -> None:
    members = {f"u{i}" for i in range(3)}
    plan = make_plan(
        {ext: desired_user(ext) for ext in members},
        {SCHOOL_A: desired_group(SCHOOL_A, members)},
        Known(),
        member_chunk_size=2,
    )
    counts = plan.counts()
    assert counts["add_members"] == 3
    assert counts["create_user"] == 3
    assert counts["create_group"] == 1
    assert counts["delete_user"] == 0


@pytest.mark.parametrize(
    ("desired", "applied", "expected"),
    [
        ({"a": 1}, {"a": 1}, {}),
        ({"a": 2}, {"a": 1}, {"a": 2}),
        ({"a": 1, "b": "x"}, {"a": 1}, {"b": "x"}),
        ({"a": 1}, {"a": 1, "b": "x"}, {"b": None}),
        ({"a": 1}, {"a": 1, "b": None}, {}),
        ({}, {}, {}),
        ({"emails": [{"value": "a@b.se"}]}, {"emails": [{"value": "a@b.se"}]}, {}),
    ],
)
def test_changed_attributes(
    desired: dict[str, Any], applied: dict[str, Any], expected: dict[str, Any]
) -> None:
    assert changed_attributes(desired, applied) == expected


def test_a_user_scrubbed_for_protected_identity_stays_protected_when_the_source_is_silent() -> None:
    # An incremental source mentions a protected person once; a removal held back (or failed)
    # must still be a protected person's removal in the cycles after, not a leaver's.
    scrubbed = KnownUser("p1", "v-p1", "created", True, {"active": True})
    known = Known(users={"p1": scrubbed})
    plan = make_plan({}, {}, known)
    assert [(op.kind, op.target, op.reason) for op in plan.operations] == [
        ("delete_user", "p1", "protected")
    ]
    assert make_plan({}, {}, known, keep=frozenset({"p1"})).operations[0].reason == "protected"


# -- found by mutation testing (mutation/SURVIVORS.md) ---------------------------------------


def test_an_inactive_user_without_a_deactivation_time_is_never_deleted() -> None:
    # The grace period cannot be counted from an unknown start: the account stays.
    now = datetime(2026, 3, 1, tzinfo=UTC)
    known = Known(users={"gone": known_user(desired_user("gone"), active=False)})
    assert make_plan({}, {}, known, rules=PlanRules(now=now)).operations == []


def test_an_operation_survives_a_round_trip_through_its_dict() -> None:
    ops = [
        Operation("remove_members", "g1", members=("u1", "u2"), reason="protected"),
        Operation("update_user", "u1", "v1", {"displayName": "Åsa", "title": None}),
        Operation("deactivate_user", "u2", "v2", {"active": False}, reason="left"),
    ]
    assert [op.as_dict() for op in ops] == [
        {"op": "remove_members", "target": "g1", "reason": "protected", "members": ["u1", "u2"]},
        {"op": "update_user", "target": "u1", "vendor_id": "v1", "attributes": ops[1].attributes},
        {
            "op": "deactivate_user",
            "target": "u2",
            "reason": "left",
            "vendor_id": "v2",
            "attributes": {"active": False},
        },
    ]
    assert [Operation.from_dict(op.as_dict()) for op in ops] == ops
    assert Operation.from_dict({"op": "create_group", "target": "g2"}) == Operation(
        "create_group", "g2"
    )
