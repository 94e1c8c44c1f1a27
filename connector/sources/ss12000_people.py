"""The SS 12000 objects of one read (organisations, persons, duties, class groups), as the
neutral model: school units, and persons placed by their current enrolments or duties."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connector.config import Ss12000SourceConfig
from connector.people.emails import normalize_email
from connector.people.model import (
    Kind,
    Modified,
    Person,
    Placement,
    School,
    SourceIssue,
    SourceRead,
    unsafe_text,
)

SWEDEN = ZoneInfo("Europe/Stockholm")

Objects = dict[str, dict[str, dict[str, Any]]]  # kind -> id -> object


def reference(item: dict[str, Any], name: str) -> dict[str, Any]:
    """The object a reference field holds (`person`, `dutyAt`, ...), or an empty one."""
    value = item.get(name)
    return value if isinstance(value, dict) else {}


def modified_at(item: dict[str, Any]) -> float | None:
    """An object's meta.modified as Unix time (a time without a zone is UTC), if it has one."""
    stamp = reference(item, "meta").get("modified")
    if not stamp:
        return None
    try:
        when = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _later(first: float | None, second: float | None) -> float | None:
    return second if first is None or (second is not None and second > first) else first


def _duty_times(objects: Objects) -> dict[str, float]:
    """Person id -> when their duties last changed (a new duty moves a teacher)."""
    times: dict[str, float] = {}
    for duty in objects["duties"].values():
        person_id = str(reference(duty, "person").get("id"))
        when = _later(times.get(person_id), modified_at(duty))
        if when is not None:
            times[person_id] = when
    return times


def current(item: dict[str, Any], today: date) -> bool:
    """Inclusive of both dates, by the Swedish calendar; a missing end date is open."""
    try:
        start = date.fromisoformat(str(item["startDate"])) if item.get("startDate") else None
        end = date.fromisoformat(str(item["endDate"])) if item.get("endDate") else None
    except ValueError:
        return False
    return (start is None or start <= today) and (end is None or today <= end)


