"""The desired EGIL objects: the people and schools in scope as SS 12000:2018 objects.

Students and teachers are the plan's users; every other object (Organisation, SchoolUnitGroup,
SchoolUnit, Employment, StudentGroup, Activity) is one of its groups, so the shared planner and
every safety rule apply unchanged. An object's attributes are kept flat, as it is sent but for
its references (plain UUIDs here, `{value, $ref}` on the wire: wire.py), plus `resource`: the
endpoint it lives at (never sent). A StudentGroup's students are its members (a shrinking
roster is held like a SCIM group's); the other references are attributes.

Only people in scope appear: a protected person is in no object - no User, no membership, no
employment, no activity (scope has dropped them before this is reached).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.config import EgilTargetConfig
from connector.mapping.desired import Desired, PersonMapping, build_desired
from connector.people.externalid import ExternalIdMaker
from connector.people.model import Kind, Person, School, SourceIssue, StudyGroup, unsafe_text
from connector.people.scope import Scoped
from connector.planning.objects import DesiredGroup, DesiredUser
from connector.targets.egil.ids import EgilIds

RESOURCE = "resource"  # the endpoint an object lives at: bookkeeping, never sent
ORGANISATIONS, SCHOOL_UNIT_GROUPS, SCHOOL_UNITS = "Organisations", "SchoolUnitGroups", "SchoolUnits"
STUDENTS, TEACHERS, EMPLOYMENTS = "Students", "Teachers", "Employments"
STUDENT_GROUPS, ACTIVITIES = "StudentGroups", "Activities"
# The send order (deletions go in the reverse order).
SEND_ORDER = (
    ORGANISATIONS,
    SCHOOL_UNIT_GROUPS,
    SCHOOL_UNITS,
    STUDENTS,
    TEACHERS,
    EMPLOYMENTS,
    STUDENT_GROUPS,
    ACTIVITIES,
)
USER_RESOURCES = frozenset({STUDENTS, TEACHERS})
NOT_A_TEACHER_ROLE = "no duty role in the EGIL target's teacher_roles"
NAME_MISSING = "EGIL needs a given name, a family name and a display name"


@dataclass(slots=True)
class _Group:
    """A StudentGroup being gathered: its students, and the teachers' person UUIDs."""

    code: str
    type: str
    name: str
    school_type: str | None = None
    students: set[str] = field(default_factory=set)
    teachers: set[str] = field(default_factory=set)


