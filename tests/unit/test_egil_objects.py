"""The desired EGIL objects (connector/targets/egil/objects.py) and how they are sent
(wire.py): every type, each reference pointing at the object it names, and a protected
student in no object at all."""

from __future__ import annotations

import json

from connector.config import EgilEndpointsConfig
from connector.people.model import StudyGroup
from connector.targets.egil.objects import NOT_A_TEACHER_ROLE, RESOURCE
from connector.targets.egil.wire import USER_EXTENSION, Wire
from tests.support.egil import (
    EGIL_IDS,
    NORR,
    SODER,
    builder,
    scoped,
    student,
    studied,
    taught,
    teacher,
    uuid_of,
)

BASE = "https://egil.example/scim/v2"


def by_resource(groups: dict, resource: str) -> dict:
    return {k: g for k, g in groups.items() if g.attributes[RESOURCE] == resource}


def roster():
    anna = student("S1", groups=(studied("MA7"),))
    bo = student("S2", SODER, "1A")
    lena = teacher("T1", NORR, SODER, teaches=(taught("MA7"), taught("7A", kind="Klass")))
    rektor = teacher("T2", NORR, role="rektor")
    janitor = teacher("T3", SODER, role="Vaktmästare")
    return anna, bo, lena, rektor, janitor


def test_every_type_is_built_with_its_references() -> None:
    anna, bo, lena, rektor, janitor = people = roster()
    desired = builder().build(scoped(*people))
    org = EGIL_IDS.organisation("1234")
    norr, soder = EGIL_IDS.school_unit(NORR), EGIL_IDS.school_unit(SODER)
    gymnasiet = EGIL_IDS.school_unit_group("Gymnasiet")

    assert by_resource(desired.groups, "Organisations")[org].attributes == {
        RESOURCE: "Organisations",
        "displayName": "Exempels kommun",
    }
    assert set(by_resource(desired.groups, "SchoolUnitGroups")) == {gymnasiet}
    units = by_resource(desired.groups, "SchoolUnits")
    assert units[soder].attributes == {
        RESOURCE: "SchoolUnits",
        "displayName": "Söderskolan",
        "schoolUnitCode": SODER,
        "organisation": org,
        "schoolUnitGroup": gymnasiet,
        "schoolTypes": ["GY"],
        "municipalityCode": "1234",
    }
    assert "schoolUnitGroup" not in units[norr].attributes

    assert {u: a.attributes[RESOURCE] for u, a in desired.users.items()} == {
        uuid_of(anna): "Students",
        uuid_of(bo): "Students",
        uuid_of(lena): "Teachers",
        uuid_of(rektor): "Teachers",
        uuid_of(janitor): "Teachers",  # all staff, as EGIL clients send them
    }
    assert desired.users[uuid_of(anna)].attributes["enrolments"] == [
        {"value": norr, "schoolYear": 7, "schoolType": "GR"}
    ]
    assert "enrolments" not in desired.users[uuid_of(lena)].attributes

    employments = {
        (g.attributes["user"], g.attributes["employedAt"]): g.attributes["employmentRole"]
        for g in by_resource(desired.groups, "Employments").values()
    }
    assert employments == {
        (uuid_of(lena), norr): "Lärare",
        (uuid_of(lena), soder): "Lärare",
        (uuid_of(rektor), norr): "Rektor",  # the role table ignores case
        (uuid_of(janitor), soder): "Annan personal",  # the default
    }

    klass = EGIL_IDS.student_group(NORR, "Klass", "7A")
    math = EGIL_IDS.student_group(NORR, "Undervisning", "MA7")
    one_a = EGIL_IDS.student_group(SODER, "Klass", "1A")
    groups = by_resource(desired.groups, "StudentGroups")
    assert set(groups) == {klass, math, one_a}
    assert groups[math].attributes == {
        RESOURCE: "StudentGroups",
        "displayName": "MA7",
        "owner": norr,
        "studentGroupType": "Undervisning",
        "schoolType": "GR",
    }
    assert groups[klass].members == groups[math].members == {uuid_of(anna)}
    assert groups[one_a].members == {uuid_of(bo)}

    activities = by_resource(desired.groups, "Activities")
    lena_norr = EGIL_IDS.employment(uuid_of(lena), NORR)
    assert {a.attributes["groups"][0]: a.attributes["teachers"] for a in activities.values()} == {
        klass: [lena_norr],
        math: [lena_norr],
    }
    assert activities[EGIL_IDS.activity(math)].attributes["owner"] == norr


