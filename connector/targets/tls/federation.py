"""The vendor's server pins from a federation's signed metadata (FedTLS: Skolfederation's
"Moa"/Kontosynk metadata): a JWS whose payload lists the entities, their servers' base URIs
and key pins. It is used only once its signature is verified against the federation's keys
(the configured JWKS) and while it has not expired; it is fetched again every
`refresh_seconds`, and the last verified copy is cached (0600) for when the URL is down.

Fail closed: with no verified, unexpired document there are no pins, and nothing is sent.
"""

from __future__ import annotations

import json
import os
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import structlog
from jwcrypto import jwk, jws
from jwcrypto.common import JWException

from connector.config.tls import FederationConfig

log = structlog.get_logger(__name__)

# Clocks differ: a document issued a little "in the future" is still taken.
CLOCK_SKEW_SECONDS = 300


class MetadataError(ssl.SSLError):
    """No verified metadata (or no pins for the vendor in it): the target is refused, as a
    failed handshake is - never retried within the cycle."""

    def __init__(self, reason: str) -> None:
        self.reason = f"federation metadata: {reason}"
        super().__init__(self.reason)


def verified_payload(raw: str, keys: jwk.JWKSet, now: float) -> dict[str, Any]:
    """The metadata's payload, once its signature and validity are checked."""
    token = jws.JWS()
    try:
        token.deserialize(raw.strip())
        token.verify(keys)
    except (JWException, ValueError) as exc:
        raise MetadataError(f"the signature does not verify ({type(exc).__name__})") from None
    try:
        payload = json.loads(token.payload)
    except ValueError:
        raise MetadataError("the signed payload is not JSON") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("entities"), list):
        raise MetadataError("the signed payload lists no entities")
    expires, issued = payload.get("exp"), payload.get("iat")
    if not isinstance(expires, int | float) or expires <= now:
        raise MetadataError("the document has expired (or says no exp)")
    if isinstance(issued, int | float) and issued > now + CLOCK_SKEW_SECONDS:
        raise MetadataError("the document is issued in the future")
    return payload


def server_pins(payload: dict[str, Any], entity_id: str, base_url: str) -> frozenset[str]:
    """The sha256 pins of the entity's servers whose base URI the target's URL is under."""
    url = base_url.rstrip("/") + "/"
    for entity in payload["entities"]:
        if not isinstance(entity, dict) or entity.get("entity_id") != entity_id:
            continue
        return frozenset(
            str(pin["digest"])
            for server in entity.get("servers") or []
            if isinstance(server, dict)
            and url.startswith(str(server.get("base_uri", "")).rstrip("/") + "/")
            for pin in server.get("pins") or []
            if isinstance(pin, dict) and pin.get("alg") == "sha256" and pin.get("digest")
        )
    return frozenset()


class FederationPins:
    """The pins for one target, from the metadata kept fresh (thread-safe: connections of
    several request threads ask at once)."""

    def __init__(self, config: FederationConfig, base_url: str, target: str) -> None:
        self.config = config
        self.base_url = base_url
        self.target = target
        self._lock = threading.Lock()
        self._payload: dict[str, Any] | None = None
        self._fetched_at = -float("inf")

    def pins(self) -> frozenset[str]:
        with self._lock:
            now = time.time()
            if time.monotonic() - self._fetched_at >= self.config.refresh_seconds:
                self._refresh(now)
            payload = self._payload
            if payload is None or payload["exp"] <= now:
                payload = self._from_cache(now)
            found = server_pins(payload, self.config.entity_id, self.base_url)
        if not found:
            raise MetadataError(
                f"no sha256 pin for entity {self.config.entity_id} at {self.base_url}"
            )
        return found

    def _keys(self) -> jwk.JWKSet:
        try:
            return jwk.JWKSet.from_json(self.config.jwks_file.read_text(encoding="utf-8"))
        except (OSError, ValueError, JWException) as exc:
            raise MetadataError(f"the federation's keys cannot be read ({exc})") from None

    def _refresh(self, now: float) -> None:
        self._fetched_at = time.monotonic()  # a failure is not retried at every connection
        try:
            verify: ssl.SSLContext | bool = ssl.create_default_context(
                cafile=str(self.config.ca_file) if self.config.ca_file else None
            )
            answer = httpx.get(self.config.metadata_url, timeout=30.0, verify=verify)
            answer.raise_for_status()
            payload = verified_payload(answer.text, self._keys(), now)
        except (httpx.HTTPError, MetadataError) as exc:
            log.error(
                "federation.metadata_failed",
                target=self.target,
                error=getattr(exc, "reason", None) or type(exc).__name__,
                consequence="the last verified copy is used while it is valid; else nothing "
                "is sent",
            )
            return
        self._payload = payload
        self._write_cache(answer.text)
        log.info(
            "federation.metadata_verified",
            target=self.target,
            entities=len(payload["entities"]),
            expires=int(payload["exp"]),
        )

    def _write_cache(self, raw: str) -> None:
        path = self.config.cache_file
        if path is None:
            return
        temporary = path.with_name(path.name + ".tmp")
        descriptor = os.open(temporary, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(raw)
        temporary.replace(path)

    def _from_cache(self, now: float) -> dict[str, Any]:
        path: Path | None = self.config.cache_file
        if path is None or not path.is_file():
            raise MetadataError("no verified document (and no cached copy)")
        payload = verified_payload(path.read_text(encoding="utf-8"), self._keys(), now)
        self._payload = payload
        return payload
