"""Between the connector's flat attributes ({"name.givenName": "Åsa"}) and SCIM payloads.

Payloads are checked against the SCIM schema with scim2-models; a value the schema refuses
fails that one object with a clear message instead of reaching the vendor. A first sync
creates 100,000+ users, and full validation cost about as much CPU as sending the request
(importing scim2-models alone takes half a second), so the common payload - free-text
attributes, e-mail addresses, `active`, `externalId`, member ids - is built directly, its
e-mail addresses checked by `connector.people.emails`; any other value goes through scim2-models.
tests/unit/test_payloads.py holds the direct payloads equal to what scim2-models makes, and
scim2-models to the free-text list.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import ValidationError

from connector.mapping.paths import FREE_TEXT_GROUP_PATHS, FREE_TEXT_USER_PATHS
from connector.people.emails import normalize_email

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


class PayloadError(ValueError):
    """The desired attributes do not make a valid SCIM resource."""


def _describe(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return f"{where}: {first['msg']}"


def unflatten(attributes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in attributes.items():
        if value is None:
            continue
        head, _, tail = path.partition(".")
        if tail:
            out.setdefault(head, {})[tail] = value
        else:
            out[head] = value
    return out


def flatten(resource: dict[str, Any], paths: frozenset[str] | set[str]) -> dict[str, Any]:
    """The values of `paths` in a vendor resource; missing values are left out."""
    out: dict[str, Any] = {}
    for path in paths:
        head, _, tail = path.partition(".")
        value = resource.get(head)
        if tail:
            value = value.get(tail) if isinstance(value, dict) else None
        if value is not None:
            out[path] = value
    return out


def same_value(path: str, desired: Any, actual: Any) -> bool:
    """Compare as a vendor would: userName and e-mail addresses are case-insensitive."""
    if path == "emails" and isinstance(desired, list) and isinstance(actual, list):

        def key(items: list[Any]) -> list[tuple[str, Any]]:
            return sorted(
                (str(e.get("value", "")).casefold(), e.get("type"))
                for e in items
                if isinstance(e, dict)
            )

        return key(desired) == key(actual)
    if path == "userName" and isinstance(desired, str) and isinstance(actual, str):
        return desired.casefold() == actual.casefold()
    return bool(desired == actual)


def _valid_email_entry(entry: Any) -> bool:
    if not isinstance(entry, dict) or set(entry) - {"value", "type", "primary"}:
        return False
    if not isinstance(entry.get("type", ""), str) or not isinstance(entry.get("primary"), bool):
        return False
    try:
        normalize_email(entry["value"])
    except (KeyError, TypeError, ValueError):
        return False
    return True


def _plain(resource_type: str, attributes: dict[str, Any]) -> bool:
    """Whether every value is one the schema cannot refuse (see the module's docstring);
    None (a value to remove) counts as plain, except for the one required attribute."""
    free_text = FREE_TEXT_USER_PATHS if resource_type == "Users" else FREE_TEXT_GROUP_PATHS
    required = "userName" if resource_type == "Users" else "displayName"
    for path, value in attributes.items():
        if (value is None and path != required) or (path in free_text and isinstance(value, str)):
            continue
        if resource_type == "Users" and path == "active" and isinstance(value, bool):
            continue
        if (
            resource_type == "Users"
            and path == "emails"
            and isinstance(value, list)
            and all(map(_valid_email_entry, value))
        ):
            continue
        return False
    return True


def _model(resource_type: str) -> Any:
    # Imported when first needed: most runs never need it (see the module's docstring).
    from scim2_models import Group, User

    return User if resource_type == "Users" else Group


def _validated(resource_type: str, data: dict[str, Any]) -> dict[str, Any]:
    from scim2_models import Context

    try:
        resource = _model(resource_type).model_validate(
            data, scim_ctx=Context.RESOURCE_CREATION_REQUEST
        )
    except ValidationError as exc:
        raise PayloadError(_describe(exc)) from None
    return dict(resource.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST))


def user_payload(attributes: dict[str, Any]) -> dict[str, Any]:
    data = {"schemas": [USER_SCHEMA], **unflatten(attributes)}
    if attributes.get("userName") and _plain("Users", attributes):
        return data
    return _validated("Users", data)


def group_payload(attributes: dict[str, Any]) -> dict[str, Any]:
    data = {"schemas": [GROUP_SCHEMA], **unflatten(attributes)}
    if attributes.get("displayName") and _plain("Groups", attributes):
        return data
    return _validated("Groups", data)


def attributes_patch(resource_type: str, changes: dict[str, Any]) -> dict[str, Any]:
    """PATCH `replace` for each changed path, `remove` for each value no longer wanted."""
    operations = [
        {"op": "remove", "path": path}
        if value is None
        else {"op": "replace", "path": path, "value": value}
        for path, value in sorted(changes.items())
    ]
    if _plain(resource_type, changes):
        return {"schemas": [PATCH_SCHEMA], "Operations": operations}
    from scim2_models import Context, PatchOp

    model = _model(resource_type)
    try:
        patch = PatchOp[model].model_validate({"Operations": operations})  # type: ignore[valid-type]
    except ValidationError as exc:
        raise PayloadError(_describe(exc)) from None
    return dict(patch.model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST))


def members_patch(*, add: list[str] = (), remove: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Add these members, remove those (by vendor id; RFC 7644 section 3.5.2)."""
    operations: list[dict[str, Any]] = []
    if add:
        operations.append({"op": "add", "path": "members", "value": [{"value": i} for i in add]})
    for vendor_id in remove:
        operations.append(
            {"op": "remove", "path": f"members[value eq {quote_filter_value(vendor_id)}]"}
        )
    return {"schemas": [PATCH_SCHEMA], "Operations": operations}


def replaced_resource(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """For servers without PATCH: the resource as the server has it, with only `changes` applied."""
    updated = copy.deepcopy(current)
    updated.pop("meta", None)
    for path, value in changes.items():
        head, _, tail = path.partition(".")
        if tail:
            parent = updated.get(head)
            if not isinstance(parent, dict):
                parent = updated[head] = {}
            if value is None:
                parent.pop(tail, None)
            else:
                parent[tail] = value
        elif value is None:
            updated.pop(head, None)
        else:
            updated[head] = value
    return updated


def quote_filter_value(value: str) -> str:
    """A SCIM filter string literal (RFC 7644 section 3.4.2.2 uses JSON string syntax)."""
    return json.dumps(value, ensure_ascii=False)
