"""Teaching groups and who teaches them, from the spec-validated SS 12000 test server: students
by their current memberships of Undervisning groups, teachers by activities (`teachers`: their
duties, `groups`: what they teach). Protected persons are in none, not even as an id kept."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from connector.config import Ss12000SourceConfig
from connector.people.model import ReadContext, SourceRead, StudyGroup
from connector.sources.ss12000 import Ss12000Source
from tests.fakes.ss12000_server import SS12000Server, duty_assignment, enrolment, membership
from tests.support.ss12000 import ss12000_source

GR = "12345678"
YESTERDAY = (date.today() - timedelta(days=1)).isoformat()


@pytest.fixture
def ss12000() -> Iterator[SS12000Server]:
    with SS12000Server(token_lifetime=3600) as server:
        yield server


def school(server: SS12000Server) -> dict[str, Any]:
    """One school unit; students (one protected), two teachers (one protected), a class, two
    teaching groups, and activities: current, ended, and one taught by the protected teacher."""
    gr = server.add_school_unit("Björkskolan", GR, ("GR",))
    ids: dict[str, Any] = {"gr": gr}

    def person(key: str, marking: str = "Ingen", *, student: bool = True) -> str:
        ids[key] = server.add_person(
            key.capitalize(),
            "Ek",
            security_marking=marking,
            emails=[("Skola elev" if student else "Skola personal", f"{key}@example.se")],
            enrolments=[enrolment(gr, "GR", 7)] if student else None,
        )["id"]
        return str(ids[key])

    astrid, bo, dan = person("astrid"), person("bo"), person("dan", "Skyddad folkbokföring")
    karin, hemlig = (
        person("karin", student=False),
        person("hemlig", "Sekretessmarkering", student=False),
    )
    ids["duty_karin"] = server.add_duty(karin, gr, "Lärare")["id"]
    ids["duty_hemlig"] = server.add_duty(hemlig, gr, "Lärare")["id"]
    klass = server.add_group("7B", gr, members=[astrid, bo, dan], group_type="Klass")
    ma = server.add_group(
        "MA7B",
        gr,
        group_type="Undervisning",
        members=[astrid, dan, membership(bo, end_date=YESTERDAY)],  # bo has left it
    )
    sv = server.add_group("SV7-hemlig", gr, group_type="Undervisning", members=[dan])
    ids.update(klass=klass["id"], ma=ma["id"], sv=sv["id"])
    ids["maths"] = server.add_activity(
        "Matematik", gr, [ma, klass], teachers=[ids["duty_karin"], ids["duty_hemlig"]]
    )["id"]
    server.add_activity("Svenska", gr, [sv], teachers=[ids["duty_hemlig"]])
    server.add_activity("Gammal", gr, [klass], teachers=[ids["duty_karin"]], end_date=YESTERDAY)
    server.add_activity(
        "Slöjd", gr, [klass], teachers=[duty_assignment(ids["duty_karin"], end_date=YESTERDAY)]
    )
    return ids


def reader(server: SS12000Server, **overrides: Any) -> Ss12000Source:
    config = ss12000_source(server, **{"study_groups": True, **overrides})
    config["auth"]["client_secret"] = server.client_secret
    return Ss12000Source(Ss12000SourceConfig.model_validate(config))


def groups_by_key(read: SourceRead) -> dict[str, tuple[StudyGroup, ...]]:
    return {p.source_key: p.study_groups for p in read.persons}


MA = StudyGroup(GR, "MA7B", "Undervisning", "student")


def test_students_in_teaching_groups_and_teachers_of_activities(ss12000: SS12000Server) -> None:
    ids = school(ss12000)

    read = reader(ss12000).read()

    groups = groups_by_key(read)
    assert groups[ids["astrid"]] == (MA,)
    assert groups[ids["bo"]] == ()  # left the group yesterday; the class comes from `classes`
    assert groups[ids["karin"]] == (
        StudyGroup(GR, "MA7B", "Undervisning", "teacher"),
        StudyGroup(GR, "7B", "Klass", "teacher"),
    )  # not the ended activity, nor the one whose teaching of hers ended
    # The protected carry nothing, and nothing of theirs is kept for the next read.
    assert groups[ids["dan"]] == () and groups[ids["hemlig"]] == ()
    kept = json.dumps(read.snapshot.objects)
    assert ids["dan"] not in kept and ids["duty_hemlig"] not in kept and ids["hemlig"] not in kept
    # Without `classes`, the class groups read for teachers give nobody a class name.
    assert {pl.class_name for p in read.persons for pl in p.placements} == {None}
    assert read.issues == []


def test_classes_and_study_groups_together(ss12000: SS12000Server) -> None:
    ids = school(ss12000)

    read = reader(ss12000, classes=True).read()

    astrid = next(p for p in read.persons if p.source_key == ids["astrid"])
    assert [pl.class_name for pl in astrid.placements] == ["7B"]
    assert astrid.study_groups == (MA,)  # the class is the placement's, not repeated here


def test_an_unsafe_group_name_leaves_that_group_out_and_says_why(ss12000: SS12000Server) -> None:
    ids = school(ss12000)
    ss12000.update("groups", ids["ma"], displayName="=HYPERLINK(1)")

    read = reader(ss12000).read()

    assert groups_by_key(read)[ids["astrid"]] == ()
    assert groups_by_key(read)[ids["karin"]] == (StudyGroup(GR, "7B", "Klass", "teacher"),)
    assert [(i.location, i.reason) for i in read.issues] == [
        (
            f"Group {ids['ma']}",
            "displayName starts like a spreadsheet formula (=, +, -, @); the group is left out",
        )
    ]
    assert "HYPERLINK" not in repr(read.issues)


def test_activity_changes_and_deletions_arrive_in_an_incremental_read(
    ss12000: SS12000Server,
) -> None:
    ids = school(ss12000)
    sis = reader(ss12000)
    first = sis.read()
    ss12000.delete("activities", ids["maths"])
    science = ss12000.add_group("NO7", ids["gr"], group_type="Undervisning", members=[ids["bo"]])
    ss12000.add_activity("NO", ids["gr"], [science], teachers=[ids["duty_karin"]])
    ss12000.clear_requests()

    snapshot = first.snapshot
    objects = json.loads(json.dumps(snapshot.objects))
    second = sis.read(ReadContext(full=False, snapshot=objects, checkpoint=snapshot.checkpoint))

    groups = groups_by_key(second)
    assert groups[ids["karin"]] == (StudyGroup(GR, "NO7", "Undervisning", "teacher"),)
    assert groups[ids["bo"]] == (StudyGroup(GR, "NO7", "Undervisning", "student"),)
    assert groups[ids["astrid"]] == (MA,)  # unchanged, from the kept picture
    firsts = [r for r in ss12000.requests if r.path != "/token" and not r.is_continuation]
    (activities,) = [r for r in firsts if r.path == "/activities"]
    (listed_groups,) = [r for r in firsts if r.path == "/groups"]
    (deleted,) = [r for r in firsts if r.path == "/deletedEntities"]
    assert activities.is_incremental and listed_groups.is_incremental
    assert listed_groups.query["groupType"] == ["Klass", "Undervisning"]
    assert {"Group", "Activity"} <= set(deleted.query["entities"])


def test_without_study_groups_no_activities_are_asked_for(ss12000: SS12000Server) -> None:
    school(ss12000)

    read = reader(ss12000, study_groups=False).read()

    assert all(p.study_groups == () for p in read.persons)
    assert not [r for r in ss12000.requests if r.path in ("/activities", "/groups")]
