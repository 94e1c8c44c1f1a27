"""Runs a plan against an EGIL server and records every outcome in the state file.

Each object is one request (changes.py): POST to create, PUT of the whole object to change it
(a group's memberships included: EGIL has no PATCH), DELETE to remove it; nothing relies on
GET. Stages go in EGIL's send order, their requests concurrently; outcomes are written to the
state, the history and the report by this thread alone, with the SCIM target's bookkeeping
(scim/recording.py), so guard, approve and `connector history` work the same.

Without GET, a create that an interrupted run may have sent is found by its answer: a POST
answered 409 (the id exists) is sent again as a PUT, and a PUT answered 404 (the object is
gone, or never arrived) as a POST. A DELETE answered 404 is done.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import structlog

from connector.planning.objects import Known
from connector.planning.plan import Operation, Plan
from connector.progress import Progress
from connector.state.target import TargetState
from connector.targets.base import ApplyReport
from connector.targets.egil.changes import Change, gather, sendable, stages
from connector.targets.egil.objects import STUDENTS, TEACHERS, USER_RESOURCES
from connector.targets.egil.wire import BOOKKEEPING, Wire
from connector.targets.scim.outcome import (
    VENDOR_DOWN_AFTER,
    Outcome,
    ref,
    scrub_error,
)
from connector.targets.scim.recording import RecordingMixin
from connector.targets.scim.transport import ScimError, Transport, VendorError

log = structlog.get_logger(__name__)

# What an operation came to when its object's request succeeded.
RESULTS = {
    "create_user": "created",
    "create_group": "created",
    "update_user": "updated",
    "update_group": "updated",
    "deactivate_user": "deactivated",
    "delete_user": "deleted",
    "delete_group": "deleted",
    "add_members": "added",
    "remove_members": "removed",
}


class EgilApplier(RecordingMixin):
    def __init__(
        self,
        transport: Transport,
        wire: Wire,
        state: TargetState,
        known: Known,
        *,
        concurrency: int = 4,
        stop: threading.Event | None = None,
        retry_delay: float = 60.0,
        max_retry_delay: float = 6 * 3600.0,
        progress: Progress | None = None,
    ) -> None:
        self.transport = transport
        self.wire = wire
        self.state = state
        self.known = known
        self.concurrency = concurrency
        self.stop = stop or threading.Event()
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.progress = progress or Progress()
        self.failing = state.failure_keys()
        self.user_ids = {ext: u.vendor_id for ext, u in known.users.items()}
        self.group_ids = {ext: g.vendor_id for ext, g in known.groups.items()}
        self.group_names: dict[str, str] = {}
        self._server_errors: list[Operation] = []
        self._lock = threading.Lock()
        self._down = threading.Event()
        self._vendor_error: str | None = None
        self._transient_in_a_row = 0
        self._not_created: set[str] = set()

    def apply(self, plan: Plan, *, resend: bool = False) -> ApplyReport:
        """`resend` (a full reconcile): every known object is sent whole again too."""
        report = ApplyReport()
        if not plan and not resend:
            return report
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="egil") as pool:
            for stage in stages(gather(plan, self.known, resend=resend)):
                futures = [
                    pool.submit(contextvars.copy_context().run, self._send, change)
                    for change in stage
                ]
                with self.state.batch():
                    for change, future in zip(stage, futures, strict=True):
                        outcomes = self._outcomes_of(future)
                        if not change.ops:
                            _resent(outcomes[0], report)
                        for outcome in outcomes if change.ops else ():
                            self._record(outcome, report)
                            if outcome.result != "postponed":
                                self.progress.advance(len(outcome.op.members) or 1)
        report.vendor_unavailable = self._down.is_set()
        report.vendor_error = self._vendor_error
        self._back_off_server_errors(report)
        return report

    # -- one object's request (in a worker thread) --------------------------------------------

    def _send(self, change: Change) -> list[Outcome]:
        """The outcome of each of the object's operations (of a resent object: one, for the
        report only)."""
        ops = change.ops or [Operation("update_group", change.target)]
        if self.stop.is_set() or self._down.is_set():
            return [Outcome(op, "postponed") for op in ops]
        why = sendable(change)
        if why is not None:
            return [Outcome(op, "failed", error=why) for op in ops]
        with self._lock:
            # A student whose create failed this run is not at the server: a group that
            # named them would be refused as a whole; they join it once they are there.
            missing = change.members & self._not_created
        if missing:
            change = replace(change, members=change.members - missing)
        try:
            self._request(change)
        except VendorError as exc:
            return self._refused(change, ops, exc)
        except ScimError as exc:
            if change.method == "POST" and change.resource in USER_RESOURCES:
                with self._lock:
                    self._not_created.add(change.target)
            return self._failed(change, ops, exc)
        self._count_transient(False)
        if not change.ops:
            return [Outcome(ops[0], "resent")]
        return [self._done(op, change) for op in ops]

    def _request(self, change: Change) -> None:
        if change.method == "DELETE":
            self._delete(change)
            return
        body = self.wire.render(change.target, change.attributes, change.members)
        first, second = ("POST", "PUT") if change.method == "POST" else ("PUT", "POST")
        try:
            self._write(first, change.resource, change.target, body)
        except ScimError as exc:
            if isinstance(exc, VendorError) or exc.status != (409 if first == "POST" else 404):
                raise
            # The object exists already (an interrupted run's create) or is gone at the server.
            self._write(second, change.resource, change.target, body)

    def _write(self, method: str, kind: str, uuid: str, body: dict[str, Any]) -> None:
        if method == "POST":
            self.transport.request(
                "POST", self.wire.path(kind), json=body, expect=(200, 201), idempotent=False
            )
        else:
            self.transport.request(
                "PUT", self.wire.path(kind, uuid), template=self.wire.path(kind, "{id}"), json=body
            )

    def _delete(self, change: Change) -> None:
        # A protected person's record no longer says which kind they were: try both (once,
        # where students and teachers share an endpoint).
        kinds = [change.resource] if change.resource else [STUDENTS, TEACHERS]
        paths = dict.fromkeys(self.wire.path(kind, "{id}") for kind in kinds)
        for template in paths:
            try:
                self.transport.request(
                    "DELETE",
                    template.replace("{id}", change.target),
                    template=template,
                    expect=(200, 204),
                )
                return
            except ScimError as exc:
                if isinstance(exc, VendorError) or exc.status != 404:
                    raise
        # 404 everywhere: it is not there, which is what was wanted.

    def _done(self, op: Operation, change: Change) -> Outcome:
        result = RESULTS[op.kind]
        applied = change.attributes if change.method != "DELETE" else None
        members = op.members
        if op.kind == "add_members":
            members = tuple(m for m in op.members if m in change.members)  # the rest skipped
        return Outcome(op, result, vendor_id=change.target, applied=applied, members=members)

    def _failed(self, change: Change, ops: list[Operation], exc: ScimError) -> list[Outcome]:
        status = exc.status
        transient = status is None or status == 429 or status >= 500
        self._count_transient(transient)
        sent = {k: v for k, v in change.attributes.items() if k not in BOOKKEEPING}
        error = scrub_error(str(exc), _texts(sent))
        return [
            Outcome(op, "failed", error=error, transient=transient, status=status) for op in ops
        ]

    def _count_transient(self, transient: bool) -> None:
        with self._lock:
            self._transient_in_a_row = self._transient_in_a_row + 1 if transient else 0
            if self._transient_in_a_row >= VENDOR_DOWN_AFTER and not self._down.is_set():
                self._down.set()
                log.error("apply.vendor_unavailable", failures_in_a_row=self._transient_in_a_row)

    def _refused(self, change: Change, ops: list[Operation], exc: VendorError) -> list[Outcome]:
        """The server refused the connector as a whole: stop sending, blame no object."""
        with self._lock:
            first = self._vendor_error is None
            if first:
                self._vendor_error = str(exc)
            self._down.set()
        if first:
            log.error(
                "apply.vendor_failed",
                op=ops[0].kind,
                ref=ref(change.target),
                status=exc.status,
                error=str(exc),
                consequence="nothing more is sent this cycle; the next cycle tries again",
            )
        return [
            Outcome(op, "failed", error=str(exc), transient=True, vendor_wide=True) for op in ops
        ]


def _resent(outcome: Outcome, report: ApplyReport) -> None:
    """A full reconcile's resend of an object the plan did not touch: counted, and a failure
    reported (the next full reconcile sends it again)."""
    report.counts[f"objects_{outcome.result}"] += 1
    if outcome.result == "failed":
        report.transient_failures += outcome.transient
        report.failures.append(
            {"op": "resend", "ref": ref(outcome.op.target), "error": outcome.error}
        )
        log.warning("apply.failed", op="resend", ref=ref(outcome.op.target), error=outcome.error)


def _texts(value: Any, found: dict[str, str] | None = None) -> dict[str, str]:
    """Every text in an object (names, e-mail addresses), to scrub from a server's error."""
    found = {} if found is None else found
    if isinstance(value, str):
        found[str(len(found))] = value
    elif isinstance(value, dict):
        for item in value.values():
            _texts(item, found)
    elif isinstance(value, list):
        for item in value:
            _texts(item, found)
    return found
