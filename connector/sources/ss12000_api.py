"""Talking to an SS 12000 API: the bearer token (static or OAuth2 client credentials), GETs that
fail as a whole, and listings followed page by page (`pageToken`) to the end."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from connector.config import Ss12000SourceConfig
from connector.oauth2 import ClientCredentials, TokenError

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


class TokenSource:
    """The bearer token: static, or OAuth2 client credentials (connector/oauth2.py)."""

    def __init__(
        self,
        config: Ss12000SourceConfig,
        http: httpx.Client,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        auth = config.auth
        self._static = auth.static_token()
        self._oauth = (
            ClientCredentials(auth.token_url, auth.client_id, auth.secret, auth.scope, http, clock)
            if auth.token_url is not None and auth.client_id is not None
            else None
        )

    def token(self, *, renew: bool = False) -> str:
        if self._static:
            return self._static
        assert self._oauth is not None  # the config requires one of the two
        try:
            return self._oauth.token(renew=renew)
        except TokenError as exc:
            raise ReadFailed(str(exc)) from None


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
