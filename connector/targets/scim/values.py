"""Granting and revoking single values of `roles` and `entitlements` (the values the connector
owns, see planning/objects.VALUE_PATHS): a PATCH `add` of each value, a PATCH `remove` with a
filter path naming exactly that value (`roles[value eq "admin" and type eq "12345678"]`).
A vendor without PATCH gets a read-modify-replace of the user that keeps every other value as
it was - at the version read (If-Match, read again on 412) - and is checked before it counts.
A value at the vendor that the connector did not grant is never named, so never touched.
"""

from __future__ import annotations

from typing import Any

from connector.planning.objects import value_key, values_of
from connector.planning.plan import Operation
from connector.targets.scim.client import ScimError
from connector.targets.scim.outcome import Outcome, version_of
from connector.targets.scim.resources import (
    PATCH_SCHEMA,
    quote_filter_value,
    replaced_resource,
)
from connector.targets.scim.writes import REPLACE_ATTEMPTS, WritesMixin

Values = dict[str, list[dict[str, Any]]]


def value_filter(path: str, value: dict[str, Any]) -> str:
    """A PATCH path naming exactly this one value (RFC 7644 section 3.5.2.2)."""
    named = f"value eq {quote_filter_value(str(value.get('value', '')))}"
    if value.get("type"):
        return f"{path}[{named} and type eq {quote_filter_value(str(value['type']))}]"
    return f"{path}[{named} and not (type pr)]"


def values_patch(*, add: Values | None = None, remove: Values | None = None) -> dict[str, Any]:
    """PATCH `add` of each value, `remove` of each by a filter on its value and type."""
    operations: list[dict[str, Any]] = []
    for path, values in sorted((add or {}).items()):
        operations += [{"op": "add", "path": path, "value": [value]} for value in values]
    for path, values in sorted((remove or {}).items()):
        operations += [{"op": "remove", "path": value_filter(path, value)} for value in values]
    return {"schemas": [PATCH_SCHEMA], "Operations": operations}


def changed_values(current: dict[str, Any], add: Values, remove: Values) -> dict[str, Any]:
    """A user's multi-valued attributes with these values added and removed, every other
    value as the vendor has it (None: no value left)."""
    changes: dict[str, Any] = {}
    for path in sorted(add.keys() | remove.keys()):
        gone = {value_key(v) for v in remove.get(path, [])}
        values = [v for v in values_of(current, path) if value_key(v) not in gone]
        present = {value_key(v) for v in values}
        values += [v for v in add.get(path, []) if value_key(v) not in present]
        changes[path] = values or None
    return changes


class ValuesMixin(WritesMixin):
    """The Applier's handlers for owned values."""

    def _grant_values(self, op: Operation) -> Outcome:
        version = self._change_values(op, add=op.attributes, remove={})
        return Outcome(op, "granted", op.vendor_id, op.attributes, version=version)

    def _revoke_values(self, op: Operation) -> Outcome:
        version = self._change_values(op, add={}, remove=op.attributes)
        return Outcome(op, "revoked", op.vendor_id, op.attributes, version=version)

    def _change_values(self, op: Operation, *, add: Values, remove: Values) -> str | None:
        assert op.vendor_id is not None
        with self._one_writer("Users", op.vendor_id):
            if self.client.features().patch:
                payload = values_patch(add=add, remove=remove)
                return self.client.patch("Users", op.vendor_id, payload)
            return self._replace_values(op.vendor_id, add, remove)

    def _replace_values(self, vendor_id: str, add: Values, remove: Values) -> str | None:
        """No PATCH: read the user, change only these values, put back everything else."""
        etag = self.client.features().etag
        for attempt in range(1, REPLACE_ATTEMPTS + 1):
            current = self.client.get("Users", vendor_id)
            try:
                replaced = self.client.replace(
                    "Users",
                    vendor_id,
                    replaced_resource(current, changed_values(current, add, remove)),
                    if_match=version_of(current) if etag else None,
                )
            except ScimError as exc:
                if exc.status != 412 or attempt == REPLACE_ATTEMPTS:
                    raise
                continue  # changed since we read it: read again
            for path in add.keys() | remove.keys():
                held = {value_key(v) for v in values_of(replaced, path)}
                wanted = {value_key(v) for v in add.get(path, [])}
                unwanted = {value_key(v) for v in remove.get(path, [])}
                if not wanted <= held or held & unwanted:
                    raise ScimError(
                        "PUT",
                        "/Users/{id}",
                        200,
                        f"the user the vendor answered with does not hold the {path} sent",
                    )
            return version_of(replaced)
        return None  # not reached: the last attempt returns or raises