class EgilBuilder:
    """Builds one cycle's desired EGIL objects for one target."""

    def __init__(self, config: EgilTargetConfig, mapping: PersonMapping, ids: ExternalIdMaker):
        self.config = config
        self.mapping = mapping
        self.maker = ids
        self.ids = EgilIds(ids)
        self._roles = {k.casefold(): v for k, v in config.employment_roles.items()}
        teacher_roles = config.teacher_roles
        self._teacher_roles = (
            None if teacher_roles is None else frozenset(r.casefold() for r in teacher_roles)
        )

    def build(self, scoped: Scoped) -> Desired:
        base = build_desired(scoped, self.mapping, self.maker)
        desired = Desired(excluded=base.excluded, issues=base.issues)
        desired.protected_ids = frozenset(self.ids.person(ext) for ext in base.protected_ids)
        held = {self.ids.person(ext) for ext in base.held_ids}
        schools = self._schools(scoped.schools, desired)
        groups: dict[tuple[str, str, str], _Group] = {}
        for person in scoped.persons:
            try:
                external_id = self.maker.for_person(person)
            except ValueError:
                continue  # build_desired reported it
            mapped = base.users.get(external_id)
            if mapped is None:
                continue  # left out or held there
            uuid = self.ids.person(external_id)
            if person.kind is not Kind.STUDENT and not self._is_teacher(person):
                # Not desired: an account sent before goes as a leaver's does.
                desired.excluded[NOT_A_TEACHER_ROLE] += 1
                continue
            user = self._user(person, uuid, mapped.attributes, schools, desired)
            if user is None:
                held.add(uuid)  # like an unreadable row: not gone, so not deprovisioned
                continue
            desired.users[uuid] = user
            if external_id in base.modified:
                desired.modified[uuid] = base.modified[external_id]
            if person.kind is Kind.STUDENT:
                _student_groups(person, uuid, schools, groups)
            else:
                self._employments(person, uuid, schools, desired)
                _taught_groups(person, uuid, schools, groups)
        self._groups(groups, schools, desired)
        desired.held_ids = frozenset(held)
        return desired

    # -- the organisation and the schools -------------------------------------------------------

    def _schools(self, schools: dict[str, School], desired: Desired) -> dict[str, str]:
        """Organisation, SchoolUnitGroups and SchoolUnits; school unit code -> its UUID."""
        organisation = self.config.organisation
        org = self.ids.organisation(organisation.municipality_code)
        desired.groups[org] = _object(
            org, ORGANISATIONS, {"displayName": organisation.display_name}
        )
        unit_groups: dict[str, str] = {}
        for name in sorted(set(self.config.school_unit_groups.values())):
            unit_groups[name] = self.ids.school_unit_group(name)
            desired.groups[unit_groups[name]] = _object(
                unit_groups[name], SCHOOL_UNIT_GROUPS, {"displayName": name}
            )
        found = {}
        for code, school in sorted(schools.items()):
            if not code.isdigit() or len(code) != 8:
                why = "not an 8-digit school unit code: left out of EGIL"
                desired.issues.append(SourceIssue("mapping", f"school {code}", why))
                continue
            uuid = found[code] = self.ids.school_unit(code)
            attributes: dict[str, Any] = {
                "displayName": _school_name(self.mapping, school),
                "schoolUnitCode": code,
                "organisation": org,
                "municipalityCode": organisation.municipality_code,
            }
            if school.school_types:
                attributes["schoolTypes"] = list(school.school_types)
            group_name = self.config.school_unit_groups.get(code)
            if group_name is not None:
                attributes["schoolUnitGroup"] = unit_groups[group_name]
            desired.groups[uuid] = _object(uuid, SCHOOL_UNITS, attributes)
        return found

    # -- people ---------------------------------------------------------------------------------

    def _user(
        self,
        person: Person,
        uuid: str,
        mapped: dict[str, Any],
        schools: dict[str, str],
        desired: Desired,
    ) -> DesiredUser | None:
        """A Student or Teacher; None (with an issue) when it cannot be one."""
        given, family = mapped.get("name.givenName"), mapped.get("name.familyName")
        display = mapped.get("displayName")
        if not (given and family and display):
            desired.issues.append(SourceIssue("mapping", f"user {uuid[:12]}", NAME_MISSING))
            return None
        attributes: dict[str, Any] = {
            RESOURCE: STUDENTS if person.kind is Kind.STUDENT else TEACHERS,
            "active": True,
            "userName": mapped["userName"],
            "name": {"givenName": given, "familyName": family},
            "displayName": display,
        }
        if mapped.get("emails"):
            attributes["emails"] = [
                {"value": e["value"], "type": e.get("type") or "work"} for e in mapped["emails"]
            ]
        if person.kind is Kind.STUDENT:
            attributes["enrolments"] = _enrolments(person, schools)
        return DesiredUser(uuid, attributes)

    def _is_teacher(self, person: Person) -> bool:
        if self._teacher_roles is None:
            return True
        return any((p.role or "").casefold() in self._teacher_roles for p in person.placements)

    def _employments(
        self, person: Person, uuid: str, schools: dict[str, str], desired: Desired
    ) -> None:
        """One Employment per school a staff member has a duty at: the first of their duty
        roles there that the role table names, else the default role."""
        roles: dict[str, list[str]] = {}
        for placement in person.placements:
            if placement.school_unit_code in schools:
                found = self._roles.get((placement.role or "").casefold())
                roles.setdefault(placement.school_unit_code, []).extend([found] if found else [])
        for code, named in roles.items():
            employment = self.ids.employment(uuid, code)
            attributes = {
                "employedAt": schools[code],
                "user": uuid,
                "employmentRole": named[0] if named else self.config.default_employment_role,
            }
            desired.groups[employment] = _object(employment, EMPLOYMENTS, attributes)

    # -- groups and activities ------------------------------------------------------------------

    def _groups(
        self, groups: dict[tuple[str, str, str], _Group], schools: dict[str, str], desired: Desired
    ) -> None:
        """StudentGroups with at least one student; an Activity for each that has teachers."""
        for key, group in sorted(groups.items()):
            if not group.students:
                continue
            reason = unsafe_text(group.name)
            if reason is not None:
                where = f"group at school {group.code}"
                desired.issues.append(SourceIssue("mapping", where, f"its name {reason}"))
                continue
            uuid = self.ids.student_group(*key)
            attributes: dict[str, Any] = {
                "displayName": group.name,
                "owner": schools[group.code],
                "studentGroupType": group.type,
            }
            if group.school_type:
                attributes["schoolType"] = group.school_type
            desired.groups[uuid] = _object(uuid, STUDENT_GROUPS, attributes, group.students)
            teachers = sorted(
                employment
                for teacher in group.teachers
                if (employment := self.ids.employment(teacher, group.code)) in desired.groups
            )
            if teachers:
                activity = self.ids.activity(uuid)
                desired.groups[activity] = _object(
                    activity,
                    ACTIVITIES,
                    {
                        "displayName": group.name,
                        "owner": schools[group.code],
                        "groups": [uuid],
                        "teachers": teachers,
                    },
                )


