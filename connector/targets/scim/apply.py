"""Runs a plan against the vendor and records every outcome in the state file.

Operations of one kind run concurrently (a bounded thread pool; httpx's client is thread-safe)
and kinds run in the plan's order, so members are added only after their users exist. Each
outcome is written to state as soon as it is known, by this thread alone, and committed in
batches (a create's intent is committed before it is sent). One failing object
never stops the others: it is reported, and the next cycle plans it again.

Before creating anything, the vendor is asked whether the object already exists (by
externalId, then by userName / displayName), so an existing account is linked, not duplicated.

A refusal of the connector as a whole (a wrong token, a failed TLS handshake, answers that are
not SCIM) ends the applying at once: the rest waits for the next cycle, and no object is put
into back-off for the vendor's trouble. Writes to one vendor object never overlap: changes of
the same group or user are serialised across the thread pool.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import structlog

from connector.planning.objects import Known
from connector.planning.plan import Operation, OperationKind, Plan
from connector.progress import Progress
from connector.state.target import TargetState
from connector.targets.scim.bulk_apply import BulkMixin, split_batches
from connector.targets.scim.client import ScimClient, ScimError, VendorError
from connector.targets.scim.lookup import VendorIndex
from connector.targets.scim.outcome import (
    VENDOR_DOWN_AFTER,
    ApplyReport,
    Conflict,
    Outcome,
    failure_key,
    ref,
    scrub_error,
)
from connector.targets.scim.recording import RecordingMixin
from connector.targets.scim.resources import PayloadError
from connector.targets.scim.values import ValuesMixin

log = structlog.get_logger(__name__)

# An answer slower than this: what is recorded so far is committed before waiting on (so a
# command beside the daemon can write the state meanwhile).

__all__ = ["Applier", "ApplyReport", "Outcome", "VendorIndex", "failure_key"]


class Applier(BulkMixin, ValuesMixin, RecordingMixin):
    def __init__(
        self,
        client: ScimClient,
        state: TargetState,
        known: Known,
        *,
        concurrency: int = 4,
        stop: threading.Event | None = None,
        retry_delay: float = 60.0,
        max_retry_delay: float = 6 * 3600.0,
        index: VendorIndex | None = None,
        bulk_max_operations: int | None = None,
        create_only: frozenset[str] = frozenset(),
        progress: Progress | None = None,
    ) -> None:
        self.client = client
        # Told of each operation done (or failed; a membership change counts its members), not
        # of those postponed.
        self.progress = progress or Progress()
        # User attributes set on create only: an existing account's values are left alone.
        self.create_only = create_only
        # Bulk requests, if the config allows them (None: never) and the vendor does too.
        self.bulk_max_operations = bulk_max_operations
        # Set on shutdown: operations not yet started are left for the next cycle.
        self.stop = stop or threading.Event()
        self._vendor_down = threading.Event()
        self._vendor_error: str | None = None
        self._lock = threading.Lock()
        self._writers: dict[tuple[str, str], threading.Lock] = {}
        # Operations the vendor answered with a 5xx: their own trouble if others went through.
        self._server_errors: list[Operation] = []
        self._transient_in_a_row = 0
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.failing = state.failure_keys()
        # Creates an interrupted run recorded as intended: what we find for them is ours.
        self.prior_intents = set(state.intents())
        self.state = state
        self.concurrency = concurrency
        self.known = known
        self.user_ids = {ext: u.vendor_id for ext, u in known.users.items()}
        self.group_ids = {ext: g.vendor_id for ext, g in known.groups.items()}
        # Display names of groups created or changed in this run, for the history.
        self.group_names: dict[str, str] = {}
        self._external_id_filter = True
        self._combined_filter = True
        self.index: VendorIndex | None = index

    def apply(self, plan: Plan) -> ApplyReport:
        report = ApplyReport()
        if not plan:
            return report
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="apply") as pool:
            for kind, handler in self._handlers().items():
                ops = plan.of_kind(kind)
                if not ops:
                    continue
                if self.stop.is_set() or self._vendor_down.is_set():
                    report.counts["postponed"] += len(ops)  # left for the next cycle
                    continue
                if kind in ("create_user", "create_group"):
                    self.state.record_intents(
                        kind.removeprefix("create_"), [op.target for op in ops]
                    )
                limits = self._bulk_limits(kind) if len(ops) > 1 else None
                # Each worker runs in a copy of this context, so its log events keep the run_id.
                futures: list[Future[list[Outcome]]] = (
                    [
                        pool.submit(contextvars.copy_context().run, self._bulk_batch, batch, limits)
                        for batch in split_batches(ops, limits.max_operations)
                    ]
                    if limits is not None
                    else [
                        pool.submit(contextvars.copy_context().run, self._one, handler, op)
                        for op in ops
                    ]
                )
                with self.state.batch():
                    for future in futures:
                        for outcome in self._outcomes_of(future):
                            self._record(outcome, report)
                            if outcome.result != "postponed":
                                self.progress.advance(len(outcome.op.members) or 1)
        report.vendor_unavailable = self._vendor_down.is_set()
        report.vendor_error = self._vendor_error
        self._back_off_server_errors(report)
        return report

    def _handlers(self) -> dict[OperationKind, Callable[[Operation], Outcome]]:
        """One request (or a few) per operation, in the plan's order of kinds."""
        return {
            "create_group": self._create_group,
            "update_group": self._update_group,
            "create_user": self._create_user,
            "rekey_user": self._rekey_user,
            "update_user": self._update_user,
            "grant_values": self._grant_values,
            "add_members": self._add_members,
            "remove_members": self._remove_members,
            "revoke_values": self._revoke_values,
            "deactivate_user": self._deactivate_user,
            "delete_user": self._delete_user,
            "delete_group": self._delete_group,
        }

    def _one(self, handler: Callable[[Operation], Outcome], op: Operation) -> list[Outcome]:
        return [self._guarded(handler, op)]

    def _guarded(self, handler: Callable[[Operation], Outcome], op: Operation) -> Outcome:
        if self.stop.is_set() or self._vendor_down.is_set():
            return Outcome(op, "postponed")
        try:
            outcome = handler(op)
        except Conflict as exc:
            outcome = Outcome(op, "conflict", error=str(exc))
        except VendorError as exc:
            return self._refused(op, exc)
        except (ScimError, PayloadError) as exc:
            status = exc.status if isinstance(exc, ScimError) else 0
            gone = status == 404 and op.vendor_id is not None
            transient = isinstance(exc, ScimError) and (
                status is None or status == 429 or status >= 500
            )
            outcome = Outcome(
                op,
                "failed",
                error=scrub_error(str(exc), op.attributes),
                gone=gone,
                transient=transient,
                status=status or None,
            )
        if outcome.result == "bulk":
            return outcome  # prepared for a bulk request: nothing was sent yet
        with self._lock:
            self._transient_in_a_row = self._transient_in_a_row + 1 if outcome.transient else 0
            if self._transient_in_a_row >= VENDOR_DOWN_AFTER and not self._vendor_down.is_set():
                self._vendor_down.set()
                log.error("apply.vendor_unavailable", failures_in_a_row=self._transient_in_a_row)
        return outcome

    def _refused(self, op: Operation, exc: VendorError) -> Outcome:
        """The vendor refused the connector as a whole: stop sending, blame no object."""
        with self._lock:
            first = self._vendor_error is None
            if first:
                self._vendor_error = str(exc)
            self._vendor_down.set()
        if first:
            log.error(
                "apply.vendor_failed",
                op=op.kind,
                ref=ref(op.target),
                status=exc.status,
                error=str(exc),
                consequence="nothing more is sent this cycle; the next cycle tries again",
            )
        return Outcome(op, "failed", error=str(exc), transient=True, vendor_wide=True)
