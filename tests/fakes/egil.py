"""A faithful EGIL server (SS 12000:2018 over SCIM, as Sambruk's profile and its reference
server windermere define it) for the EGIL target's tests: a real HTTP(S) server on loopback.

What it enforces, because an EGIL server does: the object's `externalId` is a UUID and is its
id (a PUT's URL id must equal it); each type's required attributes; an 8-digit school unit
code; references that must exist, at the right endpoint (a group's owner and students, an
employment's user and school, an enrolment's school, an activity's owner, groups and
teachers); a POST of an id it holds is 409, a PUT or DELETE of one it does not is 404; an
object still referenced by another cannot be deleted (409). Mutual TLS is demanded in the
handshake when a client CA is given; an API key (`X-API-Key`) or a bearer token when set. GET
is optional at EGIL servers: `allow_get=False` answers 405 to every GET. Students and teachers
are Users at one `/Users` endpoint, as windermere serves them; `user_endpoints=("Students",
"Teachers")` splits them, as an EGIL server configured like EgilSCIM's per-type endpoints may
(then a group's students must be at /Students, an employment's user at /Teachers). A body sent
as anything but application/scim+json or application/json is refused (415), as windermere does.
"""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socket import socket
from types import TracebackType
from typing import Any

OTHER_ENDPOINTS = (
    "Organisations",
    "SchoolUnitGroups",
    "SchoolUnits",
    "Employments",
    "StudentGroups",
    "Activities",
)
MEDIA_TYPES = ("application/scim+json", "application/json")
EXTENSION = "urn:scim:schemas:extension:sis:school:1.0:User"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SCHOOL_UNIT_CODE = re.compile(r"^[0-9]{8}$")
ROLES = {"Rektor", "Lärare", "Förskollärare", "Övrig pedagogisk personal", "Annan personal"}
GROUP_TYPES = {"Klass", "Undervisning", "Mentor", "Provgrupp", "Schema", "Avdelning"}

USER_REQUIRED = ("externalId", "userName", "name", "displayName")
REQUIRED = {
    "Organisations": ("externalId", "displayName"),
    "SchoolUnitGroups": ("externalId", "displayName"),
    "SchoolUnits": ("externalId", "displayName", "schoolUnitCode"),
    "Employments": ("externalId", "employedAt", "user", "employmentRole"),
    "StudentGroups": ("externalId", "displayName", "owner"),
    "Activities": ("externalId", "displayName", "owner"),
}


def references(
    students: str, teachers: str
) -> dict[str, tuple[tuple[str, bool, tuple[str, ...]], ...]]:
    """(attribute, may it hold a list, the endpoints its references may point at), by endpoint."""
    return {
        "SchoolUnits": (
            ("organisation", False, ("Organisations",)),
            ("schoolUnitGroup", False, ("SchoolUnitGroups",)),
        ),
        "Employments": (("employedAt", False, ("SchoolUnits",)), ("user", False, (teachers,))),
        "StudentGroups": (
            ("owner", False, ("SchoolUnits",)),
            ("studentMemberships", True, (students,)),
        ),
        "Activities": (
            ("owner", False, ("SchoolUnits",)),
            ("group", False, ("StudentGroups",)),
            ("groups", True, ("StudentGroups",)),
            ("teachers", True, ("Employments",)),
        ),
    }


