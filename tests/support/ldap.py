"""A directory as a source: the connector's config for a test slapd (tests/fakes/slapd.py), and
staff entries to put in it."""

from __future__ import annotations

from typing import Any

from tests.fakes.slapd import Slapd

SCHOOL = "11111111"


def directory_source(slapd: Slapd, **overrides: Any) -> dict[str, Any]:
    """A staff source reading ou=people by paged search (3 a page), marking assumed absent."""
    source: dict[str, Any] = {
        "name": "directory",
        "type": "ldap",
        "kind": "staff",
        "servers": [slapd.url],
        "bind_dn": slapd.service_dn,
        "password": slapd.service_password,
        "base_dns": [f"ou=people,{slapd.suffix}"],
        "filter": "(objectClass=inetOrgPerson)",
        "page_size": 3,
        "timeout_seconds": 5,
        "attributes": {
            "key": "entryUUID",
            "given_name": "givenName",
            "family_name": "sn",
            "email": "mail",
            "username": "uid",
            "school_unit_codes": "departmentNumber",
            "role": "title",
        },
        "protected_identity": {"assume_not_protected": True},
        "required": ["given_name", "family_name", "email"],
    }
    source.update(overrides)
    return source


def add_staff(slapd: Slapd, count: int, school: str = SCHOOL) -> list[str]:
    """`count` teachers at `school` (uid staff0, staff1, ...); their DNs."""
    return [
        slapd.add_person(
            f"staff{i}",
            f"Lärare{i}",
            f"Åkesson{i}",
            mail=f"staff{i}@edu.example.se",
            departmentNumber=[school],
            title="Lärare",
        )
        for i in range(count)
    ]
