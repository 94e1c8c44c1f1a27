"""The SCIM attribute paths a mapping may set, and which of them are plain free text. Shared by
the mapping (what it accepts) and the SCIM payloads (what they may build without a model)."""

from __future__ import annotations

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


FREE_TEXT_GROUP_PATHS = frozenset({"externalId", "displayName"})