class Refused(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


@dataclass(frozen=True)
class EgilServerTLS:
    cert_file: Path
    key_file: Path
    client_ca_file: Path | None = None  # set: a client certificate it signed is demanded


class EgilStore:
    """The server's objects, by endpoint and id, and the rules a change must keep."""

    def __init__(self, user_endpoints: tuple[str, ...]) -> None:
        self.users = user_endpoints
        self.endpoints = OTHER_ENDPOINTS + user_endpoints
        self.references = references(user_endpoints[0], user_endpoints[-1])
        self.objects: dict[str, dict[str, dict[str, Any]]] = {e: {} for e in self.endpoints}
        self.lock = threading.Lock()

    def endpoint_of(self, ident: str) -> str | None:
        return next((e for e in self.endpoints if ident in self.objects[e]), None)

    def validate(self, endpoint: str, obj: Any) -> None:
        if not isinstance(obj, dict):
            raise Refused(400, "the body is not a JSON object")
        for name in USER_REQUIRED if endpoint in self.users else REQUIRED[endpoint]:
            if obj.get(name) in (None, "", [], {}):
                raise Refused(400, f"missing required attribute {name}")
        if not UUID.fullmatch(str(obj["externalId"])):
            raise Refused(400, f"invalid UUID: {obj['externalId']}")
        self._validate_values(endpoint, obj)
        for name, many, targets in self.references.get(endpoint, ()):
            value = obj.get(name)
            if value is None:
                continue
            for ref in value if many else [value]:
                self._reference(name, ref, targets)
        if endpoint in self.users:
            for enrolment in (obj.get(EXTENSION) or {}).get("enrolments", []):
                self._reference("enrolments", enrolment, ("SchoolUnits",))

    def _validate_values(self, endpoint: str, obj: dict[str, Any]) -> None:
        if endpoint == "SchoolUnits" and not SCHOOL_UNIT_CODE.fullmatch(obj["schoolUnitCode"]):
            raise Refused(400, f"invalid school unit code: {obj['schoolUnitCode']}")
        if endpoint in self.users:
            name = obj["name"]
            if (
                not isinstance(name, dict)
                or not name.get("givenName")
                or not name.get("familyName")
            ):
                raise Refused(400, "name needs givenName and familyName")
            if "civicNo" in (obj.get(EXTENSION) or {}):
                raise Refused(400, "civicNo is not accepted here")
        if endpoint == "Employments" and obj["employmentRole"] not in ROLES:
            raise Refused(400, f"unknown employmentRole {obj['employmentRole']}")
        group_type = obj.get("studentGroupType")
        if endpoint == "StudentGroups" and group_type is not None and group_type not in GROUP_TYPES:
            raise Refused(400, f"unknown studentGroupType {group_type}")

    def _reference(self, name: str, ref: Any, targets: tuple[str, ...]) -> None:
        if not isinstance(ref, dict) or not isinstance(ref.get("value"), str):
            raise Refused(400, f"{name}: a reference needs a value")
        found = self.endpoint_of(ref["value"])
        if found not in targets:
            where = f"at {found}" if found else "nowhere"
            raise Refused(400, f"{name}: {ref['value']} is {where}, not at {'/'.join(targets)}")

    def referenced(self, ident: str) -> bool:
        """Whether any other object refers to `ident` (then it may not be deleted)."""
        needle = f'"{ident}"'
        return any(
            needle in json.dumps({k: v for k, v in obj.items() if k not in ("externalId", "id")})
            for objects in self.objects.values()
            for obj in objects.values()
        )


class EgilServer:
    def __init__(
        self,
        *,
        tls: EgilServerTLS | None = None,
        api_key: str | None = None,
        bearer: str | None = None,
        allow_get: bool = True,
        user_endpoints: tuple[str, ...] = ("Users",),
    ) -> None:
        self.tls, self.api_key, self.bearer, self.allow_get = tls, api_key, bearer, allow_get
        self.store = EgilStore(user_endpoints)
        self.requests: list[tuple[str, str, int]] = []
        self.rejected: list[tuple[str, str, str]] = []
        self._context = _server_context(tls) if tls else None
        self._server = _Server(("127.0.0.1", 0), _handler_for(self), self._context)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/scim/v2"

    def objects(self, endpoint: str) -> dict[str, dict[str, Any]]:
        with self.store.lock:
            return {k: dict(v) for k, v in self.store.objects[endpoint].items()}

    def start(self) -> EgilServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> EgilServer:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # -- what a request does -------------------------------------------------------------------

    def authorised(self, headers: Any) -> bool:
        if self.api_key is not None and headers.get("X-API-Key") != self.api_key:
            return False
        return self.bearer is None or headers.get("Authorization") == f"Bearer {self.bearer}"

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("?", 1)[0].split("/") if p]
        if parts[:2] != ["scim", "v2"] or len(parts) < 3:
            raise Refused(404, "not an EGIL endpoint")
        endpoint, ident = parts[2], parts[3] if len(parts) > 3 else None
        if method == "GET":
            return self._get(endpoint, ident)
        if endpoint not in self.store.endpoints:
            raise Refused(404, f"no endpoint {endpoint}")
        with self.store.lock:
            if method == "POST" and ident is None:
                return self._post(endpoint, body)
            if method == "PUT" and ident:
                return self._put(endpoint, ident, body)
            if method == "DELETE" and ident:
                return self._delete(endpoint, ident)
        raise Refused(405, f"{method} is not allowed here")

    def _post(self, endpoint: str, body: Any) -> tuple[int, Any]:
        self.store.validate(endpoint, body)
        if self.store.endpoint_of(body["externalId"]):
            raise Refused(409, f"{body['externalId']} exists")
        self.store.objects[endpoint][body["externalId"]] = body
        return 201, {**body, "id": body["externalId"]}

    def _put(self, endpoint: str, ident: str, body: Any) -> tuple[int, Any]:
        if ident not in self.store.objects[endpoint]:
            raise Refused(404, f"no {endpoint} {ident}")
        self.store.validate(endpoint, body)
        if body["externalId"] != ident:
            raise Refused(400, "externalId differs from the id in the URL")
        self.store.objects[endpoint][ident] = body
        return 200, {**body, "id": ident}

    def _delete(self, endpoint: str, ident: str) -> tuple[int, Any]:
        if ident not in self.store.objects[endpoint]:
            raise Refused(404, f"no {endpoint} {ident}")
        if self.store.referenced(ident):
            raise Refused(409, f"{ident} is still referenced")
        del self.store.objects[endpoint][ident]
        return 204, None

    def _get(self, endpoint: str, ident: str | None) -> tuple[int, Any]:
        if not self.allow_get:
            raise Refused(405, "this server offers no GET")
        if endpoint == "ResourceTypes":
            return 200, _list(
                [{"id": e[:-1], "name": e[:-1], "endpoint": f"/{e}"} for e in self.store.endpoints]
            )
        if endpoint == "ServiceProviderConfig":
            return 200, {"patch": {"supported": False}, "bulk": {"supported": False}}
        if endpoint not in self.store.endpoints:
            raise Refused(404, f"no endpoint {endpoint}")
        objects = self.objects(endpoint)
        if ident is None:
            return 200, _list([{**o, "id": k} for k, o in objects.items()])
        if ident not in objects:
            raise Refused(404, f"no {endpoint} {ident}")
        return 200, {**objects[ident], "id": ident}


