"""The holds for newly protected persons and for mass updates (connector.planning.guard)."""

from __future__ import annotations

from dataclasses import replace

from connector.config import Limit
from connector.planning.guard import (
    approval_keys,
    hold_for_newly_protected,
    hold_for_updates,
    split_approved,
)
from connector.planning.objects import Known, KnownGroup, KnownUser
from connector.planning.plan import Operation, Plan

LIMIT = Limit(count=10, percent=2)


def known(users: int) -> Known:
    state = Known()
    for i in range(users):
        state.users[f"u{i}"] = KnownUser(f"u{i}", f"v{i}", "created", True, {"userName": f"n{i}"})
    state.groups["g"] = KnownGroup("g", "vg", "created", {}, {f"u{i}" for i in range(users)})
    return state


def protected_removals(count: int) -> list[Operation]:
    ops = [Operation("delete_user", f"u{i}", f"v{i}", reason="protected") for i in range(count)]
    members = tuple(f"u{i}" for i in range(count))
    return [Operation("remove_members", "g", members=members, reason="protected"), *ops]


def test_below_the_count_a_newly_protected_person_goes_at_once() -> None:
    plan = Plan(protected_removals(10))
    kept, held = hold_for_newly_protected(plan, LIMIT, known(100))
    assert held is None and kept == plan


def test_below_the_percentage_newly_protected_persons_go_at_once() -> None:
    plan = Plan(protected_removals(11))
    kept, held = hold_for_newly_protected(plan, LIMIT, known(1000))  # 1.1%
    assert held is None and kept == plan


def test_past_both_limits_everything_about_them_is_held() -> None:
    other = Operation("update_user", "u50", "v50", {"displayName": "x"})
    empty_group = Operation("delete_group", "g", "vg", reason="empty")
    plan = Plan([other, *protected_removals(11), empty_group])
    kept, held = hold_for_newly_protected(plan, LIMIT, known(100))
    assert kept.operations == [other]
    assert held is not None and "11 newly protected persons" in held.reason
    assert held.plan.counts()["delete_user"] == 11
    assert held.plan.counts()["delete_group"] == 1


def test_updates_past_both_limits_are_held_and_an_approval_releases_them() -> None:
    updates = [Operation("update_user", f"u{i}", f"v{i}", {"displayName": "x"}) for i in range(6)]
    create = Operation("create_user", "new", attributes={"userName": "new"})
    plan = Plan([create, *updates])
    kept, held = hold_for_updates(plan, Limit(count=5, percent=10), known(20))
    assert kept.operations == [create]
    assert held is not None and held.reason.startswith("threshold: 6 updates")

    released, rest = split_approved(plan, approval_keys(held.plan))
    assert released.operations == updates and rest.operations == [create]


def test_updates_at_the_count_are_not_held() -> None:
    updates = [Operation("update_user", f"u{i}", f"v{i}", {"displayName": "x"}) for i in range(5)]
    assert hold_for_updates(Plan(updates), Limit(count=5, percent=0), known(5))[1] is None


def test_a_held_update_is_kept_without_its_values() -> None:
    op = Operation("update_user", "u1", "v1", {"displayName": "Åsa Öberg", "title": None})
    kept = op.as_dict(values=False)
    assert kept == {
        "op": "update_user",
        "target": "u1",
        "vendor_id": "v1",
        "paths": ["displayName", "title"],
    }
    back = Operation.from_dict(kept)
    assert (back.kind, back.target, sorted(back.attributes)) == (
        "update_user",
        "u1",
        ["displayName", "title"],
    )


def test_membership_removals_alone_count_as_newly_protected_persons() -> None:
    members = tuple(f"u{i}" for i in range(11))
    plan = Plan([Operation("remove_members", "g", members=members, reason="protected")])
    kept, held = hold_for_newly_protected(plan, LIMIT, known(100))
    assert kept.operations == []
    assert held is not None and held.plan == plan


def test_leavers_are_not_counted_as_newly_protected() -> None:
    leavers = [
        Operation("deactivate_user", f"u{i}", f"v{i}", {"active": False}, reason="left")
        for i in range(50)
    ]
    plan = Plan(leavers)
    assert hold_for_newly_protected(plan, LIMIT, known(100)) == (plan, None)


def test_updates_past_the_count_but_below_the_percentage_go() -> None:
    updates = [Operation("update_user", f"u{i}", f"v{i}", {"displayName": "x"}) for i in range(6)]
    plan = Plan(updates)
    assert hold_for_updates(plan, Limit(count=5, percent=10), known(100)) == (plan, None)


