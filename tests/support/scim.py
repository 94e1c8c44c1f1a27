"""The test SCIM servers: the token they take, a ServiceProviderConfig without PATCH,
`ScimPeek`, so a test checks what the vendor really holds, not what the connector says it did,
and `InProcessScimServer`, scim2-server served from a thread for tests that must start fast."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
from scim2_models import ScimProvider
from scim2_server.applications.wsgi import TenantDispatcher
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BearerTokenApplication
from scim2_server.testserver.cli import ThreadingWSGIServer
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)

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

    def delete(self, resource_type: str, resource_id: str) -> None:
        """An object deleted at the vendor by hand."""
        self._http.delete(f"{resource_type}/{resource_id}").raise_for_status()

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


class InProcessScimServer:
    """scim2-server's own SCIM application (RFC 7643's schemas, in-memory storage, bearer
    token) served from a thread of the test process on loopback, each tenant a fresh server.

    For tests that mutmut runs once per mutant in a freshly forked process: starting the
    `scim2-server` command there takes seconds each time, this takes milliseconds. `refuse`
    is the fault injection: given a request's WSGI environ it returns a status (say 400 for a
    filter the vendor cannot evaluate) to answer with a SCIM error instead, or None to serve
    the request."""

    def __init__(self, refuse: Callable[[dict[str, Any]], int | None] | None = None) -> None:
        self.refuse = refuse
        provider = ScimProvider.from_discovery(
            load_default_schemas().values(),
            load_default_resource_types().values(),
            config=load_default_service_provider_config(),
        )
        service = ScimService(provider, secret=uuid.uuid4().hex)

        def tenant(_: str) -> BearerTokenApplication:
            return BearerTokenApplication(
                InMemoryStorage(), provider, service=service, bearer_tokens=[SCIM_TOKEN]
            )

        self._app = TenantDispatcher(tenant)
        self._server = make_server(
            "127.0.0.1", 0, self._serve, server_class=ThreadingWSGIServer, handler_class=_Quiet
        )
        self.root = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _serve(self, environ: dict[str, Any], start_response: Any) -> Any:
        status = self.refuse(environ) if self.refuse else None
        if status is None:
            return self._app(environ, start_response)
        body = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": str(status),
            "detail": "refused by the test",
        }
        start_response(f"{status} Refused", [("Content-Type", "application/scim+json")])
        return [json.dumps(body).encode()]

    def tenant_url(self) -> str:
        """A fresh, empty SCIM server."""
        return f"{self.root}/t{uuid.uuid4().hex[:12]}/v2"

    def __enter__(self) -> InProcessScimServer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass
