"""An EGIL object as it is sent: the flat attributes the plan keeps (objects.py), with each
reference written `{"value": <uuid>, "$ref": "<base>/<endpoint>/<uuid>"}`, the schemas the
profile names, and the enrolments under the SS 12000 User extension. Each kind of object is at
the endpoint the target's `endpoints:` names (windermere's by default: students and teachers
both at /Users). Pure."""

from __future__ import annotations

from typing import Any

from connector.config import EgilEndpointsConfig
from connector.targets.egil.objects import (
    ACTIVITIES,
    EMPLOYMENTS,
    ORGANISATIONS,
    RESOURCE,
    SCHOOL_UNIT_GROUPS,
    SCHOOL_UNITS,
    STUDENT_GROUPS,
    STUDENTS,
    TEACHERS,
    USER_RESOURCES,
)

SIS = "urn:scim:schemas:extension:sis:school:1.0"
USER_EXTENSION = f"{SIS}:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SCHEMAS = {
    ORGANISATIONS: [f"{SIS}:Organisation"],
    SCHOOL_UNIT_GROUPS: [f"{SIS}:SchoolUnitGroup"],
    SCHOOL_UNITS: [f"{SIS}:SchoolUnit"],
    STUDENTS: [CORE_USER, USER_EXTENSION],
    TEACHERS: [CORE_USER, USER_EXTENSION],
    EMPLOYMENTS: [f"{SIS}:Employment"],
    STUDENT_GROUPS: [f"{SIS}:StudentGroup"],
    ACTIVITIES: [f"{SIS}:Activity"],
}
# Attribute -> the kind of object its UUID (or each of its UUIDs) points at.
REFERENCES: dict[str, dict[str, str]] = {
    SCHOOL_UNITS: {"organisation": ORGANISATIONS, "schoolUnitGroup": SCHOOL_UNIT_GROUPS},
    EMPLOYMENTS: {"employedAt": SCHOOL_UNITS, "user": TEACHERS},
    STUDENT_GROUPS: {"owner": SCHOOL_UNITS},
    ACTIVITIES: {"owner": SCHOOL_UNITS, "groups": STUDENT_GROUPS, "teachers": EMPLOYMENTS},
}
# What the plan keeps for itself and never sends.
BOOKKEEPING = frozenset({RESOURCE, "active"})


def endpoints_of(config: EgilEndpointsConfig) -> dict[str, str]:
    """Each kind of object's endpoint, by its kind (objects.py's names)."""
    return {
        ORGANISATIONS: config.organisations,
        SCHOOL_UNIT_GROUPS: config.school_unit_groups,
        SCHOOL_UNITS: config.school_units,
        STUDENTS: config.students,
        TEACHERS: config.teachers,
        EMPLOYMENTS: config.employments,
        STUDENT_GROUPS: config.student_groups,
        ACTIVITIES: config.activities,
    }


class Wire:
    """How objects are written for one server: its base URL and its endpoints."""

    def __init__(self, base_url: str, endpoints: EgilEndpointsConfig | None = None) -> None:
        self.base_url = base_url
        self.endpoints = endpoints_of(endpoints or EgilEndpointsConfig())

    def path(self, kind: str, uuid: str | None = None) -> str:
        """The path of a kind's endpoint (with `uuid`: of that object), after base_url."""
        endpoint = self.endpoints[kind]
        return f"/{endpoint}/{uuid}" if uuid else f"/{endpoint}"

    def reference(self, kind: str, uuid: str) -> dict[str, str]:
        return {"value": uuid, "$ref": f"{self.base_url}{self.path(kind, uuid)}"}

    def render(
        self, uuid: str, attributes: dict[str, Any], members: set[str] | None = None
    ) -> dict[str, Any]:
        """The JSON body of a POST or PUT of one object."""
        kind = str(attributes[RESOURCE])
        body: dict[str, Any] = {"schemas": SCHEMAS[kind], "externalId": uuid}
        refs = REFERENCES.get(kind, {})
        for name, value in attributes.items():
            if name in BOOKKEEPING or value is None:
                continue
            if name == "enrolments":
                body[USER_EXTENSION] = {
                    "enrolments": [{**e, **self.reference(SCHOOL_UNITS, e["value"])} for e in value]
                }
            elif name in refs and isinstance(value, list):
                body[name] = [self.reference(refs[name], v) for v in value]
            elif name in refs:
                body[name] = self.reference(refs[name], str(value))
            else:
                body[name] = value
        if kind == STUDENT_GROUPS:
            body["studentMemberships"] = [
                self.reference(STUDENTS, m) for m in sorted(members or ())
            ]
        if kind in USER_RESOURCES and USER_EXTENSION not in body:
            body[USER_EXTENSION] = {"enrolments": []}
        return body
