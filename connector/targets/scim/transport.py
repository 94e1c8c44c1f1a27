"""HTTP to a SCIM vendor: retries, pacing, and the checks every answer passes before anyone
reads it.

Retries (tenacity) cover connection errors, timeouts, 429 and 5xx, honouring `Retry-After`; a
POST is retried only when it surely did not run. The bearer token lives only in the request
headers, never in a log or error. 401, 403, 407, a failed TLS handshake and a 2xx whose body is
not SCIM JSON (an HTML page from a proxy or captive portal) are a `VendorError`: the vendor's
trouble as a whole, not one object's.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connector.errors import TargetError
from connector.oauth2 import BearerFromClientCredentials, TokenError
from connector.targets.tls import TlsSettings, client_context, pinned_transport

log = structlog.get_logger(__name__)

SCIM_JSON = "application/scim+json"

MAX_RETRY_AFTER_SECONDS = 300.0

RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class ScimError(TargetError):
    """A SCIM request failed for good. Carries no token and no request body."""

    def __init__(
        self, method: str, path: str, status: int | None, detail: str, scim_type: str | None = None
    ) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        where = f"{method} {path}"
        super().__init__(f"{where}: {status or 'no response'} {detail}".strip())


class VendorError(ScimError):
    """The vendor as a whole cannot be worked with: it refused the connector (401, 403, 407),
    the TLS handshake failed, or it answered with something that is not SCIM (a proxy or a
    login page in the way). Every other request would meet the same, so the cycle's applying
    ends, and nothing is held against the object that happened to meet it."""


# Refusals of the connector itself, not of one object: the token, its rights, a proxy.
VENDOR_WIDE_STATUS = {
    401: "the vendor refused the token (wrong or expired?)",
    403: "the vendor refused access (does the token have the rights?)",
    407: "a proxy in the way asks for authentication",
}


def tls_failure(exc: BaseException) -> str | None:
    """The TLS problem behind a connection error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return f"TLS failed: {getattr(seen, 'reason', None) or type(seen).__name__}"
        seen = seen.__cause__ or seen.__context__
    return None


def _is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media in ("application/scim+json", "application/json") or media.endswith("+json")


def _parses_as_object(content: bytes) -> bool:
    try:
        return isinstance(jsonlib.loads(content), dict)
    except ValueError:
        return False


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - datetime.now(UTC)).total_seconds(), 0.0), MAX_RETRY_AFTER_SECONDS)


