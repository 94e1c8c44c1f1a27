"""Talking to an SS 12000 API: the bearer token (static or OAuth2 client credentials), GETs that
fail as a whole, and listings followed page by page (`pageToken`) to the end."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from connector.config import Ss12000SourceConfig

DELETED_ENTITY_NAMES = {
    "organisations": "Organisation",
    "persons": "Person",
    "duties": "Duty",
    "groups": "Group",
    "activities": "Activity",
}
# Where /deletedEntities lists a kind, if not under its own name: the spec spells it
# "activitites" (read under either name, should a server correct it).
DELETED_ENTITY_KEYS = {"activities": ("activitites", "activities")}

Params = list[tuple[str, str]]


class ReadFailed(Exception):
    """The read cannot complete; becomes a SourceError naming the source."""


def renewal_margin(lifetime: float) -> float:
    """How early to renew, so a token never expires between the check and the request:
    in proportion to its lifetime, so a short-lived token still serves most of its life."""
    return max(5.0, lifetime / 10)


class TokenSource:
    """OAuth2 client credentials: one token, cached until shortly before it expires (a token
    living no longer than the margin serves only the request it was fetched for)."""

    def __init__(
        self,
        config: Ss12000SourceConfig,
        http: httpx.Client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._auth = config.auth
        self._http = http
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def token(self, *, renew: bool = False) -> str:
        static = self._auth.static_token()
        if static:
            return static
        with self._lock:
            if renew or self._token is None or self._clock() >= self._renew_at:
                self._token = self._fetch()
            return self._token

    def _fetch(self) -> str:
        auth = self._auth
        assert auth.token_url is not None and auth.client_id is not None
        form = {
            "grant_type": "client_credentials",
            "client_id": auth.client_id,
            "client_secret": auth.secret(),
        }
        if auth.scope:
            form["scope"] = auth.scope
        try:
            response = self._http.post(auth.token_url, data=form)
        except httpx.HTTPError as exc:
            raise ReadFailed(f"token endpoint: {type(exc).__name__}") from None
        if response.status_code != 200:
            error = ""
            with contextlib.suppress(ValueError):
                error = str(response.json().get("error", ""))
            hint = " (wrong client id or secret?)" if error == "invalid_client" else ""
            raise ReadFailed(
                f"token endpoint refused the client: {response.status_code} {error}{hint}"
            )
        body = response.json()
        lifetime = float(body.get("expires_in", 300))
        self._renew_at = self._clock() + lifetime - renewal_margin(lifetime)
        return str(body["access_token"])


class Api:
    """One read's session with the API: an HTTP client and its token."""

    def __init__(self, config: Ss12000SourceConfig, clock: Callable[[], float]) -> None:
        self.config = config
        verify: bool | str = (
            str(config.ca_file) if (config.verify_tls and config.ca_file) else config.verify_tls
        )
        self.http = httpx.Client(
            timeout=config.timeout_seconds, verify=verify, headers={"Accept": "application/json"}
        )
        self.tokens = TokenSource(config, self.http, clock)

    def __enter__(self) -> Api:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.http.close()

    def get(self, path: str, params: Params) -> dict[str, Any]:
        url = f"{self.config.base_url}{path}"
        for attempt in (1, 2):
            try:
                response = self.http.get(
                    url,
                    params=tuple(params),  # a tuple: its type is covariant, a list is not
                    headers={"Authorization": f"Bearer {self.tokens.token(renew=attempt == 2)}"},
                )
            except httpx.HTTPError as exc:
                raise ReadFailed(f"GET {path}: {type(exc).__name__}") from None
            if response.status_code == 401 and attempt == 1:
                continue  # the token expired or was revoked: renew it once
            if response.status_code != 200:
                raise ReadFailed(f"GET {path}: HTTP {response.status_code}")
            try:
                body = response.json()
            except ValueError:
                raise ReadFailed(f"GET {path}: the answer is not JSON") from None
            if not isinstance(body, dict):
                raise ReadFailed(f"GET {path}: the answer is not a JSON object")
            return body
        raise ReadFailed(f"GET {path}: HTTP 401 after renewing the token")

    def pages(self, path: str, params: Params) -> Iterator[dict[str, Any]]:
        """Every page of a listing to the end (pageToken alone, plus limit)."""
        limit = ("limit", str(self.config.page_size))
        body = self.get(path, [*params, limit])
        while True:
            yield body
            token = body.get("pageToken")
            if not token:
                return
            body = self.get(path, [("pageToken", str(token)), limit])

    def items(self, path: str, params: Params) -> Iterator[dict[str, Any]]:
        """Every object of a listing, page by page."""
        for body in self.pages(path, params):
            data = body.get("data")
            if not isinstance(data, list):
                raise ReadFailed(f"GET {path}: no data list in the answer")
            yield from (item for item in data if isinstance(item, dict))

    def deleted(self, checkpoint: str, kinds: list[str]) -> dict[str, set[str]]:
        """Ids deleted since the checkpoint, per kind, from every page of /deletedEntities."""
        entities = [("entities", DELETED_ENTITY_NAMES[kind]) for kind in kinds]
        deleted: dict[str, set[str]] = {kind: set() for kind in kinds}
        for body in self.pages("/deletedEntities", [("after", checkpoint), *entities]):
            data = body.get("data")
            if not isinstance(data, dict):
                raise ReadFailed("GET /deletedEntities: no data object in the answer")
            for kind in kinds:
                for key in DELETED_ENTITY_KEYS.get(kind, (kind,)):
                    deleted[kind].update(str(obj_id) for obj_id in data.get(key) or [])
        return deleted
