"""A thin SCIM 2.0 client: discovery, search, create, patch, replace, delete, Bulk, paged
listings - over the transport in transport.py.

Requests are built with scim2-models. Responses are read as plain JSON and checked only for
what the connector needs (an `id`, a list of resources): vendors return extension attributes,
odd e-mail values and other things a strict model would refuse, and none of that is our
business. Nothing counts as done without a SCIM answer that says so: an empty body where a
resource is due, or `{}` for a list, is a `VendorError`.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

from connector.targets.scim.bulk import BulkOperation, BulkResult, bulk_request, parse_bulk_response
from connector.targets.scim.transport import (
    MAX_RETRY_AFTER_SECONDS,
    RateLimiter,
    ScimError,
    Transport,
    VendorError,
    parse_retry_after,
    tls_failure,
)

__all__ = [
    "MAX_RETRY_AFTER_SECONDS",
    "RateLimiter",
    "ScimClient",
    "ScimError",
    "ServerFeatures",
    "VendorError",
    "parse_retry_after",
    "tls_failure",
]


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

        bulk, filters = _section(data, "bulk"), _section(data, "filter")
        return cls(
            patch=supported("patch"),
            bulk=supported("bulk"),
            bulk_max_operations=int(bulk.get("maxOperations") or 0),
            bulk_max_payload=int(bulk.get("maxPayloadSize") or 0),
            filter=supported("filter"),
            filter_max_results=int(filters.get("maxResults") or 0),
            etag=supported("etag"),
        )


class ScimClient(Transport):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._features: ServerFeatures | None = None

    def __enter__(self) -> ScimClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

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
            meta = _section(body, "meta")
            body["meta"] = {**meta, "version": meta.get("version") or etag}
        return body

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
            return _etag(response) or _version_of(resource)
        return _etag(response)

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

    def list_all(
        self,
        resource_type: str,
        *,
        page_size: int = 200,
        on_page: Callable[[int, int], None] | None = None,
        concurrency: int = 1,
    ) -> Iterator[dict[str, Any]]:
        """Every resource, page by page (startIndex/count, RFC 7644 section 3.4.2.4);
        `on_page(read so far, totalResults)` after each page. With `concurrency` > 1, the
        pages after the first (which says how many there are, and how many a page holds) are
        asked for that many at a time.

        A page that fails fails the whole listing, and so does a listing that ends before
        its totalResults or reads more than it, a page of another size than the first, or a
        totalResults that changes on the way: a partial list must never pass for the whole.
        """
        path = f"/{resource_type}"
        total, first = self._page(path, 1, page_size)
        step = len(first)
        parallel = concurrency > 1 and 0 < step < total
        read = 0
        with self._later_pages(
            path, total, page_size, step, concurrency if parallel else 1
        ) as pages:
            for start, (page_total, resources) in itertools.chain([(1, (total, first))], pages):
                _check_page(path, total, step if parallel else None, start, page_total, resources)
                if not resources and read < total:
                    raise ScimError(
                        "GET",
                        path,
                        200,
                        f"the listing ended after {read} of the {total} resources it announced",
                    )
                read += len(resources)
                if on_page is not None:
                    on_page(read, total)
                for resource in resources:
                    if isinstance(resource, dict) and isinstance(resource.get("id"), str):
                        yield resource
        if read != total:
            raise ScimError(
                "GET", path, 200, f"the listing held {read} resources but announced {total}"
            )

    @contextlib.contextmanager
    def _later_pages(
        self, path: str, total: int, page_size: int, step: int, concurrency: int
    ) -> Iterator[Iterator[tuple[int, tuple[int, list[dict[str, Any]]]]]]:
        """The pages after the first, in order: `concurrency` at a time, each of the first
        page's size, or one after another, each from where the last ended."""
        if concurrency <= 1:
            yield self._pages_after(path, 1 + step, total, page_size, step)
            return
        starts = range(1 + step, total + 1, step)
        with ThreadPoolExecutor(concurrency, thread_name_prefix="scim-list") as pool:
            futures = [
                pool.submit(contextvars.copy_context().run, self._page, path, start, step)
                for start in starts
            ]
            try:
                yield ((s, f.result()) for s, f in zip(starts, futures, strict=True))
            finally:
                for future in futures:
                    future.cancel()

    def _page(self, path: str, start: int, count: int) -> tuple[int, list[dict[str, Any]]]:
        params = {"startIndex": start, "count": count}
        response = self.request("GET", path, template=f"{path}?page", params=params)
        return self._list(response, "GET", path)

    def _pages_after(
        self, path: str, start: int, total: int, page_size: int, step: int
    ) -> Iterator[tuple[int, tuple[int, list[dict[str, Any]]]]]:
        """One page after another, each from where the last ended."""
        while step and start <= total:
            page = self._page(path, start, page_size)
            yield start, page
            step = len(page[1])
            start += step
            if not step:
                return


def _check_page(
    path: str,
    total: int,
    step: int | None,
    start: int,
    page_total: int,
    resources: list[dict[str, Any]],
) -> None:
    """A page must agree with the first: the same totalResults, and (pages asked for
    concurrently, `step` a page) the size that leaves no gap and no overlap."""
    if page_total != total:
        raise ScimError(
            "GET",
            path,
            200,
            f"totalResults changed while listing ({total}, then {page_total}): "
            "the vendor changed under the listing",
        )
    expected = min(step, total - start + 1) if step is not None else len(resources)
    if len(resources) != expected:
        raise ScimError(
            "GET", path, 200, f"the page at {start} held {len(resources)} resources, not {expected}"
        )


def _etag(response: httpx.Response) -> str | None:
    etag = response.headers.get("ETag")
    return str(etag) if etag else None


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    """A JSON object inside an answer, or an empty one where it is missing or not an object."""
    part = data.get(key)
    return part if isinstance(part, dict) else {}


def _version_of(resource: dict[str, Any]) -> str | None:
    meta = resource.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    return str(version) if version else None
