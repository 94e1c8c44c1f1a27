"""The safety rules on a plan (connector.planning.guard), table by table, with the clock given.

Each row is a case a broken rule would get wrong: a limit met exactly, one part of a limit
without the other, each kind of removal alone, a rollover window across New Year, its
inclusive ends, 29 February, and the Swedish calendar date at midnight UTC; a failed source
and what it holds, and a source that shrank below its share of the last good read.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connector.config import Limit, RolloverHoldConfig, SafetyConfig
from connector.planning.guard import (
    hold_for_failed_sources,
    hold_for_rollover,
    hold_for_thresholds,
    in_rollover_window,
    shrunken_sources,
)
from connector.planning.objects import Known, KnownGroup, KnownUser
from connector.planning.plan import Operation, Plan


def known(users: int, memberships: int = 0) -> Known:
    state = Known()
    for i in range(users):
        state.users[f"u{i}"] = KnownUser(f"u{i}", f"v{i}", "created", True, {})
    state.groups["g"] = KnownGroup("g", "vg", "created", {}, {f"m{i}" for i in range(memberships)})
    return state


def deactivations(count: int, reason: str = "left") -> list[Operation]:
    return [Operation("deactivate_user", f"u{i}", f"v{i}", reason=reason) for i in range(count)]  # type: ignore[arg-type]


def deletions(count: int) -> list[Operation]:
    return [Operation("delete_user", f"u{i}", f"v{i}", reason="expired") for i in range(count)]


def removals(count: int) -> list[Operation]:
    return [
        Operation(
            "remove_members", "g", members=tuple(f"m{i}" for i in range(count)), reason="left"
        )
    ]


SAFETY = SafetyConfig(
    max_deactivations=Limit(count=10, percent=5),
    max_deletions=Limit(count=10, percent=5),
    max_membership_removals=Limit(count=20, percent=5),
)


@pytest.mark.parametrize(
    ("name", "operations", "users", "memberships", "held"),
    [
        ("deactivations at the count", deactivations(10), 100, 0, False),
        ("deactivations one past both", deactivations(11), 100, 0, True),
        ("count past, percent not", deactivations(11), 1000, 0, False),  # 1.1%
        ("percent past, count not", deactivations(9), 20, 0, False),  # 45%
        ("percent exactly at the limit", deactivations(11), 220, 0, False),  # 5.0%
        ("deletions alone", deletions(11), 100, 0, True),
        ("deletions at the count", deletions(10), 100, 0, False),
        ("membership removals alone", removals(21), 100, 100, True),
        ("membership removals at the count", removals(20), 100, 100, False),
        ("membership removals, percent not", removals(21), 100, 1000, False),
        ("protected removals never count", deactivations(50, "protected"), 100, 0, False),
    ],
)
def test_thresholds(
    name: str, operations: list[Operation], users: int, memberships: int, held: bool
) -> None:
    plan = Plan([Operation("create_user", "new", attributes={"userName": "n"}), *operations])
    kept, holding = hold_for_thresholds(plan, SAFETY, known(users, memberships))
    assert (holding is not None) is held, name
    if held:
        assert holding is not None
        assert holding.plan.operations == operations
        assert [op.kind for op in kept.operations] == ["create_user"]  # creates still go
    else:
        assert kept == plan


def test_a_tripped_limit_holds_every_kind_of_deprovisioning_but_not_protected_removals() -> None:
    protected = Operation("delete_user", "p", "vp", reason="protected")
    plan = Plan([*deactivations(11), *removals(1), protected])
    kept, holding = hold_for_thresholds(plan, SAFETY, known(100, 100))
    assert holding is not None and "11 deactivations" in holding.reason
    assert kept.operations == [protected]
    assert len(holding.plan.operations) == 12


def test_an_unhealthy_source_holds_deprovisioning_but_never_a_protected_removal() -> None:
    protected = Operation("deactivate_user", "p", "vp", {"active": False}, reason="protected")
    update = Operation("update_user", "u1", "v1", {"displayName": "x"})
    kept, holding = hold_for_failed_sources(
        Plan([update, *deactivations(1), protected]), {"students": "failed (x)"}
    )
    assert kept.operations == [update, protected]
    assert holding is not None and holding.reason == "unhealthy source: students failed (x)"


def stockholm(text: str) -> datetime:
    """A moment given as Swedish local time (CET/CEST), as an aware UTC datetime."""
    from zoneinfo import ZoneInfo

    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo("Europe/Stockholm")).astimezone(UTC)


@pytest.mark.parametrize(
    ("start", "end", "when", "inside"),
    [
        ("06-10", "08-20", "2027-06-10T00:00", True),  # the first day counts
        ("06-10", "08-20", "2027-08-20T23:59", True),  # and the last
        ("06-10", "08-20", "2027-06-09T23:59", False),
        ("06-10", "08-20", "2027-08-21T00:00", False),
        ("12-20", "01-10", "2027-12-31T12:00", True),  # across New Year
        ("12-20", "01-10", "2028-01-01T00:00", True),
        ("12-20", "01-10", "2028-01-10T23:00", True),
        ("12-20", "01-10", "2028-01-11T00:00", False),
        ("12-20", "01-10", "2027-12-19T23:59", False),
        ("12-20", "01-10", "2027-07-01T12:00", False),
        ("02-20", "02-29", "2028-02-29T12:00", True),  # a leap year's 29 February
        ("02-20", "02-29", "2027-02-28T12:00", True),  # no 29th: the window ends on the 28th
        ("02-20", "02-29", "2027-03-01T00:00", False),
        ("02-29", "03-05", "2028-02-28T12:00", False),
        ("02-29", "03-05", "2028-02-29T00:00", True),
    ],
)
def test_rollover_window(start: str, end: str, when: str, inside: bool) -> None:
    window = RolloverHoldConfig(start=start, end=end)
    assert in_rollover_window(window, stockholm(when)) is inside


def test_the_window_is_read_on_the_swedish_calendar() -> None:
    window = RolloverHoldConfig(start="07-01", end="07-31")
    # 22:30 UTC on 30 June is already 1 July in Sweden (CEST, UTC+2)
    assert in_rollover_window(window, datetime(2027, 6, 30, 22, 30, tzinfo=UTC))
    assert not in_rollover_window(window, datetime(2027, 6, 30, 21, 30, tzinfo=UTC))


def test_the_window_holds_deactivations_and_deletions_of_leavers_only() -> None:
    window = RolloverHoldConfig(start="06-10", end="08-20")
    moved = Operation("remove_members", "g", members=("u1",), reason="moved")
    protected = Operation("delete_user", "p", "vp", reason="protected")
    expired = Operation("delete_user", "u3", "v3", reason="expired")
    plan = Plan([moved, *deactivations(2), expired, protected])
    kept, holding = hold_for_rollover(plan, window, stockholm("2027-07-01T12:00"))
    assert kept.operations == [moved, protected]
    assert holding is not None
    assert holding.plan.operations == [*deactivations(2), expired]
    outside, none = hold_for_rollover(plan, window, stockholm("2027-09-01T12:00"))
    assert none is None and outside == plan


def test_without_a_failed_source_nothing_is_held() -> None:
    plan = Plan(deactivations(3))
    assert hold_for_failed_sources(plan, {}) == (plan, None)


def test_a_failed_source_holds_every_kind_of_deprovisioning_and_names_each_source() -> None:
    create = Operation("create_user", "new", attributes={"userName": "n"})
    empty_group = Operation("delete_group", "g2", "vg2", reason="empty")
    taken_away = [*deactivations(1), *deletions(1), *removals(2), empty_group]

    kept, holding = hold_for_failed_sources(
        Plan([create, *taken_away]),
        {"students": "failed (x)", "staff": "returned 3 persons, 90 at the last good read"},
    )

    assert kept.operations == [create]
    assert holding is not None and holding.plan.operations == taken_away
    assert holding.reason == (
        "unhealthy source: students failed (x); staff returned 3 persons, 90 at the last good read"
    )


def test_a_failed_source_with_nothing_to_take_away_holds_nothing() -> None:
    plan = Plan([Operation("create_user", "new", attributes={"userName": "n"})])
    assert hold_for_failed_sources(plan, {"students": "failed (x)"}) == (plan, None)


@pytest.mark.parametrize(
    ("count", "previous", "unhealthy"),
    [
        (80, 100, False),  # exactly at the floor
        (79, 100, True),
        (0, 100, True),
        (5, None, False),  # no good read yet: nothing to compare with
        (0, 0, False),  # its last good read was empty
        (150, 100, False),
    ],
)
def test_a_source_below_its_share_of_the_last_good_read_is_unhealthy(
    count: int, previous: int | None, unhealthy: bool
) -> None:
    last_good = {"staff": 10} | ({} if previous is None else {"students": previous})
    found = shrunken_sources({"students": count, "staff": 10}, last_good, 80)
    assert ("students" in found) is unhealthy
    assert "staff" not in found


def test_an_unhealthy_source_says_how_far_it_shrank() -> None:
    assert shrunken_sources({"students": 40}, {"students": 100}, 80) == {
        "students": "returned 40 persons, 100 at the last good read (below 80%)"
    }


def test_without_a_window_nothing_waits_for_the_rollover() -> None:
    plan = Plan(deactivations(2))
    assert hold_for_rollover(plan, None, stockholm("2027-07-01T12:00")) == (plan, None)


def test_in_the_window_a_leavers_membership_removal_waits_with_their_deactivation() -> None:
    window = RolloverHoldConfig(start="06-10", end="08-20")
    left = Operation("remove_members", "g", members=("u0",), reason="left")
    plan = Plan([left, *deactivations(1)])

    kept, holding = hold_for_rollover(plan, window, stockholm("2027-08-20T12:00"))

    assert kept.operations == []
    assert holding is not None and holding.plan == plan
    assert holding.reason == "school-year rollover window 06-10 to 08-20"


# -- found by mutation testing (mutation/SURVIVORS.md) ---------------------------------------


@pytest.mark.parametrize(
    ("when", "inside"),
    [("2027-06-10T12:00", True), ("2027-06-09T12:00", False), ("2027-06-11T12:00", False)],
)
def test_a_one_day_window_is_that_day_only(when: str, inside: bool) -> None:
    window = RolloverHoldConfig(start="06-10", end="06-10")
    assert in_rollover_window(window, stockholm(when)) is inside


def test_a_window_across_new_year_starts_on_its_first_day() -> None:
    window = RolloverHoldConfig(start="12-20", end="01-10")
    assert in_rollover_window(window, stockholm("2027-12-20T00:00")) is True


def test_in_the_window_with_nothing_to_hold_nothing_is_held() -> None:
    window = RolloverHoldConfig(start="06-10", end="08-20")
    plan = Plan(deactivations(3, "protected"))
    assert hold_for_rollover(plan, window, stockholm("2027-07-01T12:00")) == (plan, None)


def test_with_one_user_known_the_percentage_is_of_one() -> None:
    # 1 of 1 is 100%: past a 60% limit (a floor of 2 would make it 50%).
    state = known(1, memberships=1)
    limit = Limit(count=0, percent=60)
    safety = SafetyConfig(max_deactivations=limit, max_membership_removals=limit)
    for operations in (deactivations(1), removals(1)):
        kept, held = hold_for_thresholds(Plan(operations), safety, state)
        assert held is not None and kept.operations == []
        assert "(more than 0, and 100.0% of 1 " in held.reason


def test_a_tripped_threshold_says_which_limits_and_by_how_much() -> None:
    state = known(100, memberships=100)
    for user in state.users.values():
        user.attributes["roles"] = [{"value": "admin", "type": "11111111"}]
    revoke = Operation(
        "revoke_values",
        "u1",
        "v1",
        {"roles": [{"value": "admin", "type": "11111111"}] * 21},
        reason="left",
    )
    plan = Plan([*deactivations(11), *deletions(12), *removals(21), revoke])
    safety = SafetyConfig(
        max_deactivations=Limit(count=10, percent=5),
        max_deletions=Limit(count=10, percent=5),
        max_membership_removals=Limit(count=20, percent=5),
        max_revocations=Limit(count=20, percent=5.5),
    )
    _, held = hold_for_thresholds(plan, safety, state)
    assert held is not None
    assert held.reason == (
        "threshold: "
        "11 deactivations (more than 10, and 11.0% of 100 users is more than 5%); "
        "12 deletions (more than 10, and 12.0% of 100 users is more than 5%); "
        "21 membership removals (more than 20, and 21.0% of 100 memberships is more than 5%); "
        "21 role/entitlement revocations "
        "(more than 20, and 21.0% of 100 granted values is more than 5.5%)"
    )


def test_a_source_just_below_its_share_is_unhealthy() -> None:
    assert set(shrunken_sources({"sis": 499}, {"sis": 1000}, 50)) == {"sis"}
    assert shrunken_sources({"sis": 500}, {"sis": 1000}, 50) == {}


def test_with_one_value_granted_the_percentage_is_of_one() -> None:
    state = known(1)
    state.users["u0"].attributes["roles"] = [{"value": "admin", "type": "11111111"}]
    revoke = Operation("revoke_values", "u0", "v0", {"roles": [{"value": "admin"}]}, reason="left")
    safety = SafetyConfig(max_revocations=Limit(count=0, percent=60))
    kept, held = hold_for_thresholds(Plan([revoke]), safety, state)
    assert held is not None and kept.operations == []
