"""A thin SCIM 2.0 client on httpx: discovery, search, create, patch, replace.

Requests are built with scim2-models. Responses are read as plain JSON and checked only for
what the connector needs (an `id`, a list of resources): vendors return extension attributes,
odd e-mail values and other things a strict model would refuse, and none of that is our
business. Retries (tenacity) cover connection errors, timeouts, 429 and 5xx, honouring
`Retry-After`. The bearer token lives only in the request headers, never in a log or error.

Nothing counts as done without a SCIM answer that says so: a 2xx whose body is not SCIM JSON
(an HTML page from a proxy or captive portal, an empty body where a resource is due, `{}` for a
list) is a `VendorError`, as are 401, 403, 407 and a failed TLS handshake. Those are the
vendor's trouble as a whole, not one object's, and end the cycle's applying.
"""

from __future__ import annotations

import email.utils
import json as jsonlib
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
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
from connector.targets.scim.bulk import BulkOperation, BulkResult, bulk_request, parse_bulk_response

log = structlog.get_logger(__name__)

SCIM_JSON = "application/scim+json"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
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


class _RetryableStatus(Exception):
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        super().__init__(f"HTTP {response.status_code}")


@dataclass(frozen=True, slots=True)
class ServerFeatures:
    patch: bool
    bulk: bool
    bulk_max_operations: int
    bulk_max_payload: int
    filter: bool
    filter_max_results: int
    etag: bool

    @classmethod
    def from_config(cls, data: dict[str, Any]) -> ServerFeatures:
        def supported(name: str) -> bool:
            part = data.get(name)
            return bool(part.get("supported")) if isinstance(part, dict) else False

        bulk = data.get("bulk") if isinstance(data.get("bulk"), dict) else {}
        filters = data.get("filter") if isinstance(data.get("filter"), dict) else {}
        return cls(
            patch=supported("patch"),
            bulk=supported("bulk"),
            bulk_max_operations=int(bulk.get("maxOperations") or 0),
            bulk_max_payload=int(bulk.get("maxPayloadSize") or 0),
            filter=supported("filter"),
            filter_max_results=int(filters.get("maxResults") or 0),
            etag=supported("etag"),
        )


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


