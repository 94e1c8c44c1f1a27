"""The faithful EGIL test server itself (tests/fakes/egil.py): each rule of the profile it
enforces refuses what it should and takes a valid object, and mutual TLS is demanded in the
handshake. The EGIL target's tests are only as good as this server's rules. Students and
teachers are Users at one /Users endpoint, as at windermere, unless the server is told to split
them."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tests.fakes.egil import EXTENSION, EgilServer, EgilServerTLS

KEY = "egil-server-test-key"


def uid() -> str:
    return str(uuid.uuid4())


def ref(ident: str) -> dict[str, str]:
    return {"value": ident}


@pytest.fixture
def server() -> Iterator[EgilServer]:
    with EgilServer(api_key=KEY) as running:
        yield running


@pytest.fixture
def http(server: EgilServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}) as client:
        yield client


def school(http: httpx.Client, code: str = "12345678") -> str:
    ident = uid()
    body = {"externalId": ident, "displayName": "Ekeby skola", "schoolUnitCode": code}
    assert http.post("/SchoolUnits", json=body).status_code == 201
    return ident


def student(http: httpx.Client, school_id: str | None = None, endpoint: str = "Users") -> str:
    ident = uid()
    body: dict[str, Any] = {
        "externalId": ident,
        "userName": f"{ident[:8]}@edu.example.se",
        "name": {"givenName": "Elev", "familyName": "Test"},
        "displayName": "Test, Elev",
    }
    if school_id:
        body[EXTENSION] = {"enrolments": [{"value": school_id, "schoolYear": 7}]}
    assert http.post(f"/{endpoint}", json=body).status_code == 201
    return ident


def test_valid_objects_of_every_type_are_taken(server: EgilServer, http: httpx.Client) -> None:
    organisation = uid()
    assert (
        http.post(
            "/Organisations", json={"externalId": organisation, "displayName": "Kommunen"}
        ).status_code
        == 201
    )
    school_id = school(http)
    pupil = student(http, school_id)
    teacher = uid()
    teacher_body = {
        "externalId": teacher,
        "userName": "larare@edu.example.se",
        "name": {"givenName": "Lä", "familyName": "Rare"},
        "displayName": "Rare, Lä",
    }
    assert http.post("/Users", json=teacher_body).status_code == 201
    employment = uid()
    assert (
        http.post(
            "/Employments",
            json={
                "externalId": employment,
                "employedAt": ref(school_id),
                "user": ref(teacher),
                "employmentRole": "Lärare",
            },
        ).status_code
        == 201
    )
    group = uid()
    assert (
        http.post(
            "/StudentGroups",
            json={
                "externalId": group,
                "displayName": "7A",
                "owner": ref(school_id),
                "studentGroupType": "Klass",
                "studentMemberships": [ref(pupil)],
            },
        ).status_code
        == 201
    )
    activity = {
        "externalId": uid(),
        "displayName": "Matematik 7A",
        "owner": ref(school_id),
        "groups": [ref(group)],
        "teachers": [ref(employment)],
    }
    assert http.post("/Activities", json=activity).status_code == 201
    assert server.rejected == []
    assert set(server.objects("StudentGroups")) == {group}


@pytest.mark.parametrize(
    ("endpoint", "body", "why"),
    [
        ("Organisations", {"externalId": "not-a-uuid", "displayName": "x"}, "invalid UUID"),
        ("Organisations", {"externalId": "{id}"}, "missing required attribute displayName"),
        (
            "SchoolUnits",
            {"externalId": "{id}", "displayName": "x", "schoolUnitCode": "1234"},
            "invalid school unit code",
        ),
        (
            "Users",
            {"externalId": "{id}", "userName": "u", "name": {"givenName": "a"}, "displayName": "d"},
            "givenName and familyName",
        ),
        (
            "StudentGroups",
            {"externalId": "{id}", "displayName": "7A", "owner": {"value": "{missing}"}},
            "owner",
        ),
        (
            "Employments",
            {
                "externalId": "{id}",
                "employedAt": {"value": "{missing}"},
                "user": {"value": "{missing}"},
                "employmentRole": "Lärare",
            },
            "employedAt",
        ),
    ],
)
def test_what_the_profile_forbids_is_refused(
    server: EgilServer, http: httpx.Client, endpoint: str, body: dict[str, Any], why: str
) -> None:
    filled = _fill(body, {"{id}": uid(), "{missing}": uid()})

    answer = http.post(f"/{endpoint}", json=filled)

    assert answer.status_code == 400 and why in answer.json()["detail"]
    assert server.objects(endpoint) == {}


def _fill(value: Any, names: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return names.get(value, value) if isinstance(value, str) else value


def test_references_point_at_the_right_type(http: httpx.Client) -> None:
    school_id = school(http)
    other_school = school(http, "87654321")

    member_is_a_school = {
        "externalId": uid(),
        "displayName": "7A",
        "owner": ref(school_id),
        "studentMemberships": [ref(other_school)],
    }
    answer = http.post("/StudentGroups", json=member_is_a_school)

    assert answer.status_code == 400 and "not at Users" in answer.json()["detail"]


def test_split_user_endpoints_keep_students_and_teachers_apart() -> None:
    with (
        EgilServer(api_key=KEY, user_endpoints=("Students", "Teachers")) as server,
        httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}) as http,
    ):
        school_id = school(http)
        teacher = student(http, school_id, endpoint="Teachers")
        group = {
            "externalId": uid(),
            "displayName": "7A",
            "owner": ref(school_id),
            "studentMemberships": [ref(teacher)],
        }

        answer = http.post("/StudentGroups", json=group)

        assert answer.status_code == 400 and "not at Students" in answer.json()["detail"]
        assert http.post("/Users", json={}).status_code == 404
        pupil = student(http, school_id, endpoint="Students")
        group["studentMemberships"] = [ref(pupil)]
        assert http.post("/StudentGroups", json=group).status_code == 201


def test_a_body_that_is_not_scim_json_is_refused(server: EgilServer, http: httpx.Client) -> None:
    body = b'{"externalId": "%s", "displayName": "Kommunen"}' % uid().encode()

    as_text = http.post("/Organisations", content=body, headers={"Content-Type": "text/plain"})
    as_scim = http.post(
        "/Organisations", content=body, headers={"Content-Type": "application/scim+json"}
    )

    assert (as_text.status_code, as_scim.status_code) == (415, 201)
    assert len(server.objects("Organisations")) == 1


def test_ids_are_the_object_and_cannot_be_taken_twice_or_deleted_while_referenced(
    server: EgilServer, http: httpx.Client
) -> None:
    school_id = school(http)
    pupil = student(http, school_id)
    again = {"externalId": school_id, "displayName": "x", "schoolUnitCode": "12345678"}

    assert http.post("/SchoolUnits", json=again).status_code == 409
    assert http.put(f"/SchoolUnits/{uid()}", json=again).status_code == 404
    assert http.put(
        f"/SchoolUnits/{school_id}", json={**again, "externalId": uid()}
    ).status_code in (
        400,
        404,
    )
    assert http.delete(f"/SchoolUnits/{school_id}").status_code == 409  # the student's enrolment
    assert http.delete(f"/Users/{pupil}").status_code == 204
    assert http.delete(f"/SchoolUnits/{school_id}").status_code == 204
    assert http.delete(f"/SchoolUnits/{school_id}").status_code == 404
    assert [status for method, _, status in server.requests if method == "DELETE"] == [
        409,
        204,
        204,
        404,
    ]


def test_a_wrong_api_key_and_get_on_a_server_without_get_are_refused() -> None:
    with EgilServer(api_key=KEY, allow_get=False) as server:
        with httpx.Client(base_url=server.url, headers={"X-API-Key": "wrong"}) as wrong:
            assert wrong.post("/Organisations", json={}).status_code == 401
        with httpx.Client(base_url=server.url, headers={"X-API-Key": KEY}) as right:
            assert right.get("/Users").status_code == 405
        assert server.objects("Organisations") == {}


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_mutual_tls_is_demanded_in_the_handshake(ca: trustme.CA, tmp_path: Path) -> None:
    server_cert = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    server_cert.cert_chain_pems[0].write_to_path(cert)
    server_cert.private_key_pem.write_to_path(key)
    client_ca = tmp_path / "client-ca.pem"
    ca.cert_pem.write_to_path(client_ca)
    tls = EgilServerTLS(cert, key, client_ca)
    body = {"externalId": uid(), "displayName": "Kommunen"}

    with EgilServer(tls=tls) as server:
        plain = ssl.create_default_context(cafile=str(client_ca))
        with (
            httpx.Client(base_url=server.url, verify=plain) as no_cert,
            pytest.raises(httpx.TransportError),
        ):
            no_cert.post("/Organisations", json=body)
        stranger = trustme.CA().issue_cert("connector.kommun.example")
        wrong = ssl.create_default_context(cafile=str(client_ca))
        stranger.configure_cert(wrong)
        with (
            httpx.Client(base_url=server.url, verify=wrong) as wrong_cert,
            pytest.raises(httpx.TransportError),
        ):
            wrong_cert.post("/Organisations", json=body)
        right = ssl.create_default_context(cafile=str(client_ca))
        ca.issue_cert("connector.kommun.example").configure_cert(right)
        with httpx.Client(base_url=server.url, verify=right) as with_cert:
            assert with_cert.post("/Organisations", json=body).status_code == 201
        assert server.requests == [("POST", "/scim/v2/Organisations", 201)]
