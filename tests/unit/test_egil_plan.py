"""Planning an EGIL target (connector/targets/egil/plan.py, changes.py): the shared planner's
operation kinds, so every safety rule applies unchanged; one request per object in EGIL's send
order; what "deactivate" means at a server without `active`."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from connector.config import Limit, RolloverHoldConfig, SafetyConfig
from connector.mapping.desired import Desired
from connector.planning.guard import (
    hold_for_failed_sources,
    hold_for_rollover,
    hold_for_thresholds,
)
from connector.planning.objects import Known, KnownGroup, KnownUser
from connector.planning.plan import PlanRules
from connector.targets.egil.changes import gather, stages
from connector.targets.egil.objects import RESOURCE
from connector.targets.egil.plan import egil_plan
from tests.support.egil import (
    EGIL_IDS,
    NORR,
    SODER,
    builder,
    scoped,
    student,
    taught,
    teacher,
    uuid_of,
)

NOW = datetime(2026, 3, 10, tzinfo=UTC)
RULES = PlanRules(now=NOW, delete_after=timedelta(days=30))


def sent(desired: Desired) -> Known:
    """What the server holds once a plan for `desired` was applied in full."""
    return Known(
        users={
            e: KnownUser(e, e, "created", True, dict(u.attributes))
            for e, u in desired.users.items()
        },
        groups={
            e: KnownGroup(e, e, "created", dict(g.attributes), set(g.members))
            for e, g in desired.groups.items()
        },
    )


def test_a_first_plan_is_one_post_per_object_in_the_send_order() -> None:
    people = [
        student("S1"),
        student("S2", SODER, "1A"),
        teacher("T1", teaches=(taught("7A", kind="Klass"),)),
    ]
    desired = builder().build(scoped(*people))
    plan = egil_plan(desired, Known(), RULES)
    kinds = {op.kind for op in plan.operations}
    assert kinds == {"create_user", "create_group", "add_members"}
    order = [[(c.method, c.resource) for c in stage] for stage in stages(gather(plan, Known()))]
    assert [stage[0][1] for stage in order] == [
        "Organisations",
        "SchoolUnitGroups",
        "SchoolUnits",
        "Students",
        "Teachers",
        "Employments",
        "StudentGroups",
        "Activities",
    ]
    assert all(method == "POST" for stage in order for method, _ in stage)
    klass = EGIL_IDS.student_group(NORR, "Klass", "7A")
    change = next(c for c in gather(plan, Known()) if c.target == klass)
    assert change.members == {uuid_of(people[0])}  # the create carries its members


def test_nothing_changed_plans_nothing() -> None:
    desired = builder().build(scoped(student("S1"), teacher("T1")))
    assert not egil_plan(desired, sent(desired), RULES)


def test_a_shrinking_class_is_held_like_a_scim_group() -> None:
    many = [student(f"S{i}") for i in range(40)]
    before = sent(builder().build(scoped(*many)))
    after = builder().build(scoped(*many[:10]))
    plan = egil_plan(after, before, RULES)
    removals = sum(len(op.members) for op in plan.of_kind("remove_members"))
    assert removals == 30
    safety = SafetyConfig(max_membership_removals=Limit(count=5, percent=5))
    kept, held = hold_for_thresholds(plan, safety, before)
    assert held is not None
    assert not kept.of_kind("remove_members") and not kept.of_kind("deactivate_user")
    # An unhealthy source holds them too.
    kept, held = hold_for_failed_sources(plan, {"students": "returned nobody"})
    assert held is not None and not kept.of_kind("remove_members")


def test_a_leaver_is_put_without_enrolments_then_deleted_after_the_grace_period() -> None:
    anna, bo = student("S1"), student("S2")
    before = sent(builder().build(scoped(anna, bo)))
    desired = builder().build(scoped(bo))
    plan = egil_plan(desired, before, RULES)
    leaver = uuid_of(anna)
    [deactivate] = plan.of_kind("deactivate_user")
    assert (deactivate.target, deactivate.reason) == (leaver, "left")
    changes = {c.target: c for c in gather(plan, before)}
    assert changes[leaver].method == "PUT"
    assert changes[leaver].attributes["enrolments"] == []
    assert changes[leaver].attributes["userName"] == "s1@elev.example.se"
    klass = EGIL_IDS.student_group(NORR, "Klass", "7A")
    assert changes[klass].method == "PUT" and changes[klass].members == {uuid_of(bo)}

    # Deactivated: nothing more until the grace period has passed, then DELETE, last.
    after = sent(desired)
    after.users[leaver] = replace(
        before.users[leaver],
        active=False,
        attributes={**changes[leaver].attributes, "active": False},
        deactivated_at=NOW - timedelta(days=10),
    )
    assert not egil_plan(desired, after, RULES)
    after.users[leaver].deactivated_at = NOW - timedelta(days=31)
    plan = egil_plan(desired, after, RULES)
    assert [(op.kind, op.reason) for op in plan.operations] == [("delete_user", "expired")]
    [[change]] = stages(gather(plan, after))
    assert (change.method, change.resource) == ("DELETE", "Students")


def test_a_teachers_employment_goes_as_they_do() -> None:
    lena = teacher("T1", NORR, SODER, teaches=(taught("7A", kind="Klass"),))
    anna = student("S1")
    before = sent(builder().build(scoped(anna, lena)))
    norr_job = EGIL_IDS.employment(uuid_of(lena), NORR)
    soder_job = EGIL_IDS.employment(uuid_of(lena), SODER)

    moved = builder().build(scoped(anna, replace(lena, placements=lena.placements[1:])))
    plan = egil_plan(moved, before, RULES)
    deletes = {op.target: op.reason for op in plan.of_kind("delete_group")}
    # Her class's activity loses its teacher, and so goes too.
    assert deletes == {
        norr_job: "moved",
        EGIL_IDS.activity(EGIL_IDS.student_group(NORR, "Klass", "7A")): "empty",
    }
    stage_order = [c.resource for stage in stages(gather(plan, before)) for c in stage]
    assert stage_order == ["Activities", "Employments"]  # deletions in the reverse order

    left = builder().build(scoped(anna))
    plan = egil_plan(left, before, RULES)
    deletes = {op.target: op.reason for op in plan.of_kind("delete_group")}
    assert deletes[norr_job] == deletes[soder_job] == "left"
    window = RolloverHoldConfig(start="03-01", end="03-31")
    kept, held = hold_for_rollover(plan, window, NOW)
    assert held is not None
    assert not kept.of_kind("deactivate_user")
    assert {op.target for op in kept.of_kind("delete_group")}.isdisjoint({norr_job, soder_job})


def test_a_newly_protected_person_is_deleted_whatever_the_policy_and_never_held() -> None:
    anna, lena = student("S1"), teacher("T1")
    before = sent(builder().build(scoped(anna, lena)))
    desired = builder().build(
        scoped(protected=(replace(anna, protected=True), replace(lena, protected=True)))
    )
    rules = replace(RULES, protected_policy="deactivate")
    plan = egil_plan(desired, before, rules)
    assert {(op.kind, op.target) for op in plan.of_kind("delete_user")} == {
        ("delete_user", uuid_of(anna)),
        ("delete_user", uuid_of(lena)),
    }
    assert all(op.reason == "protected" for op in plan.of_kind("delete_user"))
    job = EGIL_IDS.employment(uuid_of(lena), NORR)
    assert {op.target: op.reason for op in plan.of_kind("delete_group")}[job] == "protected"
    assert all(op.reason == "protected" for op in plan.of_kind("remove_members"))
    assert not plan.of_kind("deactivate_user")
    kept, _ = hold_for_failed_sources(plan, {"students": "returned nobody"})
    assert {op.target for op in kept.of_kind("delete_user")} == {uuid_of(anna), uuid_of(lena)}


def test_a_held_teachers_employment_stays() -> None:
    lena = teacher("T1")
    before = sent(builder().build(scoped(lena)))
    desired = builder().build(scoped())
    desired.held_ids = frozenset({uuid_of(lena)})
    plan = egil_plan(desired, before, RULES)
    assert not plan.of_kind("delete_group") or all(
        before.groups[op.target].attributes[RESOURCE] != "Employments"
        for op in plan.of_kind("delete_group")
    )
    assert not plan.of_kind("deactivate_user")


def test_a_rename_is_one_put_of_the_whole_user() -> None:
    anna = student("S1")
    before = sent(builder().build(scoped(anna)))
    desired = builder().build(scoped(replace(anna, family_name="Berg")))
    plan = egil_plan(desired, before, RULES)
    [op] = plan.operations
    assert op.kind == "update_user"
    [change] = gather(plan, before)
    assert change.method == "PUT"
    assert change.attributes["name"] == {"givenName": "Elev", "familyName": "Berg"}
    assert change.attributes["enrolments"] == before.users[uuid_of(anna)].attributes["enrolments"]


def test_a_full_reconcile_resends_every_known_object_whole_in_order() -> None:
    desired = builder().build(scoped(student("S1"), teacher("T1")))
    known = sent(desired)
    changes = gather(egil_plan(desired, known, RULES), known, resend=True)
    assert len(changes) == len(known.users) + len(known.groups)
    assert all(c.method == "PUT" and not c.ops for c in changes)
    assert {c.target: c.resource for c in changes} == {
        **{e: u.attributes[RESOURCE] for e, u in known.users.items()},
        **{e: g.attributes[RESOURCE] for e, g in known.groups.items()},
    }
    klass = EGIL_IDS.student_group(NORR, "Klass", "7A")
    assert next(c for c in changes if c.target == klass).members == {uuid_of(student("S1"))}
    order = [stage[0].resource for stage in stages(changes)]
    assert order == [
        "Organisations",
        "SchoolUnitGroups",
        "SchoolUnits",
        "Students",
        "Teachers",
        "Employments",
        "StudentGroups",
    ]


def test_the_plan_shows_a_complex_value_by_its_parts() -> None:
    from connector.reports.render import show_value

    assert show_value({"givenName": "Elev", "familyName": "Berg"}) == (
        "givenName=Elev familyName=Berg"
    )
    assert show_value([{"value": "a@b.se", "type": "work"}]) == "a@b.se (work)"
