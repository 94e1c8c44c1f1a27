"""OAuth2 client credentials (RFC 6749, section 4.4), shared by whatever talks HTTP with one
(an SS 12000 source, a SCIM or EGIL target): one token, cached until shortly before it expires,
renewed early or on demand (after a 401). The secret goes only into the token request's form."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Generator

import httpx


class TokenError(Exception):
    """No token: the endpoint cannot be reached or refused the client (no secret in it)."""


def renewal_margin(lifetime: float) -> float:
    """How early to renew, so a token never expires between the check and the request:
    in proportion to its lifetime, so a short-lived token still serves most of its life."""
    return max(5.0, lifetime / 10)


class ClientCredentials:
    def __init__(
        self,
        token_url: str,
        client_id: str,
        secret: Callable[[], str],
        scope: str | None,
        http: httpx.Client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._token_url, self._client_id, self._secret, self._scope = (
            token_url,
            client_id,
            secret,
            scope,
        )
        self._http = http
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def token(self, *, renew: bool = False) -> str:
        with self._lock:
            if renew or self._token is None or self._clock() >= self._renew_at:
                self._token = self._fetch()
            return self._token

    def _fetch(self) -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._secret(),
        }
        if self._scope:
            form["scope"] = self._scope
        try:
            response = self._http.post(self._token_url, data=form)
        except httpx.HTTPError as exc:
            raise TokenError(f"token endpoint: {type(exc).__name__}") from None
        if response.status_code != 200:
            error = ""
            with contextlib.suppress(ValueError, AttributeError):
                error = str(response.json().get("error", ""))
            hint = " (wrong client id or secret?)" if error == "invalid_client" else ""
            raise TokenError(
                f"token endpoint refused the client: {response.status_code} {error}{hint}"
            )
        try:
            body = response.json()
            lifetime = float(body.get("expires_in", 300))
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise TokenError("token endpoint: the answer holds no access_token") from None
        self._renew_at = self._clock() + lifetime - renewal_margin(lifetime)
        return token


class BearerFromClientCredentials(httpx.Auth):
    """httpx auth: the token on every request; after a 401, one renewal and one retry."""

    def __init__(self, credentials: ClientCredentials, http: httpx.Client | None = None) -> None:
        self._credentials = credentials
        self._http = http  # the token endpoint's client, closed with this

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._credentials.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self._credentials.token(renew=True)}"
            yield request