def _list(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
        "totalResults": len(resources),
        "Resources": resources,
    }


def _server_context(tls: EgilServerTLS) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(tls.cert_file, tls.key_file)
    if tls.client_ca_file is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(tls.client_ca_file)
    return context


class _Server(ThreadingHTTPServer):
    """TLS in the request's own thread: a failed handshake (no or a wrong client certificate)
    closes that connection and nothing else."""

    def __init__(
        self, address: tuple[str, int], handler: type, context: ssl.SSLContext | None
    ) -> None:
        super().__init__(address, handler)
        self.context = context
        self.handshake_failures = 0

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is None:
            super().finish_request(request, client_address)
            return
        tls = self.context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
        try:
            try:
                tls.do_handshake()
            except (ssl.SSLError, OSError):
                self.handshake_failures += 1
                return
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def shutdown_request(self, request: socket) -> None:
        with contextlib.suppress(OSError):
            super().shutdown_request(request)


def _handler_for(server: EgilServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            try:
                if not server.authorised(self.headers):
                    raise Refused(401, "not authorised")
                media_type = (self.headers.get("Content-Type") or "").split(";")[0].strip()
                if raw and media_type not in MEDIA_TYPES:
                    raise Refused(415, f"unsupported Content-Type {media_type or 'none'}")
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    raise Refused(400, "the body is not JSON") from None
                status, answer = server.handle(method, self.path, body)
            except Refused as refused:
                server.rejected.append((method, self.path, refused.why))
                status = refused.status
                answer = {"schemas": [ERROR], "status": str(status), "detail": refused.why}
            server.requests.append((method, self.path, status))
            data = json.dumps(answer).encode() if answer is not None else b""
            self.send_response(status)
            if data:
                self.send_header("Content-Type", "application/scim+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

    return Handler