def test_a_protected_student_is_in_no_object() -> None:
    """Scope drops them; the builder must not bring them back through any reference."""
    anna, bo, lena, rektor, janitor = roster()
    hidden = student("S9", groups=(studied("MA7"),))
    desired = builder().build(scoped(anna, bo, lena, rektor, janitor, protected=(hidden,)))
    secret = uuid_of(hidden)
    assert secret not in desired.users
    assert secret in desired.protected_ids  # known, only to take an account off
    everything = json.dumps(
        [g.attributes for g in desired.groups.values()]
        + [sorted(g.members) for g in desired.groups.values()]
        + [u.attributes for u in desired.users.values()],
        ensure_ascii=False,
    )
    assert secret not in everything
    assert "s9@" not in everything and "NrS9" not in everything


def test_teacher_roles_limit_who_is_sent_as_a_teacher() -> None:
    anna, bo, lena, rektor, janitor = roster()
    desired = builder(teacher_roles=["Lärare", "Rektor"]).build(
        scoped(anna, bo, lena, rektor, janitor)
    )
    assert uuid_of(janitor) not in desired.users
    assert uuid_of(janitor) not in desired.held_ids  # not in this target's scope: not held
    assert desired.excluded[NOT_A_TEACHER_ROLE] == 1
    assert all(g.attributes.get("user") != uuid_of(janitor) for g in desired.groups.values())
    assert uuid_of(lena) in desired.users and uuid_of(rektor) in desired.users


def test_a_person_without_a_family_name_is_held_not_sent() -> None:
    nameless = student("S5", family="")
    desired = builder().build(scoped(nameless, student("S6")))
    assert uuid_of(nameless) not in desired.users
    assert uuid_of(nameless) in desired.held_ids
    assert [i.reason for i in desired.issues] == [
        "EGIL needs a given name, a family name and a display name"
    ]
    klass = desired.groups[EGIL_IDS.student_group(NORR, "Klass", "7A")]
    assert klass.members == {uuid_of(student("S6"))}


def test_groups_without_students_and_unsafe_names_are_left_out() -> None:
    lonely = teacher("T7", teaches=(taught("Tomma"),))
    bad = student("S7", groups=(StudyGroup(NORR, "=cmd()", "Undervisning", "student"),))
    desired = builder().build(scoped(lonely, bad))
    names = {
        g.attributes.get("displayName")
        for g in by_resource(desired.groups, "StudentGroups").values()
    }
    assert names == {"7A"}
    assert not by_resource(desired.groups, "Activities")
    assert any("group at school" in i.location for i in desired.issues)


def test_a_teacher_teaching_at_a_school_they_have_no_duty_at_is_no_activity_teacher() -> None:
    visiting = teacher("T8", SODER, teaches=(taught("MA7"),))
    desired = builder().build(scoped(student("S1", groups=(studied("MA7"),)), visiting))
    assert not by_resource(desired.groups, "Activities")


def test_the_wire_form_has_schemas_refs_and_the_user_extension() -> None:
    people = roster()
    anna, lena = people[0], people[2]
    desired = builder().build(scoped(*people))
    norr = EGIL_IDS.school_unit(NORR)
    user = Wire(BASE).render(uuid_of(anna), desired.users[uuid_of(anna)].attributes)
    assert user["schemas"] == [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        USER_EXTENSION,
    ]
    assert user["externalId"] == uuid_of(anna)
    assert "active" not in user and RESOURCE not in user and "enrolments" not in user
    assert user[USER_EXTENSION] == {
        "enrolments": [
            {
                "value": norr,
                "$ref": f"{BASE}/SchoolUnits/{norr}",
                "schoolYear": 7,
                "schoolType": "GR",
            }
        ]
    }
    assert user["name"] == {"givenName": "Elev", "familyName": "NrS1"}
    assert "civicNo" not in json.dumps(user)

    klass = EGIL_IDS.student_group(NORR, "Klass", "7A")
    group = desired.groups[klass]
    body = Wire(BASE).render(klass, group.attributes, group.members)
    assert body["owner"] == {"value": norr, "$ref": f"{BASE}/SchoolUnits/{norr}"}
    assert body["studentMemberships"] == [
        {"value": uuid_of(anna), "$ref": f"{BASE}/Users/{uuid_of(anna)}"}
    ]
    apart = EgilEndpointsConfig(students="Elever")
    assert Wire(BASE, apart).render(klass, group.attributes, group.members)[
        "studentMemberships"
    ] == [{"value": uuid_of(anna), "$ref": f"{BASE}/Elever/{uuid_of(anna)}"}]
    activity = desired.groups[EGIL_IDS.activity(klass)]
    body = Wire(BASE).render(activity.external_id, activity.attributes)
    employment = EGIL_IDS.employment(uuid_of(lena), NORR)
    assert body["teachers"] == [{"value": employment, "$ref": f"{BASE}/Employments/{employment}"}]
    assert body["groups"] == [{"value": klass, "$ref": f"{BASE}/StudentGroups/{klass}"}]
    assert body["schemas"] == ["urn:scim:schemas:extension:sis:school:1.0:Activity"]
