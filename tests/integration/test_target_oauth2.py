"""A SCIM target with OAuth2 client credentials (`oauth2:`), against a real local token endpoint
and an API that accepts only the tokens it issued: the token is fetched once and reused, renewed
after the API refuses it (401), and a refused client is a clear error without the secret."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from connector.config import ScimTargetConfig
from connector.targets.scim.target import make_client
from connector.targets.scim.transport import VendorError
from tests.support.paths import DEFAULT_MAPPING

CLIENT_ID, SECRET = "kommunen", "s3cret-client-value"


class TokenAndApi:
    """/token hands out tokens to the right client; /scim/v2/* answers only valid ones."""

    def __init__(self) -> None:
        self.valid: set[str] = set()
        self.issued = 0
        self.forms: list[dict[str, list[str]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/scim+json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                owner.forms.append(form)
                if form.get("client_id") != [CLIENT_ID] or form.get("client_secret") != [SECRET]:
                    self._answer(401, {"error": "invalid_client"})
                    return
                token = secrets.token_hex(8)
                owner.valid.add(token)
                owner.issued += 1
                self._answer(200, {"access_token": token, "expires_in": 3600})

            def do_GET(self) -> None:
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                if token not in owner.valid:
                    self._answer(401, {"detail": "invalid token", "status": "401"})
                    return
                self._answer(200, {"schemas": [], "patch": {"supported": True}})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> TokenAndApi:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def server() -> Iterator[TokenAndApi]:
    with TokenAndApi() as running:
        yield running


def target(server: TokenAndApi, secret: str = SECRET) -> ScimTargetConfig:
    return ScimTargetConfig.model_validate(
        {
            "name": "vendor",
            "base_url": f"{server.url}/scim/v2",
            "mapping": str(DEFAULT_MAPPING),
            "max_retries": 0,
            "oauth2": {
                "token_url": f"{server.url}/token",
                "client_id": CLIENT_ID,
                "client_secret": secret,
                "scope": "scim",
            },
        }
    )


def test_the_token_is_fetched_once_reused_and_renewed_after_a_401(server: TokenAndApi) -> None:
    client = make_client(target(server))
    try:
        for _ in range(3):
            client.request("GET", "/ServiceProviderConfig")
        assert server.issued == 1
        assert server.forms[0]["scope"] == ["scim"]
        server.valid.clear()  # the vendor revokes it
        client.request("GET", "/ServiceProviderConfig")
        assert server.issued == 2
    finally:
        client.close()


def test_a_refused_client_is_a_clear_error_without_the_secret(server: TokenAndApi) -> None:
    client = make_client(target(server, secret="wrong-secret-value"))
    try:
        with pytest.raises(VendorError) as refused:
            client.request("GET", "/ServiceProviderConfig")
    finally:
        client.close()
    assert "invalid_client" in str(refused.value)
    assert "wrong-secret-value" not in str(refused.value)
    assert server.issued == 0


def test_a_token_and_oauth2_together_are_refused(server: TokenAndApi) -> None:
    data = target(server).model_dump(mode="json", by_alias=True)
    data["oauth2"]["client_secret"] = SECRET
    data["token"] = "t0ken"
    with pytest.raises(ValueError, match="either a token"):
        ScimTargetConfig.model_validate(data)