class RateLimiter:
    """At most `rate` requests per second across all threads: a token bucket holding one
    second's worth, so short bursts pass and a steady stream is paced."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._tokens = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= 1  # reserve this request's slot, even if it is in the future
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, httpx.TransportError):
        return tls_failure(exc) is None  # a certificate does not get better by asking again
    return isinstance(exc, _RetryableStatus)


def _is_retryable_unsent(exc: BaseException) -> bool:
    """For requests that must not run twice (POST): retry only what surely did not run.

    A connection that was never made, or a 429/503 (the server refusing to work now). After a
    timeout, a dropped connection or another 5xx the server may have done the work: the
    caller looks the object up instead of sending it again.
    """
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return tls_failure(exc) is None
    return isinstance(exc, _RetryableStatus) and exc.response.status_code in (429, 503)


class _Wait:
    """Retry-After when the server gives one, else exponential backoff with jitter."""

    def __init__(self) -> None:
        self._backoff = wait_exponential_jitter(multiplier=0.5, max=30.0, jitter=0.5)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _RetryableStatus):
            retry_after = parse_retry_after(exc.response.headers.get("Retry-After"))
            if retry_after is not None:
                return retry_after
        return float(self._backoff(state))


def _error_detail(response: httpx.Response) -> tuple[str, str | None]:
    try:
        body = response.json()
    except ValueError:
        return (response.reason_phrase or "error", None)
    if isinstance(body, dict):
        detail = str(body.get("detail") or response.reason_phrase or "error")
        scim_type = body.get("scimType")
        return (detail[:300], str(scim_type) if scim_type else None)
    return (response.reason_phrase or "error", None)


@dataclass(frozen=True, slots=True)
class Call:
    """One request as the caller asked for it. `shown` (e.g. /Users/{id}) is what logs and
    errors show instead of the path."""

    method: str
    path: str
    shown: str
    json: Any = None
    params: dict[str, Any] | None = None
    expect: tuple[int, ...] = (200,)
    headers: dict[str, str] | None = None
    idempotent: bool = True


class Transport:
    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        timeout: float = 30.0,
        verify_tls: bool = True,
        ca_file: Path | None = None,
        max_retries: int = 4,
        rate_limit: float = 0.0,
        tls: TlsSettings | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        headers = {"Accept": SCIM_JSON, "User-Agent": "connector/0.1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        # The system's trust store, or the CA file given; TLS 1.2 at least; mutual TLS and
        # the server's key pinned where configured.
        verify = client_context(verify_tls, ca_file, tls)
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=16)
        pinned = None
        if tls is not None and tls.pins is not None and isinstance(verify, ssl.SSLContext):
            pinned = pinned_transport(verify, tls.pins, limits)
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=timeout,
            verify=verify,
            limits=limits,
            transport=pinned,
            auth=auth,
        )
        self._auth = auth
        self._max_retries = max_retries
        self._rate = RateLimiter(rate_limit) if rate_limit > 0 else None
        self._lock = threading.Lock()
        self.requests_by_method: Counter[str] = Counter()

    def close(self) -> None:
        self._http.close()
        if isinstance(self._auth, BearerFromClientCredentials):
            self._auth.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        template: str | None = None,
        json: Any = None,
        params: dict[str, Any] | None = None,
        expect: tuple[int, ...] = (200,),
        headers: dict[str, str] | None = None,
        idempotent: bool = True,
    ) -> httpx.Response:
        """Send with retries; the answer once it is one the caller can read."""
        call = Call(method, path, template or path, json, params, expect, headers, idempotent)
        response, sent = self._send(call)
        self._check_status(call, response, sent)
        self._check_body(call, response, sent)
        return response

    def _send(self, call: Call) -> tuple[httpx.Response, int]:
        sent = 0

        def attempt() -> httpx.Response:
            nonlocal sent
            if self._rate is not None:
                self._rate.acquire()
            with self._lock:
                self.requests_by_method[call.method] += 1
            sent += 1
            extra = dict(call.headers or {})
            if call.json is not None:
                extra["Content-Type"] = SCIM_JSON
            response = self._http.request(
                call.method,
                call.path.lstrip("/"),
                json=call.json,
                params=call.params,
                headers=extra or None,
            )
            if response.status_code in RETRYABLE_STATUS:
                raise _RetryableStatus(response)
            return response

        retrying = Retrying(
            stop=stop_after_attempt(self._max_retries + 1),
            retry=retry_if_exception(_is_retryable if call.idempotent else _is_retryable_unsent),
            wait=_Wait(),
            before_sleep=_log_retry(call),
            reraise=True,
            sleep=time.sleep,
        )
        try:
            return retrying(attempt), sent
        except _RetryableStatus as exc:
            return exc.response, sent
        except TokenError as exc:  # oauth2: no token, so no request could be sent
            log.error("scim.request.failed", method=call.method, path=call.shown, error=str(exc))
            raise VendorError(call.method, call.shown, None, str(exc)) from None
        except httpx.TransportError as exc:
            tls = tls_failure(exc)
            log.error(
                "scim.request.failed",
                method=call.method,
                path=call.shown,
                status=None,
                error=tls or type(exc).__name__,
                attempts=sent,
            )
            if tls is not None:
                raise VendorError(call.method, call.shown, None, tls) from None
            raise ScimError(
                call.method, call.shown, None, f"{type(exc).__name__}: connection failed"
            ) from None

    def _check_status(self, call: Call, response: httpx.Response, sent: int) -> None:
        status = response.status_code
        if status in call.expect:
            return
        detail, scim_type = _error_detail(response)
        log.warning(
            "scim.request.failed",
            method=call.method,
            path=call.shown,
            status=status,
            scim_type=scim_type,
            attempts=sent,
        )
        if status in VENDOR_WIDE_STATUS:
            raise VendorError(
                call.method,
                call.shown,
                status,
                f"{detail} ({VENDOR_WIDE_STATUS[status]})",
                scim_type,
            )
        raise ScimError(call.method, call.shown, status, detail, scim_type)

    def _check_body(self, call: Call, response: httpx.Response, sent: int) -> None:
        """A body that is there must be SCIM JSON: anything else is someone else answering."""
        if not response.content:
            return
        content_type = response.headers.get("Content-Type", "")
        if _is_json_type(content_type) or (
            not content_type and _parses_as_object(response.content)
        ):
            return
        log.warning(
            "scim.request.failed",
            method=call.method,
            path=call.shown,
            status=response.status_code,
            error="not SCIM",
            attempts=sent,
        )
        raise VendorError(
            call.method,
            call.shown,
            response.status_code,
            f"answered with {content_type.split(';')[0] or 'no content type'}, not SCIM "
            "(a proxy or a login page in the way?)",
        )


def _log_retry(call: Call) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        status = exc.response.status_code if isinstance(exc, _RetryableStatus) else None
        log.warning(
            "scim.request.retrying",
            method=call.method,
            path=call.shown,
            status=status,
            error=None if status else type(exc).__name__,
            attempt=state.attempt_number,
            wait_seconds=round(state.upcoming_sleep, 2),
        )

    return before_sleep
