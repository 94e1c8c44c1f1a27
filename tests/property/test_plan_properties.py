"""Property tests for connector.plan.make_plan over random desired and known states.

`apply_plan` below is a small simulator of what apply records in the state file for each
operation that succeeds (see Applier._record): it is the oracle for "where does the plan
lead". It also checks what apply needs of the plan's order: a group exists before members go
into it, a user exists before being added, an update names the vendor id it was known by.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from connector.planning.objects import DesiredGroup, DesiredUser, Known, KnownGroup, KnownUser
from connector.planning.plan import ORDER, Operation, Plan, PlanRules, make_plan

# What apply records for a person who became protected and was only deactivated.
SCRUBBED_RECORD: dict[str, Any] = {"active": False}
DEACTIVATED_AT = datetime(2026, 1, 15, tzinfo=UTC)


def without_none(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}


def apply_plan(known: Known, plan: Plan) -> Known:
    """The known state after every operation of the plan succeeded, as apply records it."""
    state = copy.deepcopy(known)
    users, groups = state.users, state.groups
    for op in plan.operations:
        target = op.target
        if op.kind == "create_user":
            assert target not in users, op
            assert op.vendor_id is None
            attributes = dict(op.attributes)
            users[target] = KnownUser(
                external_id=target,
                vendor_id=f"v-{target}",
                origin="created",
                active=bool(attributes.get("active", True)),
                attributes=attributes,
            )
        elif op.kind in ("update_user", "deactivate_user"):
            user = users[target]
            assert op.vendor_id == user.vendor_id, op
            if op.kind == "deactivate_user":
                assert op.attributes == {"active": False}, op
                if op.reason == "protected":
                    attributes = dict(SCRUBBED_RECORD)
                else:
                    attributes = {**user.attributes, "active": False}
            else:
                attributes = without_none({**user.attributes, **op.attributes})
            active = bool(attributes.get("active", True))
            deactivated_at = None if active else (user.deactivated_at or DEACTIVATED_AT)
            users[target] = replace(
                user, active=active, attributes=attributes, deactivated_at=deactivated_at
            )
        elif op.kind == "delete_user":
            assert op.vendor_id == users[target].vendor_id, op
            del users[target]
            for group in groups.values():  # forget_user drops the user's memberships
                group.members.discard(target)
        elif op.kind == "create_group":
            assert target not in groups, op
            assert op.vendor_id is None
            groups[target] = KnownGroup(
                external_id=target,
                vendor_id=f"g-{target}",
                origin="created",
                attributes=dict(op.attributes),
            )
        elif op.kind == "update_group":
            group = groups[target]
            assert op.vendor_id == group.vendor_id, op
            group.attributes = without_none({**group.attributes, **op.attributes})
        elif op.kind == "add_members":
            # apply needs the group's and each user's vendor id by now.
            assert target in groups, op
            missing = [m for m in op.members if m not in users]
            assert not missing, (op, missing)
            groups[target].members |= set(op.members)
        elif op.kind == "remove_members":
            assert target in groups, op
            groups[target].members -= set(op.members)
        elif op.kind == "delete_group":
            assert op.vendor_id == groups[target].vendor_id, op
            del groups[target]
        else:  # pragma: no cover
            raise AssertionError(f"unknown operation {op.kind}")
    return state


# -- strategies --------------------------------------------------------------------------------

USER_IDS = [f"u{i}" for i in range(12)]
GROUP_IDS = [f"{i}{i}{i}{i}{i}{i}{i}{i}" for i in range(1, 7)]

USER_VALUES: dict[str, list[Any]] = {
    "userName": ["anna@skola.example.se", "bo@skola.example.se", "x"],
    "name.givenName": ["Anna", "Bo", "Åsa"],
    "name.familyName": ["Ek", "Öberg"],
    "displayName": ["Anna Ek", "Bo Öberg"],
    "title": ["Elev", "Lärare"],
    "emails": [
        [{"value": "anna@skola.example.se", "type": "work", "primary": True}],
        [{"value": "bo@skola.example.se", "type": "work", "primary": True}],
    ],
}
USER_PATHS = sorted(USER_VALUES)
OPTIONAL_USER_PATHS = [p for p in USER_PATHS if p != "userName"]

# Sets are drawn as one bitmask each: fast to generate, and they shrink towards "nobody".


def subset(draw: st.DrawFn, pool: list[str], max_size: int | None = None) -> list[str]:
    mask = draw(st.integers(0, 2 ** len(pool) - 1))
    chosen = [item for i, item in enumerate(pool) if mask >> i & 1]
    return chosen[:max_size] if max_size is not None else chosen


def pick(draw: st.DrawFn, values: list[Any]) -> Any:
    return values[draw(st.integers(0, len(values) - 1))]


def desired_user_attributes(draw: st.DrawFn, ext: str) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "externalId": ext,
        "active": True,
        "userName": pick(draw, USER_VALUES["userName"]),
    }
    for path in subset(draw, OPTIONAL_USER_PATHS):
        attributes[path] = pick(draw, USER_VALUES[path])
    return attributes


def known_user_attributes(
    draw: st.DrawFn, ext: str, desired: dict[str, Any] | None
) -> dict[str, Any]:
    """Often what was last applied for the desired user, with a few paths changed."""
    if desired is not None and draw(st.booleans()):
        attributes = dict(desired)
    else:
        attributes = desired_user_attributes(draw, ext)
    for path in subset(draw, USER_PATHS, max_size=2):
        choice = pick(draw, ["change", "remove", "none"])
        if choice == "change":
            attributes[path] = pick(draw, USER_VALUES[path])
        elif choice == "remove":
            attributes.pop(path, None)
        else:
            attributes[path] = None  # an old record may hold a null
    return attributes


GROUP_NAMES = ["Norrskolan", "Söderskolan", "Västerskolan"]


@dataclass
class Scenario:
    users: dict[str, DesiredUser]
    groups: dict[str, DesiredGroup]
    known: Known
    protected: frozenset[str]
    keep: frozenset[str]
    rules: PlanRules
    chunk_argument: int | None  # passed as make_plan(member_chunk_size=...), else in rules

    @property
    def chunk(self) -> int:
        return self.chunk_argument or self.rules.member_chunk_size

    def plan(self, known: Known | None = None) -> Plan:
        return make_plan(
            self.users,
            self.groups,
            self.known if known is None else known,
            protected=self.protected,
            keep=self.keep,
            rules=self.rules,
            member_chunk_size=self.chunk_argument,
        )


@st.composite
def scenarios(
    draw: st.DrawFn,
    *,
    with_protected: bool = True,
    with_keep: bool = True,
) -> Scenario:
    desired_ids = subset(draw, USER_IDS)
    users = {ext: DesiredUser(ext, desired_user_attributes(draw, ext)) for ext in desired_ids}
    groups = {}
    for code in subset(draw, GROUP_IDS, max_size=4):
        attributes = {"externalId": code, "displayName": pick(draw, GROUP_NAMES)}
        groups[code] = DesiredGroup(code, attributes, set(subset(draw, desired_ids)))

    others = [ext for ext in USER_IDS if ext not in users]
    protected = frozenset(subset(draw, others)) if with_protected else frozenset()
    # Kept people may also be protected: protected wins.
    keep = frozenset(subset(draw, others)) if with_keep else frozenset()

    known = Known()
    for ext in subset(draw, USER_IDS):
        desired = users[ext].attributes if ext in users else None
        attributes = known_user_attributes(draw, ext, desired)
        # A scrubbed record belongs to someone who became protected: only with protected people.
        states = ["active", "active", "inactive"] + (["scrubbed"] if with_protected else [])
        state = pick(draw, states)
        if state == "inactive":
            attributes["active"] = False
        elif state == "scrubbed":
            attributes = dict(SCRUBBED_RECORD)
        active = bool(attributes.get("active", True))  # as record_user derives it
        known.users[ext] = KnownUser(
            external_id=ext,
            vendor_id=f"v-{ext}",
            origin=pick(draw, ["created", "linked"]),
            active=active,
            attributes=attributes,
            deactivated_at=None if active else pick(draw, [None, DEACTIVATED_AT]),
        )
    member_pool = [*USER_IDS, "ghost"]  # a membership whose user is no longer linked
    for code in subset(draw, GROUP_IDS):
        attributes = {"externalId": code, "displayName": pick(draw, GROUP_NAMES)}
        if draw(st.booleans()):
            attributes.pop("displayName")
        known.groups[code] = KnownGroup(
            external_id=code,
            vendor_id=f"g-{code}",
            origin=pick(draw, ["created", "linked"]),
            attributes=attributes,
            members=set(subset(draw, member_pool)),
        )

    chunk = draw(st.integers(1, 7))
    # The defaults (delete, keep empty groups) first, so failures shrink towards them; no
    # clock (now=None), so no grace period ever ends.
    rules = PlanRules(
        member_chunk_size=chunk,
        protected_policy=pick(draw, ["delete", "deactivate"]),
        delete_empty_groups=draw(st.booleans()),
    )
    chunk_argument = None
    if draw(st.booleans()):
        chunk_argument = chunk
        rules = replace(rules, member_chunk_size=100)
    # A scrubbed record is what is left of someone who became protected: unless the sources
    # show them unprotected again (desired), they still are (the planner holds to that).
    protected |= {
        ext
        for ext, user in known.users.items()
        if ext not in users and user.attributes == SCRUBBED_RECORD
    }
    return Scenario(users, groups, known, protected, keep, rules, chunk_argument)


HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large]
PROPERTY = settings(max_examples=500, deadline=None, suppress_health_check=HEALTH, database=None)


# -- properties --------------------------------------------------------------------------------


@PROPERTY
@given(scenarios(with_protected=False, with_keep=False))
def test_applying_the_plan_reaches_the_desired_state(scenario: Scenario) -> None:
    before = copy.deepcopy(scenario.known)
    plan = scenario.plan()
    assert scenario.known == before  # planning changes nothing it is given
    after = apply_plan(scenario.known, plan)
    event(f"operations: {min(len(plan.operations), 10)}")

    for ext, user in scenario.users.items():
        assert without_none(after.users[ext].attributes) == without_none(user.attributes)
        assert after.users[ext].active is True
    for code, group in scenario.groups.items():
        assert after.groups[code].members == group.members
        assert without_none(after.groups[code].attributes) == without_none(group.attributes)
    for ext, seen in scenario.known.users.items():
        if ext not in scenario.users:
            # No clock: no grace period ends, so leavers are deactivated, not deleted.
            assert ext in after.users
            assert after.users[ext].active is False
            assert after.users[ext].attributes.get("active") is False
            assert without_none(after.users[ext].attributes) == without_none(
                {**seen.attributes, "active": False}
            )
    deleted = set()
    for code, seen in scenario.known.groups.items():
        if code in scenario.groups:
            continue
        if scenario.rules.delete_empty_groups and seen.origin == "created":
            deleted.add(code)
        else:
            assert after.groups[code].members == set()  # emptied, and kept
    assert after.users.keys() == scenario.users.keys() | scenario.known.users.keys()
    assert after.groups.keys() == (scenario.groups.keys() | scenario.known.groups.keys()) - deleted


@PROPERTY
@given(scenarios())
def test_after_applying_the_plan_the_next_plan_is_empty(scenario: Scenario) -> None:
    plan = scenario.plan()
    after = apply_plan(scenario.known, plan)
    again = scenario.plan(after)
    assert again.operations == [], [op.as_dict() for op in again.operations]
    event(f"first plan empty: {not plan}")


@PROPERTY
@given(scenarios())
def test_operations_come_in_order_and_members_in_bounded_chunks(scenario: Scenario) -> None:
    plan = scenario.plan()
    positions = [ORDER.index(op.kind) for op in plan.operations]
    assert positions == sorted(positions)
    for op in plan.operations:
        if op.kind in ("add_members", "remove_members"):
            assert 1 <= len(op.members) <= scenario.chunk, op
            assert len(set(op.members)) == len(op.members), op
            assert not op.attributes
        else:
            # Never a replace of the member list, not even by a group create or update.
            assert op.members == (), op
            assert "members" not in op.attributes, op
    # Each membership change is planned once, in one chunk.
    for kind in ("add_members", "remove_members"):
        pairs = [(op.target, m) for op in plan.of_kind(kind) for m in op.members]
        assert len(pairs) == len(set(pairs)), kind
    # At most one operation of each other kind per object.
    singles = [(op.kind, op.target) for op in plan.operations if not op.members]
    assert len(singles) == len(set(singles))
    event(f"membership chunks: {len(plan.of_kind('add_members') + plan.of_kind('remove_members'))}")


@PROPERTY
@given(scenarios())
def test_protected_people_are_never_sent_and_end_removed(scenario: Scenario) -> None:
    protected = scenario.protected
    plan = scenario.plan()
    for op in plan.operations:
        if op.kind in ("create_user", "update_user"):
            assert op.target not in protected, op
        if op.kind == "add_members":
            assert not set(op.members) & protected, op
        if op.target in protected:
            assert op.kind in ("deactivate_user", "delete_user"), op
            assert op.reason == "protected", op
        if op.kind == "remove_members" and set(op.members) & protected:
            assert set(op.members) <= protected and op.reason == "protected", op
    after = apply_plan(scenario.known, plan)
    for ext in protected & scenario.known.users.keys():
        if ext in after.users:
            assert scenario.rules.protected_policy == "deactivate" or (
                scenario.known.users[ext].origin == "linked"
            )
            assert after.users[ext].active is False
            assert after.users[ext].attributes == SCRUBBED_RECORD  # no name, no address kept
        else:
            assert scenario.rules.protected_policy == "delete"
    for group in after.groups.values():
        assert not group.members & protected
    event(f"protected known users: {len(protected & scenario.known.users.keys())}")


def check_kept_people_are_left_alone(scenario: Scenario) -> None:
    kept = scenario.keep - scenario.protected
    plan = scenario.plan()
    for op in plan.operations:
        assert op.target not in kept, op
        assert not set(op.members) & kept, op
    after = apply_plan(scenario.known, plan)
    for ext in kept & scenario.known.users.keys():
        assert after.users[ext] == scenario.known.users[ext]
    for code, group in scenario.known.groups.items():
        recorded = group.members & kept
        assert code in after.groups or not recorded, (code, recorded)
        if code in after.groups:
            assert after.groups[code].members & kept == recorded
    event(f"kept known users: {len(kept & scenario.known.users.keys())}")


@PROPERTY
@given(scenarios(with_keep=True))
def test_kept_people_keep_their_accounts_and_memberships(scenario: Scenario) -> None:
    check_kept_people_are_left_alone(scenario)


def empty_group_holding_a_kept_member() -> Scenario:
    known = Known(
        users={
            "u1": KnownUser(
                external_id="u1",
                vendor_id="v-u1",
                origin="created",
                active=True,
                attributes={"externalId": "u1", "active": True, "userName": "anna"},
            )
        },
        groups={
            "11111111": KnownGroup(
                external_id="11111111",
                vendor_id="g-11111111",
                origin="created",
                attributes={"externalId": "11111111", "displayName": "Norrskolan"},
                members={"u1"},
            )
        },
    )
    rules = PlanRules(delete_empty_groups=True)
    return Scenario({}, {}, known, frozenset(), frozenset({"u1"}), rules, None)


@PROPERTY
@example(scenario=empty_group_holding_a_kept_member())
@given(scenarios(with_keep=True))
def test_kept_people_keep_their_memberships_when_empty_groups_are_deleted(
    scenario: Scenario,
) -> None:
    scenario.rules = replace(scenario.rules, delete_empty_groups=True)
    check_kept_people_are_left_alone(scenario)


@PROPERTY
@given(scenarios(), st.data())
def test_known_state_in_line_with_desired_plans_nothing(scenario: Scenario, data: Any) -> None:
    """A known state recorded exactly as desired, with leavers already deactivated (protected
    ones scrubbed) and groups no longer desired already empty, is left alone."""
    known = Known()
    for ext, user in scenario.users.items():
        known.users[ext] = KnownUser(
            external_id=ext,
            vendor_id=f"v-{ext}",
            origin=data.draw(st.sampled_from(["created", "linked"]), label="origin"),
            active=True,
            attributes=dict(user.attributes),
        )
    for ext in scenario.known.users.keys() - scenario.users.keys():
        protected = ext in scenario.protected
        known.users[ext] = KnownUser(
            external_id=ext,
            vendor_id=f"v-{ext}",
            # An account the connector made for a protected person would be deleted.
            origin="linked" if protected else "created",
            active=False,
            attributes=dict(SCRUBBED_RECORD) if protected else {"externalId": ext, "active": False},
            deactivated_at=DEACTIVATED_AT,
        )
    for code, group in scenario.groups.items():
        known.groups[code] = KnownGroup(
            external_id=code,
            vendor_id=f"g-{code}",
            origin="created",
            attributes=dict(group.attributes),
            members=set(group.members),
        )
    for code in scenario.known.groups.keys() - scenario.groups.keys():
        known.groups[code] = KnownGroup(
            external_id=code,
            vendor_id=f"g-{code}",
            origin="linked",  # never deleted, even under delete_empty_groups
            attributes={"externalId": code},
        )
    plan = scenario.plan(known)
    assert plan.operations == [], [op.as_dict() for op in plan.operations]


def test_simulator_rejects_adding_a_member_before_it_exists() -> None:
    """The simulator's own ordering check can fail (so the properties above mean something)."""
    plan = Plan(
        [
            Operation("add_members", "11111111", members=("u1",)),
            Operation("create_group", "11111111", attributes={"displayName": "X"}),
        ]
    )
    with pytest.raises(AssertionError):
        apply_plan(Known(), plan)
