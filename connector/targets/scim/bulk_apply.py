"""Applying in SCIM Bulk requests (see bulk.py for the messages): where the vendor offers Bulk
and the config allows it, operations of one kind go in batches within the vendor's limits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial

import structlog

from connector.planning.objects import account_names
from connector.planning.plan import Operation, OperationKind
from connector.targets.scim.bulk import BulkLimits, BulkOperation, BulkResult
from connector.targets.scim.client import ScimError, VendorError
from connector.targets.scim.outcome import Outcome
from connector.targets.scim.resources import attributes_patch, members_patch, user_payload
from connector.targets.scim.writes import WritesMixin

log = structlog.get_logger(__name__)

# Sent in bulk when enabled: the kinds of which a plan can hold thousands.
BULK_KINDS: frozenset[OperationKind] = frozenset(
    {
        "create_user",
        "update_user",
        "deactivate_user",
        "add_members",
        "remove_members",
        "delete_user",
    }
)

# RFC 7644 has no default; a vendor that advertises none gets requests of at most 1 MB.
DEFAULT_BULK_PAYLOAD_BYTES = 1_048_576


class BulkMixin(WritesMixin):
    """The Applier's bulk path."""

    bulk_max_operations: int | None
    stop: threading.Event
    _vendor_down: threading.Event

    def _handlers(self) -> dict[OperationKind, Callable[[Operation], Outcome]]:
        raise NotImplementedError

    def _guarded(self, handler: Callable[[Operation], Outcome], op: Operation) -> Outcome:
        raise NotImplementedError

    def _refused(self, op: Operation, exc: VendorError) -> Outcome:
        raise NotImplementedError

    def _bulk_limits(self, kind: OperationKind) -> BulkLimits | None:
        """Limits for sending this kind in bulk; None when it goes one request at a time."""
        if self.bulk_max_operations is None or kind not in BULK_KINDS:
            return None
        features = self.client.features()
        if not features.bulk or not features.patch:
            return None
        vendor_max = features.bulk_max_operations or self.bulk_max_operations
        return BulkLimits(
            max_operations=max(1, min(self.bulk_max_operations, vendor_max)),
            max_payload_bytes=features.bulk_max_payload or DEFAULT_BULK_PAYLOAD_BYTES,
        )

    def _bulk_batch(self, ops: list[Operation], limits: BulkLimits) -> list[Outcome]:
        """Settle what needs no request (a create that can link), send the rest in bulk
        requests within the limits, and turn each result into an outcome."""
        outcomes: list[Outcome] = []
        prepared: list[tuple[Operation, BulkOperation]] = []
        for op in ops:
            ready: list[BulkOperation] = []
            outcome = self._guarded(partial(self._bulk_prepare, out=ready), op)
            if ready and outcome.result == "bulk":
                prepared.append((op, ready[0]))
            else:
                outcomes.append(outcome)
        sizes = [operation.encoded_size() for _, operation in prepared]
        for part in limits.batches(sizes):
            batch = prepared[part.start : part.stop]
            if self.stop.is_set() or self._vendor_down.is_set():
                outcomes += [Outcome(op, "postponed") for op, _ in batch]
                continue
            try:
                results = self.client.bulk([operation for _, operation in batch])
            except VendorError as exc:
                outcomes += [self._refused(op, exc) for op, _ in batch[:1]]
                outcomes += [Outcome(op, "postponed") for op, _ in batch[1:]]
                continue
            except ScimError as exc:
                # Refused or lost as a whole: each on its own, and a create only after looking
                # at the vendor (the lost request may have been carried out).
                log.warning("apply.bulk_failed", operations=len(batch), status=exc.status)
                outcomes += [self._guarded(self._after_lost_bulk, op) for op, _ in batch]
                continue
            for (op, operation), result in zip(batch, results, strict=True):
                settle = partial(self._bulk_settle, sent=operation, result=result)
                outcomes.append(self._guarded(settle, op))
        return outcomes

    def _bulk_prepare(self, op: Operation, out: list[BulkOperation]) -> Outcome:
        """The bulk operation for `op` (appended to `out`), or the outcome if none is needed."""
        kind = op.kind
        if kind == "create_user":
            payload = user_payload(op.attributes)
            existing = self._find_existing("Users", op.target, account_names(op.attributes))
            if existing is not None:
                return self._link(op, "Users", existing, op.target in self.prior_intents)
            out.append(BulkOperation("POST", "/Users", payload))
        elif kind in ("update_user", "deactivate_user"):
            assert op.vendor_id is not None
            changes = op.attributes if kind == "update_user" else {"active": False}
            version = self.known.users[op.target].version
            out.append(
                BulkOperation(
                    "PATCH",
                    f"/Users/{op.vendor_id}",
                    attributes_patch("Users", changes),
                    version if self.client.features().etag else None,
                )
            )
        elif kind in ("add_members", "remove_members"):
            group_id = self._group_id(op)
            linked = self._linked_members(op)
            if not linked:
                return self._members_outcome(op, group_id, linked)
            ids = [self.user_ids[ext] for ext in linked]
            patch = members_patch(add=ids) if kind == "add_members" else members_patch(remove=ids)
            out.append(BulkOperation("PATCH", f"/Groups/{group_id}", patch))
        elif kind == "delete_user":
            out.append(BulkOperation("DELETE", f"/Users/{op.vendor_id}"))
        return Outcome(op, "bulk")

    def _bulk_settle(self, op: Operation, sent: BulkOperation, result: BulkResult) -> Outcome:
        """One bulk result as an outcome; a failure raises as a single request's would."""
        kind = op.kind
        if kind == "delete_user" and result.status == 404:
            return Outcome(op, "deleted", op.vendor_id)  # already gone is what we wanted
        if not result.ok:
            if kind == "create_user" and result.status == 409:
                return self._create_user(op, sent_before=True)  # look, then link
            if kind == "update_user" and result.status == 412:
                outcome = self._updated(op, None)
                assert outcome.applied is not None
                outcome.version = self._reread_and_replan(op, outcome.applied)
                return outcome
            if kind == "deactivate_user" and result.status == 412:
                return self._deactivated(op, self._reread_and_replan(op, {"active": False}))
            shown = sent.path if sent.method == "POST" else sent.path.rsplit("/", 1)[0] + "/{id}"
            raise ScimError(
                sent.method,
                shown,
                result.status,
                result.detail or "no result for this operation in the bulk answer",
                result.scim_type,
            )
        if kind == "create_user":
            if result.resource_id is None:
                return self._create_user(op, sent_before=True)  # created, but where? look
            return Outcome(op, "created", result.resource_id, op.attributes, version=result.version)
        if kind == "update_user":
            return self._updated(op, result.version)
        if kind == "deactivate_user":
            return self._deactivated(op, result.version)
        if kind in ("add_members", "remove_members"):
            return self._members_outcome(op, self._group_id(op), self._linked_members(op))
        return Outcome(op, "deleted", op.vendor_id)

    def _after_lost_bulk(self, op: Operation) -> Outcome:
        if op.kind == "create_user":
            return self._create_user(op, sent_before=True)
        return self._handlers()[op.kind](op)  # sending these twice changes nothing


def split_batches(ops: list[Operation], size: int) -> list[list[Operation]]:
    return [ops[start : start + size] for start in range(0, len(ops), size)]