class PeopleBuilder:
    def __init__(self, config: Ss12000SourceConfig) -> None:
        self.config = config
        self.name = config.name
        self._school_types = {t.casefold() for t in config.school_types}
        self._duty_roles = {r.casefold() for r in config.duty_roles}

    def build(self, objects: Objects, protected: list[dict[str, Any]]) -> SourceRead:
        result = SourceRead(source=self.name)
        today = datetime.now(SWEDEN).date()
        units = self._school_units(objects, result)
        result.schools = list(units.values())
        classes = _classes(objects, units, today) if self.config.classes else {}
        duties = self._duties(objects, units, today)
        duty_times = _duty_times(objects)
        for person in protected:
            result.rows_read += 1
            # Only what is needed to find an account made before the marking: key and kind.
            kind = Kind.STAFF if person.get("_staff") else Kind.STUDENT
            result.persons.append(Person(str(person["id"]), kind, "", "", None, None, True))
        for person_id, person in objects["persons"].items():
            result.rows_read += 1
            placements = duties.get(person_id, [])
            kind = Kind.STAFF if placements else Kind.STUDENT
            placements = placements or self._enrolments(person_id, person, units, today, classes)
            if not placements:
                continue  # no current enrolment or duty in scope: not (or no longer) here
            when = _later(modified_at(person), duty_times.get(person_id))
            modified = Modified(self.name, when) if when is not None else None
            try:
                result.persons.append(self._person(person_id, person, kind, placements, modified))
            except ValueError as exc:
                result.issues.append(SourceIssue(self.name, f"Person {person_id}", str(exc)))
                result.unreadable_keys.add(person_id)
        return result

    def _school_units(self, objects: Objects, result: SourceRead) -> dict[str, School]:
        """Organisation id -> school unit, for the organisations that are school units."""
        units: dict[str, School] = {}
        for org_id, org in objects["organisations"].items():
            code = str(org.get("schoolUnitCode") or "")
            if org.get("organisationType") != "Skolenhet" or not code:
                continue
            types = tuple(str(t) for t in org.get("schoolTypes") or [])
            name = str(org.get("displayName") or code)
            reason = unsafe_text(name)
            if reason is not None:  # its people are still there: only the name is not sent
                why = f"displayName {reason}; the school unit is named by its code"
                result.issues.append(SourceIssue(self.name, f"Organisation {org_id}", why))
                name = code
            units[org_id] = School(code=code, name=name, school_types=types)
        return units

    def _duties(
        self, objects: Objects, units: dict[str, School], today: date
    ) -> dict[str, list[Placement]]:
        """Person id -> their current duties (with a role in scope) at school units."""
        duties_by_person: dict[str, list[Placement]] = {}
        for duty in objects["duties"].values():
            role = str(duty.get("dutyRole") or "")
            unit = units.get(str(reference(duty, "dutyAt").get("id")))
            if unit is None or not current(duty, today):
                continue
            if self._duty_roles and role.casefold() not in self._duty_roles:
                continue
            person_id = str(reference(duty, "person").get("id"))
            duties_by_person.setdefault(person_id, []).append(
                Placement(unit.code, role=role or None)
            )
        return duties_by_person

    def _enrolments(
        self,
        person_id: str,
        person: dict[str, Any],
        units: dict[str, School],
        today: date,
        classes: dict[tuple[str, str], str],
    ) -> list[Placement]:
        """A student's current enrolments at school units, of school types in scope."""
        enrolments = []
        for enrolment in person.get("enrolments") or []:
            if (
                not isinstance(enrolment, dict)
                or enrolment.get("cancelled")
                or not current(enrolment, today)
            ):
                continue
            unit = units.get(str(reference(enrolment, "enroledAt").get("id")))
            school_type = str(enrolment.get("schoolType") or "")
            if unit is None or (
                self._school_types and school_type.casefold() not in self._school_types
            ):
                continue
            year = enrolment.get("schoolYear")
            enrolments.append(
                Placement(
                    unit.code,
                    school_type=school_type or None,
                    school_year=None if year is None else str(year),
                    class_name=classes.get((person_id, unit.code)),
                )
            )
        return enrolments

    def _person(
        self,
        person_id: str,
        person: dict[str, Any],
        kind: Kind,
        placements: list[Placement],
        modified: Modified | None = None,
    ) -> Person:
        config = self.config
        given = str(person.get("givenName") or "").strip()
        family = str(person.get("familyName") or "").strip()
        if not given or not family:
            raise ValueError("givenName or familyName is missing")
        email_type = config.staff_email_type if kind is Kind.STAFF else config.student_email_type
        email = next(
            (
                str(e.get("value"))
                for e in person.get("emails") or []
                if isinstance(e, dict) and e.get("type") == email_type
            ),
            None,
        )
        eppns = person.get("eduPersonPrincipalNames") or []
        username = str(eppns[0]) if config.username == "eppn" and eppns else None
        _refuse_unsafe(given, family, email, username, placements)
        if email is not None:
            try:
                email = normalize_email(email)
            except ValueError:
                raise ValueError(f"the {email_type} e-mail address is not valid") from None
        civic = reference(person, "civicNo").get("value")
        return Person(
            source_key=person_id,
            kind=kind,
            given_name=given,
            family_name=family,
            email=email,
            username=username,
            protected=False,
            placements=tuple(dict.fromkeys(placements)),
            join_key=str(civic) if config.join_key == "civicNo" and civic else None,
            modified=modified,
        )


def _classes(objects: Objects, units: dict[str, School], today: date) -> dict[tuple[str, str], str]:
    """(person id, school unit code) -> the name of their current class there."""
    classes: dict[tuple[str, str], str] = {}
    for group in objects.get("groups", {}).values():
        unit = units.get(str(reference(group, "organisation").get("id")))
        if unit is None or not group.get("displayName") or group.get("groupType") != "Klass":
            continue  # teaching groups too are read with study_groups
        for member in group.get("groupMemberships") or []:
            dates = {"startDate": member.get("startDate"), "endDate": member.get("endDate")}
            if current(dates, today):
                person_id = str(reference(member, "person").get("id"))
                classes[(person_id, unit.code)] = str(group["displayName"])
    return classes


def _refuse_unsafe(
    given: str,
    family: str,
    email: str | None,
    username: str | None,
    placements: list[Placement],
) -> None:
    """The text-safety rule for what is sent of a person: a value that fails it is reported
    (by name, never by value) and the person held."""
    values = [("givenName", given), ("familyName", family), ("email", email)]
    values.append(("eduPersonPrincipalName", username))
    values += [("class name", p.class_name) for p in placements]
    values += [("dutyRole", p.role) for p in placements]
    for name, value in values:
        reason = unsafe_text(value) if value else None
        if reason is not None:
            raise ValueError(f"{name} {reason}")
