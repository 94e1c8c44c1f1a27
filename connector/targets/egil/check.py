"""`connector check` for an EGIL server: can it be reached, and which resource types it
lists (GET /ResourceTypes, where it offers it: GET is optional at EGIL servers)."""

from __future__ import annotations

from connector.config import EgilTargetConfig
from connector.targets.base import CheckReport
from connector.targets.egil.objects import (
    ACTIVITIES,
    EMPLOYMENTS,
    ORGANISATIONS,
    SCHOOL_UNIT_GROUPS,
    SCHOOL_UNITS,
    SEND_ORDER,
    STUDENT_GROUPS,
    STUDENTS,
    TEACHERS,
)
from connector.targets.egil.wire import endpoints_of
from connector.targets.scim.transport import ScimError, Transport
from connector.targets.tls import proven_by_connecting

_HINTS = {401: " (is the token right?)", 403: " (is the token or API key right?)"}
# What each kind of object is called in EGIL.
NAMES = {
    ORGANISATIONS: "Organisation",
    SCHOOL_UNIT_GROUPS: "SchoolUnitGroup",
    SCHOOL_UNITS: "SchoolUnit",
    STUDENTS: "Student",
    TEACHERS: "Teacher",
    EMPLOYMENTS: "Employment",
    STUDENT_GROUPS: "StudentGroup",
    ACTIVITIES: "Activity",
}


def check_egil(
    config: EgilTargetConfig, transport: Transport, linked: tuple[int, int]
) -> CheckReport:
    report = CheckReport()
    where = f"egil {config.name} ({config.base_url})"
    try:
        response = transport.request("GET", "/ResourceTypes", expect=(200, 404, 405, 501))
    except ScimError as exc:
        report.lines.append(("FAIL", f"{where}: {exc}{_HINTS.get(exc.status or 0, '')}"))
        return report
    report.lines.append(("ok", f"{where}: {proven_by_connecting(config.tls)}"))
    if response.status_code != 200:
        report.lines.append(
            ("ok", f"{where}: reached; it does not list its resource types (GET is optional)")
        )
    else:
        listed = _endpoints(response.json())
        configured = endpoints_of(config.endpoints)
        found = [k for k in SEND_ORDER if configured[k] in listed]
        missing = [k for k in SEND_ORDER if configured[k] not in listed]
        shown = ", ".join(f"{NAMES[k]} at /{configured[k]}" for k in found)
        report.lines.append(("ok", f"{where}: resource types {shown or 'none'}"))
        if missing:
            names = ", ".join(f"{NAMES[k]} (/{configured[k]})" for k in missing)
            report.lines.append(
                ("FAIL", f"{where}: the server lists no endpoint for {names}; see endpoints:")
            )
    report.lines.append(
        ("", f"{linked[0]} users and {linked[1]} other objects linked in the state file")
    )
    return report


def _endpoints(body: object) -> set[str]:
    """The endpoints a /ResourceTypes answer names (a ListResponse, or a bare list)."""
    resources = body.get("Resources") if isinstance(body, dict) else body
    found = set()
    for resource in resources if isinstance(resources, list) else []:
        if isinstance(resource, dict) and isinstance(resource.get("endpoint"), str):
            found.add(resource["endpoint"].strip("/"))
    return found
