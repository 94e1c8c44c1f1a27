"""The mapping's multi-valued attributes the connector owns value by value: the role values
people are granted (`roles:` in the config, resolved in people/roles.py) and products or
licences by school form. Each is sent as SCIM `roles` or `entitlements` values with `value`,
`display` and (for roles) `type`; the plan adds and removes only the values it granted.

```yaml
roles:
  attribute: roles            # or entitlements; leave the section out to send no roles
entitlements:
  attribute: entitlements     # or roles
  by_school_type:             # a person placed at a school of this form gets these
    GR: [Begreppa, Inläsningstjänst]
    GY: [Inläsningstjänst]
```
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from connector.people.model import Person, School, unsafe_text
from connector.planning.objects import value_key

ValuePath = Literal["roles", "entitlements"]
# A value and why it is granted (for `explain`; never sent).
Explained = tuple[dict[str, Any], tuple[str, ...]]


class RolesSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attribute: ValuePath = "roles"


class EntitlementsSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attribute: ValuePath = "entitlements"
    by_school_type: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("by_school_type")
    @classmethod
    def _safe(cls, products: dict[str, list[str]]) -> dict[str, list[str]]:
        for school_type, names in products.items():
            for name in names:
                reason = unsafe_text(name) if name.strip() else "is empty"
                if reason is not None:
                    raise ValueError(f"{school_type}: {name!r} {reason}")
        return products


class ValueMapping:
    def __init__(self, roles: RolesSection | None, entitlements: EntitlementsSection | None):
        self.roles = roles
        self.entitlements = entitlements
        self.products = {
            t.casefold(): names
            for t, names in (entitlements.by_school_type if entitlements else {}).items()
        }

    def __bool__(self) -> bool:
        return self.roles is not None or bool(self.products)

    def explained(
        self, person: Person, schools: dict[str, School] | None
    ) -> dict[str, list[Explained]]:
        """Path -> the person's values there, each with why, sorted by value and type."""
        found: dict[str, dict[tuple[str, str], Explained]] = {}

        def add(path: str, value: dict[str, Any], reason: str) -> None:
            seen = found.setdefault(path, {}).get(value_key(value))
            reasons = (reason,) if not seen else seen[1] + (() if reason in seen[1] else (reason,))
            found[path][value_key(value)] = (seen[0] if seen else value, reasons)

        if self.roles is not None:
            for grant in person.grants:
                value = {"value": grant.value, "display": grant.display, "type": grant.type}
                for reason in grant.reasons:
                    add(self.roles.attribute, value, reason)
        if self.entitlements is not None and self.products:
            for placement in person.placements:
                school = (schools or {}).get(placement.school_unit_code)
                types = (placement.school_type,) if placement.school_type else ()
                for school_type in types or (school.school_types if school else ()):
                    for name in self.products.get(school_type.casefold(), ()):
                        value = {"value": name, "display": name}
                        add(self.entitlements.attribute, value, f"school form {school_type}")
        return {path: [by_key[k] for k in sorted(by_key)] for path, by_key in found.items()}

    def attributes(self, person: Person, schools: dict[str, School] | None) -> dict[str, Any]:
        """Path -> the values to grant; a path with none is left out (nothing to grant)."""
        return {
            path: [value for value, _ in values]
            for path, values in self.explained(person, schools).items()
        }