def _object(
    uuid: str, resource: str, attributes: dict[str, Any], members: set[str] | None = None
) -> DesiredGroup:
    return DesiredGroup(uuid, {RESOURCE: resource, **attributes}, set(members or ()))


def _school_name(mapping: PersonMapping, school: School) -> str:
    name = str(mapping.group_attributes(school).get("displayName") or "")
    return name if name and unsafe_text(name) is None else school.code


def _enrolments(person: Person, schools: dict[str, str]) -> list[dict[str, Any]]:
    """One enrolment per school unit (the first placement there), in placement order."""
    found: dict[str, dict[str, Any]] = {}
    for placement in person.placements:
        code = placement.school_unit_code
        if code not in schools or code in found:
            continue
        enrolment: dict[str, Any] = {"value": schools[code]}
        year = (placement.school_year or "").strip()
        if year.isdigit():
            enrolment["schoolYear"] = int(year)
        if placement.school_type:
            enrolment["schoolType"] = placement.school_type
        found[code] = enrolment
    return list(found.values())


def _student_groups(
    person: Person,
    uuid: str,
    schools: dict[str, str],
    groups: dict[tuple[str, str, str], _Group],
) -> None:
    """A student's class (from a placement's class_name) and their study groups."""
    for placement in person.placements:
        if placement.class_name and placement.school_unit_code in schools:
            group = _gather(groups, placement.school_unit_code, "Klass", placement.class_name)
            group.students.add(uuid)
            group.school_type = group.school_type or placement.school_type
    for study in _study_groups(person, "student", schools):
        group = _gather(groups, study.school_unit_code, study.type, study.name)
        group.students.add(uuid)
        group.school_type = group.school_type or _school_type(person, study.school_unit_code)


def _taught_groups(
    person: Person,
    uuid: str,
    schools: dict[str, str],
    groups: dict[tuple[str, str, str], _Group],
) -> None:
    for study in _study_groups(person, "teacher", schools):
        _gather(groups, study.school_unit_code, study.type, study.name).teachers.add(uuid)


def _study_groups(person: Person, role: str, schools: dict[str, str]) -> list[StudyGroup]:
    return [
        g
        for g in person.study_groups
        if g.role == role and g.school_unit_code in schools and g.name.strip()
    ]


def _gather(
    groups: dict[tuple[str, str, str], _Group], code: str, group_type: str, name: str
) -> _Group:
    key = (code, group_type, name.strip())
    if key not in groups:
        groups[key] = _Group(code, group_type, name.strip())
    return groups[key]


def _school_type(person: Person, code: str) -> str | None:
    return next(
        (p.school_type for p in person.placements if p.school_unit_code == code and p.school_type),
        None,
    )
