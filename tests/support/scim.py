"""The test SCIM servers: the token they take, a ServiceProviderConfig without PATCH, and
`ScimPeek`, so a test checks what the vendor really holds, not what the connector says it did."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

SCIM_TOKEN = "test-token-7f3a9c"


class ScimPeek:
    """Reads (and, to set up a scene, writes) the SCIM server directly, bypassing the connector."""

    def __init__(self, base_url: str) -> None:
        self._http = httpx.Client(
            base_url=base_url + "/", headers={"Authorization": f"Bearer {SCIM_TOKEN}"}, timeout=30
        )

    def __enter__(self) -> ScimPeek:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def list(self, resource_type: str) -> list[dict[str, Any]]:
        response = self._http.get(resource_type, params={"count": 10000})
        response.raise_for_status()
        return list(response.json().get("Resources") or [])

    def users(self) -> dict[str, dict[str, Any]]:
        """Users by userName."""
        return {u["userName"]: u for u in self.list("Users")}

    def groups(self) -> dict[str, dict[str, Any]]:
        """Groups by externalId (the school unit code)."""
        return {g.get("externalId") or g["displayName"]: g for g in self.list("Groups")}

    def member_names(self, group: dict[str, Any]) -> set[str]:
        names = {u["id"]: u["userName"] for u in self.list("Users")}
        return {names.get(m["value"], m["value"]) for m in group.get("members") or []}

    def create_user(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], **payload}
        response = self._http.post(
            "Users", json=body, headers={"Content-Type": "application/scim+json"}
        )
        response.raise_for_status()
        return response.json()

    def set_vendor_attribute(self, user_id: str, **attributes: object) -> None:
        """Something the vendor or a person set at the vendor (not managed by the mapping)."""
        operations = [{"op": "replace", "path": k, "value": v} for k, v in attributes.items()]
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": operations,
        }
        response = self._http.patch(
            f"Users/{user_id}", json=body, headers={"Content-Type": "application/scim+json"}
        )
        response.raise_for_status()


def no_patch_service_provider_config(path: Path) -> Path:
    """A ServiceProviderConfig announcing that PATCH is not supported."""
    path.write_text(
        json.dumps(
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "patch": {"supported": False},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": True, "maxResults": 1000},
                "changePassword": {"supported": False},
                "sort": {"supported": True},
                "etag": {"supported": True},
                "authenticationSchemes": [],
            }
        ),
        encoding="utf-8",
    )
    return path