def test_group_updates_count_and_groups_are_part_of_the_base() -> None:
    state = known(20)
    for i in range(9):  # 20 users and 10 groups
        state.groups[f"g{i}"] = KnownGroup(f"g{i}", f"vg{i}", "created", {}, set())
    users = [Operation("update_user", f"u{i}", f"v{i}", {"displayName": "x"}) for i in range(3)]
    groups = [Operation("update_group", f"g{i}", f"vg{i}", {"displayName": "y"}) for i in range(3)]

    # 6 updates are 20% of 30 users and groups: over 15%, under 25% (but 30% of the users)
    held_at_15 = hold_for_updates(Plan(users + groups), Limit(count=5, percent=15), state)[1]
    held_at_25 = hold_for_updates(Plan(users + groups), Limit(count=5, percent=25), state)[1]

    assert held_at_15 is not None and held_at_15.plan.operations == users + groups
    assert held_at_25 is None


def test_approval_keys_name_each_step_a_rule_can_hold_and_nothing_else() -> None:
    create = Operation("create_user", "new", attributes={"userName": "new"})
    deactivate = Operation("deactivate_user", "u1", "v1", {"active": False}, reason="left")
    removal = Operation("remove_members", "g", members=("u1", "u2"), reason="left")
    empty = Operation("delete_group", "g2", "vg2", reason="empty")
    plan = Plan([create, deactivate, removal, empty])

    keys = approval_keys(plan)

    assert keys == {
        "deactivate_user:u1",
        "remove_members:g:u1",
        "remove_members:g:u2",
        "delete_group:g2",
    }
    released, rest = split_approved(plan, keys | {"create_user:new"})
    assert released.operations == [deactivate, removal, empty]
    assert rest.operations == [create]  # a create is never held, so never released


def test_an_approval_releases_only_the_approved_members_of_a_removal() -> None:
    removal = Operation("remove_members", "g", members=("u1", "u2", "u3"), reason="left")

    released, rest = split_approved(Plan([removal]), frozenset({"remove_members:g:u2"}))

    assert released.operations == [replace(removal, members=("u2",))]
    assert rest.operations == [replace(removal, members=("u1", "u3"))]


# -- found by mutation testing (mutation/SURVIVORS.md) ---------------------------------------


def test_protected_deactivations_and_deletions_count_without_memberships() -> None:
    # Persons in no group: only their own deactivation or deletion shows them.
    deletes = [Operation("delete_user", f"u{i}", f"v{i}", reason="protected") for i in range(6)]
    deactivates = [
        Operation("deactivate_user", f"u{i}", f"v{i}", {"active": False}, reason="protected")
        for i in range(6, 12)
    ]
    plan = Plan([*deletes, *deactivates])
    kept, held = hold_for_newly_protected(plan, LIMIT, known(100))
    assert kept.operations == []
    assert held is not None and held.plan == plan
    assert held.reason == (
        "12 newly protected persons (more than 10, and 12.0% of 100 users is more than 2%): "
        "has the export's protected-identity marking changed? Nothing is sent about them "
        "until approved"
    )


def test_leavers_removals_and_deactivations_do_not_make_protected_persons_suspect() -> None:
    leavers = tuple(f"u{i}" for i in range(20, 40))
    protected = Operation("delete_user", "u1", "v1", reason="protected")
    plan = Plan(
        [
            Operation("remove_members", "g", members=leavers, reason="left"),
            protected,
            *(
                Operation("deactivate_user", ext, "v", {"active": False}, reason="left")
                for ext in leavers
            ),
            Operation("delete_group", "g", "vg", reason="empty"),
        ]
    )
    assert hold_for_newly_protected(plan, LIMIT, known(100)) == (plan, None)


def test_updates_held_say_how_many_and_of_what() -> None:
    updates = [Operation("update_user", f"u{i}", f"v{i}", {"displayName": "x"}) for i in range(6)]
    _, held = hold_for_updates(Plan(updates), Limit(count=5, percent=10), known(20))
    assert held is not None
    assert held.reason == (
        "threshold: 6 updates (more than 5, and 28.6% of 21 users and groups is more than 10%): "
        "a changed mapping or source? `connector approve` shows what would change"
    )


def test_one_update_of_one_known_object_is_all_of_them() -> None:
    # 1 of 1 is 100%, past a 60% limit: the percentage is of one, not of a floor of two.
    state = Known(users={"u0": KnownUser("u0", "v0", "created", True, {})})
    plan = Plan([Operation("update_user", "u0", "v0", {"displayName": "x"})])
    kept, held = hold_for_updates(plan, Limit(count=0, percent=60), state)
    assert kept.operations == [] and held is not None
