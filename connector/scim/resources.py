"""Between the connector's flat attributes ({"name.givenName": "Åsa"}) and SCIM payloads.

Payloads are checked against the SCIM schema with scim2-models; a value the schema refuses
fails that one object with a clear message instead of reaching the vendor. A first sync
creates 100,000+ users, and full validation cost about as much CPU as sending the request, so
the common User - free-text attributes, e-mail addresses, `active`, `externalId` - is built
directly, its e-mail addresses checked by `connector.emails`; every other User goes through
scim2-models. tests/unit/test_payloads.py holds scim2-models to the free-text list.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import ValidationError
from scim2_models import Context, Group, PatchOp, PatchOperation, User

from connector.emails import normalize_email

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"


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


# User attributes that scim2-models types as free text: any string is a valid value.
FREE_TEXT_USER_PATHS = frozenset(
    {
        "externalId",
        "userName",
        "displayName",
        "nickName",
        "title",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "name.formatted",
        "name.familyName",
        "name.givenName",
        "name.middleName",
        "name.honorificPrefix",
        "name.honorificSuffix",
    }
)


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


def _plain_user(attributes: dict[str, Any]) -> bool:
    """Whether every value is one the schema cannot refuse (see the module's docstring)."""
    if not attributes.get("userName"):
        return False
    for path, value in attributes.items():
        if value is None or (path in FREE_TEXT_USER_PATHS and isinstance(value, str)):
            continue
        if path == "active" and isinstance(value, bool):
            continue
        if path == "emails" and isinstance(value, list) and all(map(_valid_email_entry, value)):
            continue
        return False
    return True


def user_payload(attributes: dict[str, Any]) -> dict[str, Any]:
    data = {"schemas": [USER_SCHEMA], **unflatten(attributes)}
    if _plain_user(attributes):
        return data
    try:
        user = User.model_validate(data, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    except ValidationError as exc:
        raise PayloadError(_describe(exc)) from None
    return user.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)


def group_payload(attributes: dict[str, Any]) -> dict[str, Any]:
    data = {"schemas": [GROUP_SCHEMA], **unflatten(attributes)}
    try:
        group = Group.model_validate(data, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    except ValidationError as exc:
        raise PayloadError(_describe(exc)) from None
    return group.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)


def attributes_patch(resource: type[User] | type[Group], changes: dict[str, Any]) -> dict[str, Any]:
    """PATCH `replace` for each changed path, `remove` for each value no longer wanted."""
    operation = PatchOperation[resource]  # type: ignore[valid-type]
    operations = [
        operation(op="remove", path=path)
        if value is None
        else operation(op="replace", path=path, value=value)
        for path, value in sorted(changes.items())
    ]
    try:
        patch = PatchOp[resource](operations=operations)  # type: ignore[valid-type]
    except ValidationError as exc:
        raise PayloadError(_describe(exc)) from None
    return patch.model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST)


def members_patch(*, add: list[str] = (), remove: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    operations: list[PatchOperation[Group]] = []
    if add:
        operations.append(
            PatchOperation[Group](op="add", path="members", value=[{"value": i} for i in add])
        )
    for vendor_id in remove:
        operations.append(
            PatchOperation[Group](op="remove", path=f'members[value eq "{vendor_id}"]')
        )
    return PatchOp[Group](operations=operations).model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST)


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
