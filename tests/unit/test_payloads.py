"""User payloads: the fast path must send exactly what scim2-models would, and refuse nothing
scim2-models would accept for the attributes it lets through unvalidated."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scim2_models import Context, User

from connector.scim.resources import (
    FREE_TEXT_USER_PATHS,
    USER_SCHEMA,
    PayloadError,
    unflatten,
    user_payload,
)

text = st.text(min_size=1, max_size=40).filter(lambda s: s.strip() == s and s)
addresses = st.from_regex(r"[a-z][a-z0-9.-]{0,20}[a-z0-9]@[a-z]{2,10}\.(se|nu|com)", fullmatch=True)


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
