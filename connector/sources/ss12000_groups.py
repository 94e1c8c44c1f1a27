"""Study groups from SS 12000: a student's current memberships of teaching groups (groupType
Undervisning), and the groups each teacher teaches, from activities (`teachers`: duties,
`groups`: the groups taught). A group is at the school unit that owns it (`organisation`).

Protected persons' memberships and duties are gone before this runs (see ss12000.py), so they
appear in no group, and nothing here counts a group's members."""

from __future__ import annotations

from datetime import date
from typing import Any

from connector.people.model import School, StudyGroup, unsafe_text
from connector.sources.ss12000_people import Objects, reference
from connector.sources.ss12000_people import current as _current

TYPES = ("Klass", "Undervisning")


def _reference_id(item: dict[str, Any], name: str) -> str:
    return str(reference(item, name).get("id"))


def study_groups(
    objects: Objects, units: dict[str, School], today: date
) -> tuple[dict[str, list[StudyGroup]], list[tuple[str, str]]]:
    """Person id -> their study groups (students: teaching groups they are in; teachers: the
    groups of their activities), and the groups left out as (where, why): a name that fails
    the text-safety rule."""
    groups, refused = _groups(objects, units, today)
    by_person: dict[str, list[StudyGroup]] = {}
    for group_id, group in groups.items():
        if group.type != "Undervisning":
            continue  # a student's class is their placement's class_name (see `classes`)
        for member in objects["groups"][group_id].get("groupMemberships") or []:
            if isinstance(member, dict) and _current(member, today):
                by_person.setdefault(_reference_id(member, "person"), []).append(group)
    duties = objects["duties"]
    for activity in objects.get("activities", {}).values():
        if not _current(activity, today):
            continue
        taught = [groups[g] for g in _group_ids(activity) if g in groups]
        for teacher in activity.get("teachers") or []:
            if not isinstance(teacher, dict) or not _current(teacher, today):
                continue
            duty = duties.get(_reference_id(teacher, "duty"))
            if duty is None or not _current(duty, today):
                continue
            for group in taught:
                by_person.setdefault(_reference_id(duty, "person"), []).append(
                    StudyGroup(group.school_unit_code, group.name, group.type, "teacher")
                )
    return by_person, refused


def _group_ids(activity: dict[str, Any]) -> list[str]:
    return [str(g.get("id")) for g in activity.get("groups") or [] if isinstance(g, dict)]


def _groups(
    objects: Objects, units: dict[str, School], today: date
) -> tuple[dict[str, StudyGroup], list[tuple[str, str]]]:
    """Group id -> the group as a student's, for current Klass and Undervisning groups owned
    by a school unit."""
    found: dict[str, StudyGroup] = {}
    refused: list[tuple[str, str]] = []
    for group_id, group in objects["groups"].items():
        kind = group.get("groupType")
        unit = units.get(_reference_id(group, "organisation"))
        name = str(group.get("displayName") or "").strip()
        if kind not in TYPES or unit is None or not name or not _current(group, today):
            continue
        reason = unsafe_text(name)
        if reason is not None:
            refused.append((f"Group {group_id}", f"displayName {reason}; the group is left out"))
            continue
        found[group_id] = StudyGroup(unit.code, name, kind, "student")
    return found, refused
