"""SCIM Bulk (RFC 7644 section 3.7): many operations in one request.

Used only where the vendor advertises Bulk and the config enables it (`vendor.bulk`). A batch
holds operations of one kind, so the plan's order still holds between kinds (members are
added after their users exist) and no operation refers to another by bulkId. Batches stay
within the vendor's `maxOperations` and `maxPayloadSize` (and the config's own cap).

Each operation carries a bulkId (`op<N>`), and results are matched by it, so a vendor that
answers in another order is understood. An operation without a result in the response is
reported as unanswered, never taken as done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"

# What the request around the operations costs in bytes, and each operation's own framing.
_ENVELOPE_BYTES = 200
_OPERATION_OVERHEAD_BYTES = 80


@dataclass(frozen=True, slots=True)
class BulkOperation:
    method: str  # POST | PATCH | PUT | DELETE
    path: str  # /Users, /Users/{id}, /Groups/{id}
    data: dict[str, Any] | None = None
    version: str | None = None  # the ETag the resource must still have (If-Match)

    def encoded_size(self) -> int:
        size = len(self.path) + _OPERATION_OVERHEAD_BYTES + len(self.version or "")
        if self.data is not None:
            size += len(json.dumps(self.data, ensure_ascii=False).encode())
        return size


@dataclass(frozen=True, slots=True)
class BulkResult:
    status: int | None  # None: the vendor's answer did not mention this operation
    location: str | None = None
    version: str | None = None
    detail: str | None = None
    scim_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def resource_id(self) -> str | None:
        """The id of the resource, from its location (…/Users/<id>)."""
        if not self.location:
            return None
        last = self.location.rstrip("/").rsplit("/", 1)[-1]
        return last or None


@dataclass(slots=True)
class BulkLimits:
    max_operations: int
    max_payload_bytes: int

    def batches(self, sizes: list[int]) -> list[range]:
        """Consecutive index ranges of operations, each within both limits. An operation
        bigger than the payload limit on its own gets a batch of its own (the vendor then
        refuses it, and only it)."""
        out: list[range] = []
        start, total = 0, _ENVELOPE_BYTES
        for index, size in enumerate(sizes):
            full = index - start >= self.max_operations
            if index > start and (full or total + size > self.max_payload_bytes):
                out.append(range(start, index))
                start, total = index, _ENVELOPE_BYTES
            total += size
        if start < len(sizes):
            out.append(range(start, len(sizes)))
        return out


def bulk_request(operations: list[BulkOperation]) -> dict[str, Any]:
    body: list[dict[str, Any]] = []
    for number, operation in enumerate(operations):
        entry: dict[str, Any] = {
            "method": operation.method,
            "path": operation.path,
            "bulkId": f"op{number}",
        }
        if operation.data is not None:
            entry["data"] = operation.data
        if operation.version:
            entry["version"] = operation.version
        body.append(entry)
    return {"schemas": [BULK_REQUEST_SCHEMA], "Operations": body}


def _status(value: Any) -> int | None:
    try:
        return int(str(value).split()[0])
    except (ValueError, IndexError):
        return None


def parse_bulk_response(body: dict[str, Any], count: int) -> list[BulkResult]:
    """One result per operation sent, in the order sent."""
    answered = body.get("Operations")
    results = [BulkResult(None, detail="the vendor's bulk answer left it out")] * count
    if not isinstance(answered, list):
        return results
    unmatched: list[dict[str, Any]] = []
    for entry in answered:
        if not isinstance(entry, dict):
            continue
        bulk_id = str(entry.get("bulkId") or "")
        index = int(bulk_id[2:]) if bulk_id.startswith("op") and bulk_id[2:].isdigit() else -1
        if 0 <= index < count:
            results[index] = _result(entry)
        else:
            unmatched.append(entry)
    if unmatched and len(answered) == count:
        # No bulkIds echoed for some: then the answer is in the order of the request.
        for index, entry in enumerate(answered):
            if isinstance(entry, dict) and results[index].status is None:
                results[index] = _result(entry)
    return results


def _result(entry: dict[str, Any]) -> BulkResult:
    answer = entry.get("response")
    response: dict[str, Any] = answer if isinstance(answer, dict) else {}
    detail = response.get("detail")
    location = entry.get("location")
    if not location and isinstance(response.get("id"), str):
        location = response["id"]
    return BulkResult(
        status=_status(entry.get("status")),
        location=str(location) if location else None,
        version=str(entry["version"]) if entry.get("version") else None,
        detail=str(detail) if detail else None,
        scim_type=str(response.get("scimType")) if response.get("scimType") else None,
    )