class ScimClient:
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
    ) -> None:
        headers = {"Accept": SCIM_JSON, "User-Agent": "connector/0.1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify: bool | ssl.SSLContext = verify_tls
        if verify_tls:
            # The system's trust store, or the CA file given; TLS 1.2 at least.
            verify = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
            verify.minimum_version = ssl.TLSVersion.TLSv1_2
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=timeout,
            verify=verify,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        )
        self._max_retries = max_retries
        self._rate = RateLimiter(rate_limit) if rate_limit > 0 else None
        self._lock = threading.Lock()
        self.requests_by_method: Counter[str] = Counter()
        self._features: ServerFeatures | None = None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ScimClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------

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
        """Send with retries. `template` (e.g. /Users/{id}) is what logs show instead of the path."""
        shown = template or path
        sent = 0

        def attempt() -> httpx.Response:
            nonlocal sent
            if self._rate is not None:
                self._rate.acquire()
            with self._lock:
                self.requests_by_method[method] += 1
            sent += 1
            extra = dict(headers or {})
            if json is not None:
                extra["Content-Type"] = SCIM_JSON
            response = self._http.request(
                method, path.lstrip("/"), json=json, params=params, headers=extra or None
            )
            if response.status_code in RETRYABLE_STATUS:
                raise _RetryableStatus(response)
            return response

        def before_sleep(state: RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome else None
            status = exc.response.status_code if isinstance(exc, _RetryableStatus) else None
            log.warning(
                "scim.request.retrying",
                method=method,
                path=shown,
                status=status,
                error=None if status else type(exc).__name__,
                attempt=state.attempt_number,
                wait_seconds=round(state.upcoming_sleep, 2),
            )

        retrying = Retrying(
            stop=stop_after_attempt(self._max_retries + 1),
            retry=retry_if_exception(_is_retryable if idempotent else _is_retryable_unsent),
            wait=_Wait(),
            before_sleep=before_sleep,
            reraise=True,
            sleep=time.sleep,
        )
        try:
            response = retrying(attempt)
        except _RetryableStatus as exc:
            response = exc.response
        except httpx.TransportError as exc:
            tls = tls_failure(exc)
            log.error(
                "scim.request.failed",
                method=method,
                path=shown,
                status=None,
                error=tls or type(exc).__name__,
                attempts=sent,
            )
            if tls is not None:
                raise VendorError(method, shown, None, tls) from None
            raise ScimError(
                method, shown, None, f"{type(exc).__name__}: connection failed"
            ) from None
        status = response.status_code
        if status not in expect:
            detail, scim_type = _error_detail(response)
            log.warning(
                "scim.request.failed",
                method=method,
                path=shown,
                status=status,
                scim_type=scim_type,
                attempts=sent,
            )
            if status in VENDOR_WIDE_STATUS:
                raise VendorError(
                    method, shown, status, f"{detail} ({VENDOR_WIDE_STATUS[status]})", scim_type
                )
            raise ScimError(method, shown, status, detail, scim_type)
        if response.content:
            content_type = response.headers.get("Content-Type", "")
            if not _is_json_type(content_type) and not (
                not content_type and _parses_as_object(response.content)
            ):
                log.warning(
                    "scim.request.failed",
                    method=method,
                    path=shown,
                    status=status,
                    error="not SCIM",
                    attempts=sent,
                )
                raise VendorError(
                    method,
                    shown,
                    status,
                    f"answered with {content_type.split(';')[0] or 'no content type'}, not SCIM "
                    "(a proxy or a login page in the way?)",
                )
        return response

    def _json(self, response: httpx.Response, method: str, shown: str) -> dict[str, Any]:
        if not response.content:
            raise VendorError(
                method, shown, response.status_code, "answered with an empty body, not SCIM"
            )
        try:
            body = response.json()
        except ValueError:
            raise ScimError(method, shown, response.status_code, "response is not JSON") from None
        if not isinstance(body, dict):
            raise ScimError(method, shown, response.status_code, "response is not a JSON object")
        return body

    def _list(
        self, response: httpx.Response, method: str, shown: str
    ) -> tuple[int, list[dict[str, Any]]]:
        """(totalResults, the resources with an id) of a ListResponse. An answer without
        totalResults (`{}`) is not a list at all, and an empty one must say it is empty."""
        body = self._json(response, method, shown)
        total = body.get("totalResults")
        resources = body.get("Resources", [])
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise VendorError(
                method, shown, response.status_code, "a list answer without totalResults, not SCIM"
            )
        if not isinstance(resources, list):
            raise ScimError(method, shown, response.status_code, "Resources is not a list")
        return total, resources

    def _resource(self, response: httpx.Response, method: str, shown: str) -> dict[str, Any]:
        body = self._json(response, method, shown)
        if not isinstance(body.get("id"), str) or not body["id"]:
            raise ScimError(method, shown, response.status_code, "response has no resource id")
        etag = response.headers.get("ETag")
        if etag:
            meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
            body["meta"] = {**meta, "version": meta.get("version") or etag}
        return body

    # -- SCIM operations ------------------------------------------------------------------

    def features(self) -> ServerFeatures:
        if self._features is None:
            path = "/ServiceProviderConfig"
            body = self._json(self.request("GET", path), "GET", path)
            self._features = ServerFeatures.from_config(body)
        return self._features

    def search(
        self, resource_type: str, filter_: str, *, attributes: list[str] | None = None
    ) -> list[dict[str, Any]]:
        path = f"/{resource_type}"
        params: dict[str, Any] = {"filter": filter_}
        if attributes:
            params["attributes"] = ",".join(attributes)
        response = self.request("GET", path, template=f"{path}?filter", params=params)
        _, resources = self._list(response, "GET", path)
        return [r for r in resources if isinstance(r, dict) and isinstance(r.get("id"), str)]

    def get(self, resource_type: str, vendor_id: str) -> dict[str, Any]:
        template = f"/{resource_type}/{{id}}"
        response = self.request("GET", f"/{resource_type}/{vendor_id}", template=template)
        return self._resource(response, "GET", template)

    def create(self, resource_type: str, payload: dict[str, Any]) -> dict[str, Any]:
        path = f"/{resource_type}"
        response = self.request("POST", path, json=payload, expect=(201, 200), idempotent=False)
        return self._resource(response, "POST", path)

    def patch(
        self,
        resource_type: str,
        vendor_id: str,
        payload: dict[str, Any],
        *,
        if_match: str | None = None,
    ) -> str | None:
        """PATCH; with `if_match`, only if the resource is still at that version (else 412).
        Returns the new version (ETag) when the server gives one."""
        template = f"/{resource_type}/{{id}}"
        response = self.request(
            "PATCH",
            f"/{resource_type}/{vendor_id}",
            template=template,
            json=payload,
            expect=(200, 204),
            headers={"If-Match": if_match} if if_match else None,
        )
        if response.status_code == 200:
            # RFC 7644 section 3.5.2: 200 carries the resource (else 204); anything else
            # cannot be shown to have changed it.
            resource = self._resource(response, "PATCH", template)
            return response.headers.get("ETag") or _version_of(resource)
        return response.headers.get("ETag")

    def replace(
        self,
        resource_type: str,
        vendor_id: str,
        payload: dict[str, Any],
        *,
        if_match: str | None = None,
    ) -> dict[str, Any]:
        template = f"/{resource_type}/{{id}}"
        response = self.request(
            "PUT",
            f"/{resource_type}/{vendor_id}",
            template=template,
            json=payload,
            headers={"If-Match": if_match} if if_match else None,
        )
        return self._resource(response, "PUT", template)

    def delete(self, resource_type: str, vendor_id: str) -> None:
        template = f"/{resource_type}/{{id}}"
        self.request(
            "DELETE", f"/{resource_type}/{vendor_id}", template=template, expect=(204, 200)
        )

    def bulk(self, operations: list[BulkOperation]) -> list[BulkResult]:
        """Send operations as one Bulk request; one result per operation, in order. Never
        retried once it may have reached the vendor (it may hold creates)."""
        path = "/Bulk"
        response = self.request(
            "POST", path, json=bulk_request(operations), expect=(200,), idempotent=False
        )
        return parse_bulk_response(self._json(response, "POST", path), len(operations))

    def count(self, resource_type: str) -> int:
        """How many resources of this type the vendor lists (its totalResults)."""
        path = f"/{resource_type}"
        params = {"startIndex": 1, "count": 1}
        response = self.request("GET", path, template=f"{path}?page", params=params)
        return self._list(response, "GET", path)[0]

    def list_all(self, resource_type: str, *, page_size: int = 200) -> Iterator[dict[str, Any]]:
        """Every resource, page by page (startIndex/count, RFC 7644 section 3.4.2.4).

        A page that fails fails the whole listing, and so does a listing that ends before
        its totalResults or reads more than it: a partial list must never pass for the whole.
        """
        path = f"/{resource_type}"
        start, read, total = 1, 0, 0
        while True:
            params = {"startIndex": start, "count": page_size}
            response = self.request("GET", path, template=f"{path}?page", params=params)
            total, resources = self._list(response, "GET", path)
            for resource in resources:
                read += 1
                if isinstance(resource, dict) and isinstance(resource.get("id"), str):
                    yield resource
            start += len(resources)
            if start > total:
                break
            if not resources:
                raise ScimError(
                    "GET",
                    path,
                    200,
                    f"the listing ended after {read} of the {total} resources it announced",
                )
        if read != total:
            raise ScimError(
                "GET", path, 200, f"the listing held {read} resources but announced {total}"
            )


def _version_of(resource: dict[str, Any]) -> str | None:
    meta = resource.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    return str(version) if version else None


def _parses_as_object(content: bytes) -> bool:
    try:
        return isinstance(jsonlib.loads(content), dict)
    except ValueError:
        return False
