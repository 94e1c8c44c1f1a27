"""The fake SS 12000 server (tests/fakes/ss12000_server.py) against the SS 12000:2020 OpenAPI document.

Every API response a test here receives goes through ``SpecClient``, which validates the body
against the response schema the spec declares for that path, method and status (``$ref``s
resolved, OpenAPI 3.0 ``nullable``, formats uuid / date / date-time / email checked) and also
refuses properties the spec does not declare. So the fake cannot drift from the standard.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import email_validator
import httpx
import pytest
import yaml
from jsonschema import FormatChecker
from openapi_schema_validator import OAS30ReadValidator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from tests.fakes.ss12000_school import DemoSchool, civic_no, populate
from tests.fakes.ss12000_server import (
    DELETED_ENTITY_KEYS,
    DUTY_ROLES,
    EMAIL_TYPES,
    GROUP_TYPES,
    ITEM_PARAMS,
    LIST_PARAMS,
    ORGANISATION_TYPES,
    SCHOOL_TYPES,
    SECURITY_MARKINGS,
    SS12000Server,
    duty_assignment,
    parse_rfc3339,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
SPEC_NAME = "openapi_ss12000_version2_1_0.yaml"
SPEC_URI = "urn:ss12000:openapi:2.1.0"
CLIENT_ID = "connector"
CLIENT_SECRET = "s3cret-client"


def find_spec() -> Path | None:
    candidates = [
        os.environ.get("SS12000_OPENAPI", ""),
        REPO / "specs" / "ss12000" / SPEC_NAME,  # a copy of the standard's spec (MIT)
        REPO.parent / "shared" / "specs" / "ss12000" / SPEC_NAME,
    ]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


# --- the validator ----------------------------------------------------------------------------


def _strict_email(instance: object) -> bool:
    if not isinstance(instance, str):
        return True
    try:
        email_validator.validate_email(instance, check_deliverability=False)
    except email_validator.EmailNotValidError:
        return False
    return True


FORMATS = FormatChecker()
FORMATS.checkers = dict(oas30_format_checker.checkers)
FORMATS.checks("email")(_strict_email)


def _pointer(*parts: str) -> str:
    return "/".join(quote(p.replace("~", "~0").replace("/", "~1"), safe="{}") for p in parts)


class Spec:
    """The OpenAPI document, and response validation against it."""

    def __init__(self, path: Path) -> None:
        self.doc: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert self.doc["openapi"].startswith("3.0"), self.doc["openapi"]
        self.registry = Registry().with_resource(
            SPEC_URI, Resource(contents=self.doc, specification=DRAFT4)
        )
        self._validators: dict[str, Any] = {}
        self._templates = [
            (
                template,
                re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"),
            )
            for template in self.doc["paths"]
        ]

    def template_for(self, path: str) -> str:
        literal = [t for t, rx in self._templates if "{" not in t and rx.match(path)]
        templated = [t for t, rx in self._templates if "{" in t and rx.match(path)]
        found = literal or templated
        assert found, f"{path} is not a path of the SS 12000 spec"
        return found[0]

    def operation(self, template: str, method: str) -> dict[str, Any]:
        op = self.doc["paths"][template].get(method.lower())
        assert op is not None, f"the spec has no {method} {template}"
        return op

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.registry.resolver(SPEC_URI).lookup(node["$ref"]).contents
        return node

    def schema_errors(self, pointer: str, instance: Any) -> list[str]:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = OAS30ReadValidator(
                {"$ref": f"{SPEC_URI}#{pointer}"}, registry=self.registry, format_checker=FORMATS
            )
            self._validators[pointer] = validator
        errors = [
            f"{'/'.join(map(str, e.absolute_path)) or '$'}: {e.message}"
            for e in validator.iter_errors(instance)
        ]
        return errors + self.undeclared(pointer, instance)

    def schema_errors_for(self, name: str, instance: Any) -> list[str]:
        return self.schema_errors(f"/components/schemas/{name}", instance)

    def undeclared(self, pointer: str, instance: Any) -> list[str]:
        """Properties the spec does not declare (its schemas leave additionalProperties open,
        so a validator alone would let a misspelt field such as ``enrollments`` through)."""
        found: list[str] = []
        root = self.registry.resolver(SPEC_URI)

        def flatten(schema: Any, resolver: Any, into: list[tuple[dict, Any]]) -> None:
            if not isinstance(schema, dict):
                return
            if "$ref" in schema:
                resolved = resolver.lookup(schema["$ref"])
                flatten(resolved.contents, resolved.resolver, into)
                return
            into.append((schema, resolver))
            for key in ("allOf", "anyOf", "oneOf"):
                for sub in schema.get(key, []):
                    flatten(sub, resolver, into)

        def walk(schemas: list[tuple[Any, Any]], value: Any, where: str) -> None:
            flat: list[tuple[dict, Any]] = []
            for schema, resolver in schemas:
                flatten(schema, resolver, flat)
            if isinstance(value, dict):
                props: dict[str, list[tuple[Any, Any]]] = {}
                open_ended = False
                for schema, resolver in flat:
                    for name, sub in schema.get("properties", {}).items():
                        props.setdefault(name, []).append((sub, resolver))
                    if schema.get("additionalProperties") not in (None, False):
                        open_ended = True
                for name, sub_value in value.items():
                    if name in props:
                        walk(props[name], sub_value, f"{where}/{name}")
                    elif not open_ended:
                        found.append(f"{where}/{name}: not declared by the spec")
            elif isinstance(value, list):
                items = [(s["items"], r) for s, r in flat if "items" in s]
                for i, item in enumerate(value):
                    walk(items, item, f"{where}/{i}")

        walk([({"$ref": f"{SPEC_URI}#{pointer}"}, root)], instance, "$")
        return found

    def check_response(self, method: str, path: str, response: httpx.Response) -> None:
        template = self.template_for(path)
        op = self.operation(template, method)
        status = str(response.status_code)
        key = status if status in op["responses"] else "default"
        assert key in op["responses"], f"{method} {template} declares no {status} nor default"
        declared = self.resolve(op["responses"][key])
        if "content" not in declared:
            assert response.content == b"", (
                f"{method} {template} {status}: the spec declares no body, got {response.text!r}"
            )
            return
        assert response.headers.get("content-type", "").startswith("application/json")
        assert "application/json" in declared["content"]
        pointer = "/" + _pointer(
            "paths",
            template,
            method.lower(),
            "responses",
            key,
            "content",
            "application/json",
            "schema",
        )
        errors = self.schema_errors(pointer, response.json())
        assert not errors, f"{method} {path} {status} breaks the spec:\n" + "\n".join(errors[:20])


class SpecClient:
    """An httpx client for the fake whose every response is checked against the spec."""

    def __init__(self, server: SS12000Server, spec: Spec, token: str | None) -> None:
        self.server = server
        self.spec = spec
        self.token = token
        self.http = httpx.Client(timeout=10)
        self.checked = 0

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
        expect: int | None = 200,
        token: str | bool | None = True,
    ) -> httpx.Response:
        headers = {}
        bearer = self.token if token is True else token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        response = self.http.request(
            method, self.server.base_url + path, params=params, json=json, headers=headers
        )
        self.spec.check_response(method, path, response)
        self.checked += 1
        if expect is not None:
            assert response.status_code == expect, response.text
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def data(self, path: str, **kwargs: Any) -> Any:
        return self.get(path, **kwargs).json()["data"]

    def walk(self, path: str, params: Any = None) -> list[dict[str, Any]]:
        """Every page of a listing, following pageToken alone as the spec says."""
        pages = [self.get(path, params=params).json()]
        while pages[-1].get("pageToken"):
            pages.append(self.get(path, params={"pageToken": pages[-1]["pageToken"]}).json())
            assert len(pages) < 100
        return pages

    def close(self) -> None:
        self.http.close()


def fetch_token(server: SS12000Server, **form: str) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **form,
    }
    data = {k: v for k, v in data.items() if v is not None}
    return httpx.post(server.token_url, data=data, timeout=10)


TOKEN_RESPONSE = {  # RFC 6749 §5.1 (the token endpoint is not part of SS 12000)
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string", "minLength": 16},
        "token_type": {"enum": ["Bearer"]},
        "expires_in": {"type": "integer", "minimum": 0},
        "scope": {"type": "string"},
    },
    "additionalProperties": False,
}
TOKEN_ERROR = {  # RFC 6749 §5.2
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "enum": [
                "invalid_request",
                "invalid_client",
                "invalid_grant",
                "unauthorized_client",
                "unsupported_grant_type",
                "invalid_scope",
            ]
        },
        "error_description": {"type": "string"},
    },
}


def check_token_body(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    schema = TOKEN_RESPONSE if response.status_code == 200 else TOKEN_ERROR
    errors = [e.message for e in OAS30ReadValidator(schema).iter_errors(body)]
    assert not errors, errors
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    return body


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def spec() -> Spec:
    path = find_spec()
    if path is None:
        message = f"{SPEC_NAME} not found (set SS12000_OPENAPI)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: a missing spec is a failure, not a skip)")
        pytest.skip(message)
    return Spec(path)


@pytest.fixture
def server() -> Iterator[SS12000Server]:
    with SS12000Server(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as srv:
        yield srv


@pytest.fixture
def school(server: SS12000Server) -> DemoSchool:
    return populate(server)


@pytest.fixture
def api(server: SS12000Server, spec: Spec, school: DemoSchool) -> Iterator[SpecClient]:
    response = fetch_token(server)
    assert response.status_code == 200, response.text
    client = SpecClient(server, spec, check_token_body(response)["access_token"])
    yield client
    client.close()
    assert client.checked > 0


def ids(items: list[dict[str, Any]]) -> set[str]:
    return {item["id"] for item in items}


# --- the validator itself must bite -----------------------------------------------------------


def good_person() -> dict[str, Any]:
    return {
        "id": "7d5b1c2e-3f4a-4b6c-8d9e-0f1a2b3c4d5e",
        "meta": {"created": "2024-08-01T10:00:00.000+00:00", "modified": "2024-08-01T10:00:00Z"},
        "givenName": "Åsa",
        "familyName": "Öberg",
        "civicNo": {"value": "201503122385"},
        "securityMarking": "Skyddad folkbokföring",
        "emails": [{"type": "Skola elev", "value": "asa.oberg@elev.exempelby.se"}],
        "enrolments": [
            {
                "enroledAt": {"id": "9d5b1c2e-3f4a-4b6c-8d9e-0f1a2b3c4d5e"},
                "schoolType": "GR",
                "startDate": "2024-08-15",
                "schoolYear": 4,
            }
        ],
        "_embedded": {"duties": []},
    }


@pytest.mark.parametrize(
    ("mutate", "complaint"),
    [
        (lambda p: p.update(id="not-a-uuid"), "uuid"),
        (lambda p: p.update(securityMarking="Skyddad"), "Skyddad"),
        (lambda p: p["emails"][0].update(type="Skola"), "Skola"),
        (lambda p: p["emails"][0].update(value="no-at-sign.example.se"), "email"),
        (lambda p: p["meta"].update(modified="2024-08-01T10:00:00"), "date-time"),
        (lambda p: p["enrolments"][0].update(startDate="2024-8-15"), "date"),
        (lambda p: p["enrolments"][0].update(schoolYear=11), "11"),
        (lambda p: p["enrolments"][0].pop("schoolType"), "schoolType"),
        (lambda p: p.pop("familyName"), "familyName"),
        (lambda p: p.update(civicNo="201503122385"), "object"),
        (lambda p: p.update(enrollments=[]), "enrollments"),
        (lambda p: p["_embedded"].update(duty=[]), "duty"),
        (lambda p: p.update(pageToken=None), "pageToken"),
    ],
)
def test_the_validator_refuses_what_the_spec_refuses(
    spec: Spec, mutate: Any, complaint: str
) -> None:
    assert spec.schema_errors_for("PersonExpanded", good_person()) == []
    person = good_person()
    mutate(person)
    errors = spec.schema_errors_for("PersonExpanded", person)
    assert errors, f"the validator let {person} through"
    assert any(complaint in e for e in errors), errors


def test_nullable_page_token_and_error_shape(spec: Spec) -> None:
    assert spec.schema_errors_for("PersonsExpanded", {"data": [], "pageToken": None}) == []
    assert spec.schema_errors_for("PersonsExpanded", {"data": []}) == []
    assert spec.schema_errors_for("PersonsExpanded", {"data": [], "pageToken": 3})
    assert spec.schema_errors_for("Organisations", {"pageToken": "x"})
    assert spec.schema_errors_for("Error", {"code": "x"})


# --- the fake's parameters and code lists are the spec's --------------------------------------


def test_list_parameters_are_exactly_the_specs(spec: Spec) -> None:
    for endpoint, params in LIST_PARAMS.items():
        declared = {p["name"]: p for p in spec.operation(f"/{endpoint}", "get")["parameters"]}
        assert set(declared) - {"limit", "pageToken"} == {p.name for p in params}, endpoint
        for param in params:
            schema = spec.resolve(declared[param.name]["schema"])
            assert param.array == (schema.get("type") == "array"), (endpoint, param.name)
            if param.array:
                schema = spec.resolve(schema["items"])
            if param.enum:
                assert list(param.enum) == schema["enum"], (endpoint, param.name)
            else:
                assert "enum" not in schema, (endpoint, param.name)
            expected_format = {"uuid": "uuid", "date": "date", "datetime": "date-time"}
            assert schema.get("format") == expected_format.get(param.kind), (endpoint, param.name)


def test_item_parameters_are_the_specs(spec: Spec) -> None:
    for kind, params in ITEM_PARAMS.items():
        for template, method in ((f"/{kind}/{{id}}", "get"), (f"/{kind}/lookup", "post")):
            declared = {
                p["name"]: p
                for p in spec.operation(template, method)["parameters"]
                if p["in"] == "query"
            }
            assert set(declared) == {p.name for p in params}, template
            for param in params:
                if param.enum:
                    schema = spec.resolve(declared[param.name]["schema"])
                    assert list(param.enum) == spec.resolve(schema["items"])["enum"], template


def test_code_lists_are_the_specs(spec: Spec) -> None:
    schemas = spec.doc["components"]["schemas"]
    assert list(ORGANISATION_TYPES) == schemas["OrganisationTypeEnum"]["enum"]
    assert list(SCHOOL_TYPES) == schemas["SchoolTypesEnum"]["enum"]
    assert list(GROUP_TYPES) == schemas["GroupTypesEnum"]["enum"]
    assert list(DUTY_ROLES) == schemas["DutyRole"]["enum"]
    assert list(SECURITY_MARKINGS) == schemas["Person"]["properties"]["securityMarking"]["enum"]
    assert list(EMAIL_TYPES) == schemas["Email"]["properties"]["type"]["enum"]
    assert list(DELETED_ENTITY_KEYS) == schemas["EndPointsEnum"]["enum"]
    assert set(DELETED_ENTITY_KEYS.values()) == set(schemas["DeletedEntities_data"]["properties"])


# --- OAuth2 client credentials ----------------------------------------------------------------


def test_token_endpoint_issues_bearer_tokens(api: SpecClient, server: SS12000Server) -> None:
    response = fetch_token(server, scope="ss12000.read")
    assert response.status_code == 200
    body = check_token_body(response)
    assert body["expires_in"] == 3600
    assert body["scope"] == "ss12000.read"
    assert server.tokens_issued == 2  # the api fixture's and this one
    api.get("/organisations", token=body["access_token"])

    basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
    via_basic = httpx.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        headers={"authorization": f"Basic {basic}"},
    )
    assert via_basic.status_code == 200
    api.get("/persons", token=check_token_body(via_basic)["access_token"])


@pytest.mark.parametrize(
    ("form", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "somebody-else"}, 401, "invalid_client"),
        ({"client_secret": None}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "invalid_request"),
    ],
)
def test_token_endpoint_refuses(
    server: SS12000Server, form: dict[str, str | None], status: int, error: str
) -> None:
    response = fetch_token(server, **form)  # type: ignore[arg-type]
    assert response.status_code == status
    assert check_token_body(response)["error"] == error
    if status == 401:
        assert "WWW-Authenticate" in response.headers
    assert server.tokens_issued == 0


def test_token_endpoint_wants_a_form_and_allowed_scopes(server: SS12000Server) -> None:
    as_json = httpx.post(
        server.token_url,
        json={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert as_json.status_code == 400
    assert check_token_body(as_json)["error"] == "invalid_request"
    server.allowed_scopes = {"read"}
    refused = fetch_token(server, scope="read write")
    assert refused.status_code == 400
    assert check_token_body(refused)["error"] == "invalid_scope"
    assert fetch_token(server, scope="read").status_code == 200
    assert [(r.method, r.path, r.status) for r in server.requests] == [
        ("POST", "/token", 400),
        ("POST", "/token", 400),
        ("POST", "/token", 200),
    ]


@pytest.mark.parametrize(
    "path", ["/organisations", "/persons", "/duties", "/groups", "/deletedEntities"]
)
def test_api_without_a_valid_token_is_401(api: SpecClient, path: str) -> None:
    missing = api.get(path, token=None, expect=401)
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="ss12000"'
    assert missing.json()["code"] == "unauthorized"
    unknown = api.get(path, token="made-up-token", expect=401)
    assert 'error="invalid_token"' in unknown.headers["WWW-Authenticate"]
    basic = api.http.get(api.server.base_url + path, auth=(CLIENT_ID, CLIENT_SECRET))
    api.spec.check_response("GET", path, basic)
    assert basic.status_code == 401


def test_tokens_expire_after_their_lifetime(api: SpecClient, server: SS12000Server) -> None:
    server.token_lifetime = 1
    short = check_token_body(fetch_token(server))
    assert short["expires_in"] == 1
    api.get("/persons", token=short["access_token"])
    time.sleep(1.2)
    expired = api.get("/persons", token=short["access_token"], expect=401)
    assert 'error="invalid_token"' in expired.headers["WWW-Authenticate"]
    assert "expired" in expired.headers["WWW-Authenticate"]
    assert expired.json() == {"code": "invalid_token", "message": "the access token expired"}
    fresh = check_token_body(fetch_token(server))["access_token"]
    api.get("/persons", token=fresh)


def test_clock_and_switches_expire_tokens(api: SpecClient, server: SS12000Server) -> None:
    api.get("/groups")
    server.advance_clock(3601)
    api.get("/groups", expect=401)
    api.token = check_token_body(fetch_token(server))["access_token"]
    api.get("/groups")
    server.expire_all_tokens()
    assert "expired" in api.get("/groups", expect=401).json()["message"]
    api.token = check_token_body(fetch_token(server))["access_token"]
    server.revoke_all_tokens()
    assert "not known" in api.get("/groups", expect=401).json()["message"]


def test_a_clock_step_per_request_makes_a_slow_read(api: SpecClient, server: SS12000Server) -> None:
    server.token_lifetime = 10
    api.token = check_token_body(fetch_token(server))["access_token"]
    server.clock_step_per_request = 6
    before = server.now()
    api.get("/groups")  # 6 s into the token's 10
    assert "expired" in api.get("/groups", expect=401).json()["message"]  # 12 s
    assert server.now() - before >= timedelta(seconds=12)


def test_static_token_and_open_modes(spec: Spec) -> None:
    with SS12000Server(static_token="static-token-123") as srv:
        client = SpecClient(srv, spec, "static-token-123")
        populate(srv)
        assert len(client.data("/persons")) == 9
        client.get("/persons", token="static-token-12", expect=401)
        srv.require_auth = False
        client.get("/persons", token=None)
        client.close()


# --- organisations ----------------------------------------------------------------------------


def test_organisations(api: SpecClient, school: DemoSchool) -> None:
    everything = api.get("/organisations").json()
    assert everything["pageToken"] is None
    assert ids(everything["data"]) == {school.huvudman, school.bjorkskolan, school.ekgymnasiet}

    units = api.data("/organisations", params={"type": "Skolenhet"})
    assert {(o["displayName"], o["schoolUnitCode"]) for o in units} == {
        ("Björkskolan", "12345678"),
        ("Ekgymnasiet", "87654321"),
    }
    assert all(o["organisationType"] == "Skolenhet" for o in units)
    both = api.data("/organisations", params=[("type", "Skolenhet"), ("type", "Huvudman")])
    assert len(both) == 3
    assert ids(api.data("/organisations", params={"schoolUnitCode": "12345678"})) == {
        school.bjorkskolan
    }
    assert ids(api.data("/organisations", params={"schoolTypes": "GY"})) == {school.ekgymnasiet}
    assert ids(api.data("/organisations", params={"parent": school.huvudman})) == {
        school.bjorkskolan,
        school.ekgymnasiet,
    }
    named = api.data("/organisations", params={"type": "Skolenhet", "expandReferenceNames": "true"})
    assert {o["parentOrganisation"]["displayName"] for o in named} == {"Exempelby kommun"}
    assert "displayName" not in units[0]["parentOrganisation"]
    bad = api.get("/organisations", params={"type": "Skola enhet"}, expect=400)
    assert bad.json()["code"] == "invalid_parameter"


# --- persons ----------------------------------------------------------------------------------


def test_persons_in_the_specs_shape(api: SpecClient, school: DemoSchool) -> None:
    people = {p["id"]: p for p in api.data("/persons")}
    assert set(people) == school.person_ids
    astrid = people[school.students["astrid"]]
    assert astrid["civicNo"] == {"value": civic_no("20150312", "238")}
    assert astrid["emails"] == [{"type": "Skola elev", "value": "astrid.astrid@elev.exempelby.se"}]
    assert astrid["eduPersonPrincipalNames"] == ["astrid.astrid@exempelby.se"]
    assert astrid["enrolments"] == [
        {
            "enroledAt": {"id": school.bjorkskolan},
            "schoolType": "GR",
            "schoolYear": 4,
            "startDate": "2024-08-15",
        }
    ]
    assert "_embedded" not in astrid  # only with expand
    markings = {key: people[pid].get("securityMarking") for key, pid in school.students.items()}
    assert markings == {
        "astrid": "Ingen",
        "bjorn": "Sekretessmarkering",
        "cecilia": "Skyddad folkbokföring",
        "david": None,
        "elin": "Ingen",
    }
    karin = people[school.staff["karin"]]
    assert karin["emails"][0]["type"] == "Skola personal"
    assert "enrolments" not in karin


def test_persons_expand_every_listed_value(api: SpecClient, school: DemoSchool) -> None:
    expand = ["duties", "responsibleFor", "placements", "ownedPlacements", "groupMemberships"]
    params = [("expand", e) for e in expand] + [("expandReferenceNames", "true")]
    people = {p["id"]: p for p in api.data("/persons", params=params)}
    assert all(set(p["_embedded"]) == set(expand) for p in people.values())

    karin = people[school.staff["karin"]]["_embedded"]
    assert [d["id"] for d in karin["duties"]] == [school.duties["karin"]]
    duty = karin["duties"][0]
    assert duty["dutyRole"] == "Lärare"
    assert duty["dutyAt"] == {"id": school.bjorkskolan, "displayName": "Björkskolan"}
    assert "_embedded" not in duty  # a plain Duty inside a person

    astrid = people[school.students["astrid"]]
    assert astrid["enrolments"][0]["enroledAt"]["displayName"] == "Björkskolan"
    assert astrid["responsibles"][0]["person"]["displayName"] == "Per Lindqvist"
    memberships = astrid["_embedded"]["groupMemberships"]
    assert [m["group"]["displayName"] for m in memberships] == ["4A"]
    assert "groupMemberships" not in memberships[0]["group"]  # a GroupFragment
    assert astrid["_embedded"]["placements"] == []

    per = people[school.guardians["per"]]["_embedded"]
    assert per["responsibleFor"] == [
        {
            "person": {
                "id": school.students["astrid"],
                "securityMarking": "Ingen",
                "displayName": "Astrid Lindqvist",
            },
            "relationType": "Vårdnadshavare",
        }
    ]

    one = api.get(f"/persons/{school.staff['maria']}", params={"expand": "duties"}).json()
    assert {d["dutyRole"] for d in one["_embedded"]["duties"]} == {
        "Lärare",
        "Speciallärare/specialpedagog",
    }


def test_persons_expand_is_an_array_parameter(api: SpecClient, server: SS12000Server) -> None:
    api.get("/persons", params={"expand": "duties,groupMemberships"}, expect=400)
    api.get("/persons", params={"expand": "person"}, expect=400)  # a /duties value
    server.comma_separated_arrays = True
    people = api.data("/persons", params={"expand": "duties,groupMemberships"})
    assert all(set(p["_embedded"]) == {"duties", "groupMemberships"} for p in people)


def test_persons_filters(api: SpecClient, server: SS12000Server, school: DemoSchool) -> None:
    s = school.students
    server.update(
        "persons",
        s["david"],
        lambda p: p.setdefault("externalIdentifiers", []).append(
            {
                "value": "dek0101",
                "context": "https://exempelby.se/ad/sAMAccountName",
                "globallyUnique": False,
            }
        ),
    )

    def select(params: Any) -> set[str]:
        return ids(api.data("/persons", params=params))

    assert select({"civicNo": civic_no("20150611", "457")}) == {s["bjorn"]}
    assert select({"eduPersonPrincipalName": "elin.elin@exempelby.se"}) == {s["elin"]}
    assert select({"identifier.value": "dek0101"}) == {s["david"]}
    assert select(
        {
            "identifier.value": "dek0101",
            "identifier.context": "https://exempelby.se/ad/sAMAccountName",
        }
    ) == {s["david"]}
    assert select({"identifier.value": "dek0101", "identifier.context": "urn:other"}) == set()
    assert select({"nameContains": "BERG"}) == {s["bjorn"], s["cecilia"], s["elin"]}
    assert select([("nameContains", "ast"), ("nameContains", "lind")]) == {s["astrid"]}
    enrolled = {"relationship.entity.type": "enrolment"}
    assert select({**enrolled, "relationship.organisation": school.ekgymnasiet}) == {s["elin"]}
    assert select({**enrolled, "relationship.organisation": school.bjorkskolan}) == {
        s["astrid"],
        s["bjorn"],
        s["cecilia"],
        s["david"],
    }
    duty_at_bjork = {
        "relationship.entity.type": "duty",
        "relationship.organisation": school.bjorkskolan,
    }
    staff = school.staff
    assert select(duty_at_bjork) == {staff["karin"], staff["lars"], staff["maria"]}
    assert select({**duty_at_bjork, "relationship.endDate.onOrAfter": "2024-08-01"}) == {
        staff["karin"],
        staff["lars"],
    }
    assert select(
        {
            "relationship.entity.type": "responsibleFor.enrolment",
            "relationship.organisation": school.bjorkskolan,
        }
    ) == {school.guardians["per"]}
    assert select(
        {
            "relationship.entity.type": "groupMembership",
            "relationship.organisation": school.bjorkskolan,
        }
    ) == {s["astrid"], s["bjorn"], s["cecilia"], s["david"], staff["karin"]}
    assert select({"relationship.entity.type": "placement.child"}) == set()
    api.get("/persons", params={"relationship.organisation": "Björkskolan"}, expect=400)


def test_persons_sortkey(api: SpecClient) -> None:
    pages = api.walk("/persons", params={"sortkey": "FamilyNameAsc", "limit": 4})
    names = [p["familyName"] for page in pages for p in page["data"]]
    assert len(pages) == 3
    assert names == sorted(names)
    newest_first = api.data("/persons", params={"sortkey": "ModifiedDesc"})
    stamps = [parse_rfc3339(p["meta"]["modified"]) for p in newest_first]
    assert stamps == sorted(stamps, reverse=True)


# --- duties and groups ------------------------------------------------------------------------


def test_duties(api: SpecClient, school: DemoSchool) -> None:
    duties = {d["id"]: d for d in api.data("/duties", params={"expand": "person"})}
    assert set(duties) == set(school.duties.values())
    karin = duties[school.duties["karin"]]
    assert karin["person"] == {"id": school.staff["karin"], "securityMarking": "Ingen"}
    assert karin["dutyAt"] == {"id": school.bjorkskolan}
    assert karin["assignmentRole"] == [
        {"group": {"id": school.groups["4A"]}, "assignmentRoleType": "Mentor"}
    ]
    assert karin["_embedded"]["person"]["givenName"] == "Karin"
    assert karin["_embedded"]["person"]["civicNo"]["value"].startswith("19800514")

    def select(params: Any) -> set[str]:
        return ids(api.data("/duties", params=params))

    assert select({"organisation": school.huvudman}) == set(school.duties.values())  # subtree
    assert select({"organisation": school.ekgymnasiet}) == {school.duties["maria"]}
    assert select({"dutyRole": "Rektor"}) == {school.duties["lars"]}
    assert select({"person": school.staff["maria"]}) == {
        school.duties["maria"],
        school.duties["maria_bjork"],
    }
    assert school.duties["maria_bjork"] not in select({"endDate.onOrAfter": "2024-08-01"})
    api.get("/duties", params={"dutyRole": "Teacher"}, expect=400)
    api.get("/duties", params={"expand": "duties"}, expect=400)
    one = api.get(f"/duties/{school.duties['lars']}", params={"expand": "person"}).json()
    assert one["_embedded"]["person"]["familyName"] == "Rektorsson"


def test_groups(api: SpecClient, school: DemoSchool) -> None:
    groups = {g["id"]: g for g in api.data("/groups", params={"expand": "assignmentRoles"})}
    class4a = groups[school.groups["4A"]]
    assert class4a["groupType"] == "Klass"
    assert class4a["organisation"] == {"id": school.bjorkskolan}
    members = {m["person"]["id"]: m["person"] for m in class4a["groupMemberships"]}
    assert set(members) == {school.students[k] for k in ("astrid", "bjorn", "cecilia", "david")}
    assert members[school.students["cecilia"]]["securityMarking"] == "Skyddad folkbokföring"
    assert "securityMarking" not in members[school.students["david"]]
    assert class4a["_embedded"]["assignmentRoles"] == [
        {"duty": {"id": school.duties["karin"]}, "assignmentRoleType": "Mentor"}
    ]
    assert groups[school.groups["NA24a"]]["_embedded"] == {"assignmentRoles": []}
    assert len(api.data("/groups", params={"groupType": "Klass"})) == 2
    assert api.data("/groups", params={"groupType": "Undervisning"}) == []
    assert ids(api.data("/groups", params={"organisation": school.ekgymnasiet})) == {
        school.groups["NA24a"]
    }
    assert ids(api.data("/groups", params={"schoolTypes": "GY"})) == {school.groups["NA24a"]}


def test_activities(api: SpecClient, server: SS12000Server, school: DemoSchool) -> None:
    """Teaching groups and who teaches them: /activities with its filters and expand."""
    students = [school.students["astrid"], school.students["david"]]
    ma4 = server.add_group(
        "MA4", school.bjorkskolan, group_type="Undervisning", school_type="GR", members=students
    )
    maths = server.add_activity(
        "Matematik 4",
        school.bjorkskolan,
        [ma4, school.groups["4A"]],
        teachers=[duty_assignment(school.duties["karin"], grader=True)],
    )
    server.add_activity("Fysik 1", school.ekgymnasiet, [school.groups["NA24a"]])

    listed = api.data("/activities", params={"expand": ["groups", "teachers"]})
    found = {a["id"]: a for a in listed}
    assert set(found) == {maths["id"], *ids(server.all("activities"))} and len(found) == 2
    one = found[maths["id"]]
    assert one["groups"] == [{"id": ma4["id"]}, {"id": school.groups["4A"]}]
    assert one["teachers"] == [{"duty": {"id": school.duties["karin"]}, "grader": True}]
    assert [g["displayName"] for g in one["_embedded"]["groups"]] == ["MA4", "4A"]
    assert [d["id"] for d in one["_embedded"]["teachers"]] == [school.duties["karin"]]
    named = api.get(f"/activities/{maths['id']}", params={"expandReferenceNames": "true"}).json()
    assert named["organisation"]["displayName"] == "Björkskolan"

    def select(params: Any) -> set[str]:
        return ids(api.data("/activities", params=params))

    assert select({"teacher": school.duties["karin"]}) == {maths["id"]}
    assert select({"member": school.students["david"]}) == {maths["id"]}
    assert select({"member": school.students["elin"]}) == ids(server.all("activities")) - {
        maths["id"]
    }
    assert select({"group": ma4["id"]}) == {maths["id"]}
    assert len(select({"organisation": school.huvudman})) == 2  # its subtree
    assert select({"endDate.onOrBefore": "2020-01-01"}) == set(found)  # no endDate: always in
    api.get("/activities", params={"expand": "duties"}, expect=400)
    api.get("/activities", params={"teacher": "karin"}, expect=400)
    assert ids(api.post("/activities/lookup", json={"ids": [maths["id"]]}).json()) == {maths["id"]}

    mark = server.stamp()
    server.delete("activities", maths["id"])
    deleted = api.get("/deletedEntities", params=[("after", mark), ("entities", "Activity")])
    assert deleted.json()["data"] == {"activitites": [maths["id"]]}


# --- single objects and lookups ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["organisations", "persons", "duties", "groups"])
def test_get_by_id(api: SpecClient, server: SS12000Server, kind: str) -> None:
    stored = server.all(kind)[0]
    got = api.get(f"/{kind}/{stored['id']}").json()
    assert got["id"] == stored["id"]
    assert got["meta"] == stored["meta"]
    missing = api.get(f"/{kind}/00000000-0000-4000-8000-000000000000", expect=404)
    assert missing.content == b""
    assert api.get(f"/{kind}/not-a-uuid", expect=400).json()["code"] == "invalid_id"


def test_lookups(api: SpecClient, school: DemoSchool) -> None:
    people = api.post(
        "/persons/lookup",
        json={"civicNos": [civic_no("20080402", "224")], "ids": [school.staff["lars"]]},
        params={"expand": "duties"},
    ).json()
    assert ids(people) == {school.students["elin"], school.staff["lars"]}
    assert all("duties" in p["_embedded"] for p in people)
    orgs = api.post("/organisations/lookup", json={"schoolUnitCodes": ["87654321"]}).json()
    assert ids(orgs) == {school.ekgymnasiet}
    duties = api.post("/duties/lookup", json={"ids": [school.duties["lars"]]}).json()
    assert ids(duties) == {school.duties["lars"]}
    groups = api.post("/groups/lookup", json={"ids": list(school.groups.values())}).json()
    assert ids(groups) == set(school.groups.values())
    api.post("/groups/lookup", json={"civicNos": []}, expect=400)


# --- paging -----------------------------------------------------------------------------------


def add_students(server: SS12000Server, school: DemoSchool, count: int) -> list[str]:
    return [
        server.add_person(
            f"Elev{i:02d}",
            "Testsson",
            civic_no=civic_no("20160101", f"{100 + i:03d}"),
            security_marking="Ingen",
        )["id"]
        for i in range(count)
    ]


def test_paging_follows_opaque_page_tokens(
    api: SpecClient, server: SS12000Server, school: DemoSchool
) -> None:
    add_students(server, school, 8)  # 9 + 8 = 17 persons
    server.clear_requests()
    pages = api.walk("/persons", params=[("limit", "4"), ("expand", "duties")])
    assert [len(p["data"]) for p in pages] == [4, 4, 4, 4, 1]
    assert pages[-1]["pageToken"] is None
    assert all(isinstance(p["pageToken"], str) for p in pages[:-1])
    seen = [person["id"] for page in pages for person in page["data"]]
    assert len(seen) == len(set(seen)) == 17
    assert all("duties" in person["_embedded"] for page in pages for person in page["data"])
    log = server.requests_to("/persons")
    assert [r.status for r in log] == [200] * 5
    assert log[0].query == {"limit": ["4"], "expand": ["duties"]}
    assert all(set(r.query) == {"pageToken"} for r in log[1:])
    # A token is opaque: it reveals nothing readable about the query.
    assert "duties" not in pages[0]["pageToken"]


def test_page_tokens_refuse_other_filters(api: SpecClient, server: SS12000Server) -> None:
    token = api.get("/persons", params={"limit": 2}).json()["pageToken"]
    for extra in (
        {"meta.modified.after": "2024-01-01T00:00:00Z"},
        {"sortkey": "ModifiedDesc"},
        {"expand": "duties"},
    ):
        refused = api.get("/persons", params={"pageToken": token, **extra}, expect=400)
        assert refused.json()["code"] == "invalid_filter"
    assert len(api.data("/persons", params={"pageToken": token, "limit": 5})) == 5
    server.page_token_extra_params = {"expand"}
    api.get("/persons", params={"pageToken": token, "expand": "duties"})
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert api.get("/persons", params={"pageToken": tampered}, expect=400).json()["code"] == (
        "invalid_page_token"
    )
    api.get("/duties", params={"pageToken": token}, expect=400)
    api.get("/persons", params={"limit": 0}, expect=400)
    api.get("/persons", params={"limit": "ten"}, expect=400)


def test_server_side_page_size_and_absent_last_token(
    api: SpecClient, server: SS12000Server
) -> None:
    server.max_page_size = 4
    pages = api.walk("/persons")  # no limit asked for: the server still pages
    assert [len(p["data"]) for p in pages] == [4, 4, 1]
    assert len(api.get("/persons", params={"limit": 100}).json()["data"]) == 4
    server.omit_null_page_token = True
    last = api.walk("/persons")[-1]
    assert "pageToken" not in last


def test_paging_is_stable_when_data_changes_between_pages(
    api: SpecClient, server: SS12000Server, school: DemoSchool
) -> None:
    first = api.get("/persons", params={"limit": 3}).json()
    server.delete("persons", first["data"][0]["id"])
    server.update("persons", first["data"][1]["id"], givenName="Ändrad")
    rest = api.walk("/persons", params={"pageToken": first["pageToken"]})
    seen = ids(first["data"]) | {p["id"] for page in rest for p in page["data"]}
    assert seen == school.person_ids


# --- change tracking and deletions ------------------------------------------------------------


def test_change_tracking_by_meta_modified(
    api: SpecClient, server: SS12000Server, school: DemoSchool
) -> None:
    before = {p["id"]: p for p in api.data("/persons")}
    watermark = max(before.values(), key=lambda p: parse_rfc3339(p["meta"]["modified"]))
    mark = watermark["meta"]["modified"]
    assert api.data("/persons", params={"meta.modified.after": mark}) == []

    bjorn = school.students["bjorn"]
    changed = server.update("persons", bjorn, securityMarking="Skyddad folkbokföring")
    assert changed["meta"]["created"] == before[bjorn]["meta"]["created"]
    assert parse_rfc3339(changed["meta"]["modified"]) > parse_rfc3339(mark)
    newcomer = add_students(server, school, 1)[0]
    removed = server.update("persons", school.students["astrid"], securityMarking=None)
    assert "securityMarking" not in removed

    delta = api.data("/persons", params={"meta.modified.after": mark})
    assert ids(delta) == {bjorn, newcomer, school.students["astrid"]}
    assert next(p for p in delta if p["id"] == bjorn)["securityMarking"] == "Skyddad folkbokföring"
    # The same instant written with another offset selects the same.
    local = parse_rfc3339(mark).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert ids(api.data("/persons", params={"meta.modified.after": local})) == ids(delta)
    # Exclusive "after", inclusive "before".
    exact = changed["meta"]["modified"]
    assert bjorn not in ids(api.data("/persons", params={"meta.modified.after": exact}))
    assert bjorn in ids(api.data("/persons", params={"meta.modified.before": exact}))
    # Incremental queries page too; the token carries the filter.
    pages = api.walk("/persons", params={"meta.modified.after": mark, "limit": 1})
    assert [len(p["data"]) for p in pages] == [1, 1, 1]
    assert set().union(*(ids(p["data"]) for p in pages)) == ids(delta)
    # RFC 3339 only: no offset, or a '+' left unencoded (it reads as a space), is a 400.
    api.get("/persons", params={"meta.modified.after": "2024-08-01T10:00:00"}, expect=400)
    raw = api.http.get(
        f"{server.base_url}/persons?meta.modified.after=2024-08-01T10:00:00+02:00",
        headers={"Authorization": f"Bearer {api.token}"},
    )
    api.spec.check_response("GET", "/persons", raw)
    assert raw.status_code == 400


@pytest.mark.parametrize("kind", ["organisations", "duties", "groups"])
def test_change_tracking_on_other_listings(
    api: SpecClient, server: SS12000Server, kind: str
) -> None:
    mark = server.stamp()
    target = server.all(kind)[-1]
    server.touch(kind, target["id"])
    assert ids(api.data(f"/{kind}", params={"meta.modified.after": mark})) == {target["id"]}
    assert api.data(f"/{kind}", params={"meta.created.after": mark}) == []


def test_deleted_entities(api: SpecClient, server: SS12000Server, school: DemoSchool) -> None:
    before = api.get("/deletedEntities").json()
    assert before == {
        "data": {
            "organisations": [],
            "persons": [],
            "duties": [],
            "groups": [],
            "activitites": [],  # sic: the spec's spelling
        },
        "pageToken": None,
    }
    mark = server.stamp()
    server.delete("persons", school.students["elin"])
    server.delete("duties", school.duties["maria"])
    server.delete("groups", school.groups["NA24a"])

    chosen = api.get(
        "/deletedEntities", params=[("after", mark), ("entities", "Person"), ("entities", "Duty")]
    ).json()
    assert chosen == {
        "data": {"persons": [school.students["elin"]], "duties": [school.duties["maria"]]},
        "pageToken": None,
    }
    everything = api.get("/deletedEntities", params={"after": mark}).json()["data"]
    assert everything["groups"] == [school.groups["NA24a"]]
    later = server.stamp()
    empty: dict[str, list[str]] = {
        "organisations": [],
        "persons": [],
        "duties": [],
        "groups": [],
        "activitites": [],
    }
    assert api.get("/deletedEntities", params={"after": later}).json()["data"] == empty
    pages = api.walk("/deletedEntities", params={"after": mark, "limit": 1})
    assert [p["data"] for p in pages] == [
        {**empty, "persons": [school.students["elin"]]},
        {**empty, "duties": [school.duties["maria"]]},
        {**empty, "groups": [school.groups["NA24a"]]},
    ]
    server.max_page_size = 2  # no limit asked for: the server still pages, as for listings
    capped = api.walk("/deletedEntities", params={"after": mark})
    assert [sum(map(len, p["data"].values())) for p in capped] == [2, 1]
    refused = api.get(
        "/deletedEntities", params={"pageToken": capped[0]["pageToken"], "after": mark}, expect=400
    )
    assert refused.json()["code"] == "invalid_filter"
    server.max_page_size = None
    assert api.get("/deletedEntities", params={"entities": "Activity"}).json()["data"] == {
        "activitites": []  # sic: the spec's spelling
    }
    api.get("/deletedEntities", params={"entities": "Persons"}, expect=400)
    api.get("/deletedEntities", params={"after": "yesterday"}, expect=400)
    api.get(f"/persons/{school.students['elin']}", expect=404)
    assert school.students["elin"] not in ids(api.data("/persons"))


def test_timestamps_in_another_offset(spec: Spec) -> None:
    cet = timezone(timedelta(hours=1))
    with SS12000Server(render_tz=cet, static_token="t0ken-for-offsets") as srv:
        client = SpecClient(srv, spec, "t0ken-for-offsets")
        populate(srv)
        people = client.data("/persons")
        assert all(p["meta"]["modified"].endswith("+01:00") for p in people)
        newest = max(parse_rfc3339(p["meta"]["modified"]) for p in people)
        as_utc = newest.astimezone(UTC).isoformat().replace("+00:00", "Z")
        assert client.data("/persons", params={"meta.modified.after": as_utc}) == []
        earlier = (newest - timedelta(milliseconds=1)).astimezone(UTC).isoformat()
        assert len(client.data("/persons", params={"meta.modified.after": earlier})) == 1
        client.close()


# --- request log and faults -------------------------------------------------------------------


def test_request_log(api: SpecClient, server: SS12000Server) -> None:
    server.clear_requests()
    assert server.requests == []
    api.get("/persons", params=[("expand", "duties"), ("expand", "groupMemberships")])
    api.get("/persons", params={"meta.modified.after": "2024-08-01T00:00:00Z"})
    api.get("/groups", token=None, expect=401)
    log = server.requests
    assert [(r.method, r.path, r.status) for r in log] == [
        ("GET", "/persons", 200),
        ("GET", "/persons", 200),
        ("GET", "/groups", 401),
    ]
    assert log[0].query == {"expand": ["duties", "groupMemberships"]}
    assert log[0].raw_path == "/v2.0/persons"
    assert log[0].bearer == api.token
    assert not log[0].is_incremental
    assert log[1].is_incremental
    assert log[1].param("meta.modified.after") == "2024-08-01T00:00:00Z"
    assert log[2].bearer is None
    server.clear_requests()
    assert server.requests == []


def test_fault_once_then_recovers(api: SpecClient, server: SS12000Server) -> None:
    fault = server.fail("/persons", 500, times=1)
    failed = api.get("/persons", expect=500)
    assert failed.json()["code"] == "fault"
    api.get("/persons")
    assert fault.hits == 1
    api.get("/organisations")


def test_fault_on_a_page(api: SpecClient, server: SS12000Server) -> None:
    server.fail("/persons", 503, page=2, times=1, headers={"Retry-After": "1"})
    first = api.get("/persons", params={"limit": 4}).json()
    second = api.get("/persons", params={"pageToken": first["pageToken"]}, expect=503)
    assert second.headers["Retry-After"] == "1"
    again = api.get("/persons", params={"pageToken": first["pageToken"]}).json()
    assert len(again["data"]) == 4
    server.fail("/persons", 500, page=3)
    api.get("/persons", params={"pageToken": again["pageToken"]}, expect=500)
    api.get("/persons", params={"limit": 4})  # page 1 is not affected
    server.clear_faults()
    assert len(api.get("/persons", params={"pageToken": again["pageToken"]}).json()["data"]) == 1


def test_fault_kinds(api: SpecClient, server: SS12000Server, school: DemoSchool) -> None:
    server.fail("/groups", 403, times=1)
    assert api.get("/groups", expect=403).json()["code"] == "fault"
    server.fail("/persons/{id}", 500, times=1)
    api.get(f"/persons/{school.staff['lars']}", expect=500)
    api.get(f"/persons/{school.staff['lars']}")

    server.fail("/duties", disconnect=True, times=1)
    with pytest.raises(httpx.RemoteProtocolError):
        api.http.get(server.base_url + "/duties", headers={"Authorization": f"Bearer {api.token}"})
    assert server.requests[-1].status is None
    api.get("/duties")

    server.fail("/organisations", None, delay=0.3, times=1)
    started = time.monotonic()
    api.get("/organisations")
    assert time.monotonic() - started >= 0.3

    server.fail("/token", 500, times=1)
    assert fetch_token(server).status_code == 500
    assert fetch_token(server).status_code == 200


def test_the_token_url_and_base_url(server: SS12000Server) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v2\.0", server.base_url)
    assert server.token_url == server.base_url.removesuffix("/v2.0") + "/token"
    assert httpx.get(server.base_url.removesuffix("/v2.0") + "/persons").status_code == 404
    now = server.now()
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=5)


def test_stop_cuts_connections_and_restart_keeps_the_address(
    api: SpecClient, server: SS12000Server
) -> None:
    base_url = server.base_url
    api.get("/organisations")  # leaves a keep-alive connection in the client's pool
    server.stop()
    with pytest.raises(httpx.TransportError):
        api.http.get(base_url + "/organisations", headers={"Authorization": f"Bearer {api.token}"})
    server.start()
    assert server.base_url == base_url
    assert len(api.data("/organisations")) == 3  # same data, the token still valid
