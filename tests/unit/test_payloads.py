"""Payloads built directly must be exactly what scim2-models makes of the same values, and the
values let through without scim2-models must be ones it accepts anyway."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scim2_models import Context, Group, PatchOp, PatchOperation, User

from connector.targets.scim.resources import (
    FREE_TEXT_USER_PATHS,
    GROUP_SCHEMA,
    USER_SCHEMA,
    PayloadError,
    attributes_patch,
    group_payload,
    members_patch,
    unflatten,
    user_payload,
)

text = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s)
addresses = st.from_regex(
    r"[a-z][a-z0-9-]{0,12}(\.[a-z0-9]{1,8})?@[a-z]{2,10}\.(se|nu|com)", fullmatch=True
)


def validated(attributes: dict[str, Any]) -> dict[str, Any]:
    """What scim2-models itself makes of the attributes (the slow path)."""
    data = {"schemas": [USER_SCHEMA], **unflatten(attributes)}
    user = User.model_validate(data, scim_ctx=Context.RESOURCE_CREATION_REQUEST)
    return user.model_dump(scim_ctx=Context.RESOURCE_CREATION_REQUEST)


@settings(max_examples=150, deadline=None)
@given(
    values=st.dictionaries(st.sampled_from(sorted(FREE_TEXT_USER_PATHS)), text, min_size=1),
    email=addresses,
    active=st.booleans(),
)
def test_fast_payload_equals_what_scim2_models_makes(
    values: dict[str, str], email: str, active: bool
) -> None:
    attributes: dict[str, Any] = {
        **values,
        "userName": email,
        "active": active,
        "emails": [{"value": email, "type": "work", "primary": True}],
    }
    assert user_payload(attributes) == validated(attributes)


@settings(max_examples=100, deadline=None)
@given(path=st.sampled_from(sorted(FREE_TEXT_USER_PATHS)), value=st.text(max_size=60))
def test_scim2_models_accepts_any_text_in_the_free_text_paths(path: str, value: str) -> None:
    # If scim2-models starts checking one of these, this fails: take the path off the list.
    attributes = {"userName": "someone", path: value} if path != "userName" else {path: value}
    validated(attributes)


@pytest.mark.parametrize(
    "attributes, message",
    [
        ({"userName": "a", "emails": [{"value": "not-an-address", "primary": True}]}, "emails"),
        ({"userName": "a", "profileUrl": "not a url"}, "profileUrl"),
    ],
)
def test_what_the_schema_refuses_is_refused(attributes: dict[str, Any], message: str) -> None:
    with pytest.raises(PayloadError, match=message):
        user_payload(attributes)


def test_a_non_text_value_goes_through_full_validation() -> None:
    with pytest.raises(PayloadError, match="displayName"):
        user_payload({"userName": "a", "displayName": {"nested": "object"}})


def patch_by_scim2_models(model: type[User] | type[Group], changes: dict[str, Any]) -> dict:
    operations = [
        PatchOperation[model](op="remove", path=path)  # type: ignore[valid-type]
        if value is None
        else PatchOperation[model](op="replace", path=path, value=value)  # type: ignore[valid-type]
        for path, value in sorted(changes.items())
    ]
    patch = PatchOp[model](operations=operations)  # type: ignore[valid-type]
    return patch.model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST)


@settings(max_examples=100, deadline=None)
@given(
    changes=st.dictionaries(
        st.sampled_from(sorted(FREE_TEXT_USER_PATHS - {"externalId"})),
        st.none() | text,
        min_size=1,
    ),
    email=st.none() | addresses,
    active=st.none() | st.booleans(),
)
def test_attribute_patches_equal_what_scim2_models_makes(
    changes: dict[str, str | None], email: str | None, active: bool | None
) -> None:
    if email is not None:
        changes["emails"] = [{"value": email, "type": "work", "primary": True}]  # type: ignore[assignment]
    if active is not None:
        changes["active"] = active  # type: ignore[assignment]
    try:
        expected = patch_by_scim2_models(User, changes)
    except ValidationError:  # e.g. removing userName, which the schema requires
        with pytest.raises(PayloadError):
            attributes_patch("Users", changes)
        return
    assert attributes_patch("Users", changes) == expected


def test_group_payloads_and_member_patches_equal_what_scim2_models_makes() -> None:
    group = group_payload({"externalId": "12345678", "displayName": "Östra skolan"})
    data = {"schemas": [GROUP_SCHEMA], "externalId": "12345678", "displayName": "Östra skolan"}
    assert group == Group.model_validate(data).model_dump(
        scim_ctx=Context.RESOURCE_CREATION_REQUEST
    )
    expected = PatchOp[Group](
        operations=[
            PatchOperation[Group](op="add", path="members", value=[{"value": "a"}, {"value": "b"}]),
            PatchOperation[Group](op="remove", path='members[value eq "c"]'),
        ]
    ).model_dump(scim_ctx=Context.RESOURCE_PATCH_REQUEST)
    assert members_patch(add=["a", "b"], remove=["c"]) == expected
    assert attributes_patch("Groups", {"displayName": "Ny"}) == patch_by_scim2_models(
        Group, {"displayName": "Ny"}
    )


def test_a_vendor_id_with_a_quote_stays_inside_the_filter() -> None:
    (operation,) = members_patch(remove=['a"b'])["Operations"]
    assert operation["path"] == 'members[value eq "a\\"b"]'
