"""An EGIL object as it is sent: the flat attributes the plan keeps (objects.py), with each
reference written `{"value": <uuid>, "$ref": "<base>/<Endpoint>/<uuid>"}`, the schemas the
profile names, and the enrolments under the SS 12000 User extension. Pure."""

from __future__ import annotations

from typing import Any

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
# Attribute -> the endpoint its UUID (or each of its UUIDs) points at.
REFERENCES: dict[str, dict[str, str]] = {
    SCHOOL_UNITS: {"organisation": ORGANISATIONS, "schoolUnitGroup": SCHOOL_UNIT_GROUPS},
    EMPLOYMENTS: {"employedAt": SCHOOL_UNITS, "user": TEACHERS},
    STUDENT_GROUPS: {"owner": SCHOOL_UNITS},
    ACTIVITIES: {"owner": SCHOOL_UNITS, "groups": STUDENT_GROUPS, "teachers": EMPLOYMENTS},
}
# What the plan keeps for itself and never sends.
BOOKKEEPING = frozenset({RESOURCE, "active"})


def reference(base_url: str, resource: str, uuid: str) -> dict[str, str]:
    return {"value": uuid, "$ref": f"{base_url}/{resource}/{uuid}"}


def render(
    base_url: str, uuid: str, attributes: dict[str, Any], members: set[str] | None = None
) -> dict[str, Any]:
    """The JSON body of a POST or PUT of one object."""
    resource = str(attributes[RESOURCE])
    body: dict[str, Any] = {"schemas": SCHEMAS[resource], "externalId": uuid}
    refs = REFERENCES.get(resource, {})
    for name, value in attributes.items():
        if name in BOOKKEEPING or value is None:
            continue
        if name == "enrolments":
            body[USER_EXTENSION] = {
                "enrolments": [
                    {**e, **reference(base_url, SCHOOL_UNITS, e["value"])} for e in value
                ]
            }
        elif name in refs and isinstance(value, list):
            body[name] = [reference(base_url, refs[name], v) for v in value]
        elif name in refs:
            body[name] = reference(base_url, refs[name], str(value))
        else:
            body[name] = value
    if resource == STUDENT_GROUPS:
        body["studentMemberships"] = [
            reference(base_url, STUDENTS, m) for m in sorted(members or ())
        ]
    if resource in USER_RESOURCES and USER_EXTENSION not in body:
        body[USER_EXTENSION] = {"enrolments": []}
    return body
