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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog

from connector.planning.objects import SCRUBBED, Known, account_names
from connector.planning.plan import Operation, OperationKind, Plan
from connector.state.target import TargetState
from connector.targets.scim.bulk import BulkLimits, BulkOperation, BulkResult
from connector.targets.scim.client import ScimClient, ScimError, VendorError
from connector.targets.scim.resources import (
    PayloadError,
    attributes_patch,
    flatten,
    group_payload,
    members_patch,
    quote_filter_value,
    replaced_resource,
    same_value,
    user_payload,
)

log = structlog.get_logger(__name__)


class Conflict(Exception):
    """The vendor holds objects that make linking ambiguous; nothing is changed."""


@dataclass(slots=True)
class Outcome:
    op: Operation
    # created | recovered | linked | updated | deactivated | added | removed | failed | conflict
    result: str
    vendor_id: str | None = None
    applied: dict[str, Any] | None = None
    members: tuple[str, ...] = ()
    error: str | None = None
    gone: bool = False  # the object no longer exists at the vendor
    version: str | None = None  # the vendor's ETag after this change
    transient: bool = False  # the vendor failed (no answer, 429, 5xx), not the object
    vendor_wide: bool = False  # the vendor refused the connector as a whole (VendorError)
    status: int | None = None  # the HTTP status of a failure, where there was one


@dataclass(slots=True)
class ApplyReport:
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    transient_failures: int = 0
    succeeded: int = 0
    vendor_unavailable: bool = False
    # Why the vendor as a whole could not be worked with (a VendorError), if it could not.
    vendor_error: str | None = None


# After this many transient failures in a row, the vendor is taken to be down for the rest
# of the cycle: the remaining operations wait for the next cycle instead of each retrying.
VENDOR_DOWN_AFTER = 5


def failure_key(op: Operation) -> str:
    """What a failure is remembered under (opaque: kinds and externalIds)."""
    return f"{op.kind}:{op.target}"


def _matches(resource: dict[str, Any], attribute: str, value: str) -> bool:
    folded = value.casefold()
    if attribute == "emails.value":
        return any(
            isinstance(e, dict) and str(e.get("value", "")).casefold() == folded
            for e in resource.get("emails") or []
        )
    return str(resource.get(attribute, "")).casefold() == folded


class VendorIndex:
    """The vendor's users and groups as listed in this cycle, for linking without lookups."""

    def __init__(self, users: Iterable[dict[str, Any]], groups: Iterable[dict[str, Any]]) -> None:
        self._by_key: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for resource_type, resources, names in (
            ("Users", users, ("userName",)),
            ("Groups", groups, ("displayName",)),
        ):
            for resource in resources:
                keys = {("externalId", str(resource.get("externalId") or ""))}
                keys |= {(n, str(resource.get(n) or "").casefold()) for n in names}
                for email in resource.get("emails") or []:
                    if isinstance(email, dict) and email.get("value"):
                        keys.add(("emails.value", str(email["value"]).casefold()))
                for attribute, value in keys:
                    if value:
                        self._by_key.setdefault((resource_type, attribute, value), []).append(
                            resource
                        )

    def lookup(
        self, resource_type: str, ext: str, names: dict[str, str]
    ) -> dict[str, list[dict[str, Any]]]:
        found = {"externalId": self._by_key.get((resource_type, "externalId", ext), [])}
        for attribute, value in names.items():
            found[attribute] = self._by_key.get((resource_type, attribute, value.casefold()), [])
        return found

    @staticmethod
    def classify(
        resources: list[dict[str, Any]], ext: str, names: dict[str, str]
    ) -> dict[str, list[dict[str, Any]]]:
        """Which of a combined search's results matched which part of the filter."""
        found = {"externalId": [r for r in resources if r.get("externalId") == ext]}
        for attribute, value in names.items():
            found[attribute] = [r for r in resources if _matches(r, attribute, value)]
        return found


def _resolve(
    ext: str, found: dict[str, list[dict[str, Any]]], names: dict[str, str]
) -> dict[str, Any] | None:
    """One account to link, None, or a Conflict (see Applier._find_existing)."""
    by_external_id = found.get("externalId", [])
    if len(by_external_id) > 1:
        raise Conflict(f"{len(by_external_id)} vendor accounts carry the same externalId")
    if by_external_id:
        return by_external_id[0]
    candidates: dict[str, dict[str, Any]] = {}
    for attribute in names:
        matches = found.get(attribute, [])
        if len(matches) > 1:
            raise Conflict(f"{len(matches)} vendor accounts match the same {attribute}")
        candidates.update((m["id"], m) for m in matches)
    if len(candidates) > 1:
        raise Conflict(f"{len(candidates)} different vendor accounts match by {', '.join(names)}")
    if not candidates:
        return None
    (match,) = candidates.values()
    other = match.get("externalId")
    if other and other != ext:
        raise Conflict("the matching vendor account belongs to another externalId")
    return match


def _origin(result: str) -> str:
    """Who made the account: the connector (created now, or earlier and found again) or
    somebody else (linked). Only what the connector made is ever deleted."""
    return "linked" if result == "linked" else "created"


def _version(resource: dict[str, Any]) -> str | None:
    meta = resource.get("meta")
    version = meta.get("version") if isinstance(meta, dict) else None
    return str(version) if version else None


def _ref(external_id: str) -> str:
    """An opaque, short reference for logs: a prefix of the (already opaque) externalId."""
    return external_id[:12]


def _scrub(text: str, attributes: dict[str, Any]) -> str:
    """Remove the object's own values from a vendor's error text before it is logged."""
    for value in attributes.values():
        if isinstance(value, str) and len(value) > 2:
            text = text.replace(value, "<redacted>")
    return text


class Applier:
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
    ) -> None:
        self.client = client
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
                        for batch in _split(ops, limits.max_operations)
                    ]
                    if limits is not None
                    else [
                        pool.submit(contextvars.copy_context().run, self._one, handler, op)
                        for op in ops
                    ]
                )
                with self.state.batch():
                    for future in futures:
                        for outcome in future.result():
                            self._record(outcome, report)
        report.vendor_unavailable = self._vendor_down.is_set()
        report.vendor_error = self._vendor_error
        if report.succeeded and not report.vendor_unavailable:
            # A 5xx the other objects did not get is this object's trouble: back off from it.
            with self.state.batch():
                for op in self._server_errors:
                    self.state.record_failure(
                        failure_key(op), self.retry_delay, self.max_retry_delay
                    )
        return report

    @contextmanager
    def _one_writer(self, resource_type: str, vendor_id: str) -> Iterator[None]:
        """Hold the object's own lock: concurrent writes to one group (a read-modify-replace
        of its members above all) would overwrite each other."""
        with self._lock:
            lock = self._writers.setdefault((resource_type, vendor_id), threading.Lock())
        with lock:
            yield

    def _handlers(self) -> dict[OperationKind, Callable[[Operation], Outcome]]:
        """One request (or a few) per operation, in the plan's order of kinds."""
        return {
            "create_group": self._create_group,
            "update_group": self._update_group,
            "create_user": self._create_user,
            "update_user": self._update_user,
            "add_members": self._add_members,
            "remove_members": self._remove_members,
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
                error=_scrub(str(exc), op.attributes),
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
                ref=_ref(op.target),
                status=exc.status,
                error=str(exc),
                consequence="nothing more is sent this cycle; the next cycle tries again",
            )
        return Outcome(op, "failed", error=str(exc), transient=True, vendor_wide=True)

    def _record(self, outcome: Outcome, report: ApplyReport) -> None:
        op = outcome.op
        if outcome.result == "postponed":
            report.counts["postponed"] += 1
            return
        if outcome.result in ("failed", "conflict"):
            report.counts[outcome.result] += 1
            report.transient_failures += outcome.transient
            if outcome.transient and (outcome.status or 0) >= 500:
                self._server_errors.append(op)  # judged once the cycle is done
            elif not outcome.transient and not outcome.vendor_wide:
                # This object's own trouble (refused, ambiguous): try again later, less often.
                # A vendor that is down is handled per cycle instead (degraded, slower cycles).
                self.state.record_failure(failure_key(op), self.retry_delay, self.max_retry_delay)
            report.failures.append({"op": op.kind, "ref": _ref(op.target), "error": outcome.error})
            log.warning(
                "apply.failed" if outcome.result == "failed" else "apply.conflict",
                op=op.kind,
                ref=_ref(op.target),
                error=outcome.error,
            )
            if outcome.gone and op.kind in ("update_user", "deactivate_user"):
                # Deleted at the vendor: forget the link so the next cycle re-creates it.
                self.state.forget_user(op.target)
            return
        if op.kind == "delete_user":
            self.state.forget_user(op.target)
            self.user_ids.pop(op.target, None)
        elif op.kind == "delete_group":
            self.state.forget_group(op.target)
            self.group_ids.pop(op.target, None)
        elif op.kind in ("create_user", "update_user", "deactivate_user"):
            assert outcome.vendor_id is not None and outcome.applied is not None
            seen = self.known.users.get(op.target)
            origin = seen.origin if seen else _origin(outcome.result)
            self.state.record_user(
                op.target, outcome.vendor_id, origin, outcome.applied, outcome.version
            )
            self.user_ids[op.target] = outcome.vendor_id
        elif op.kind in ("create_group", "update_group"):
            assert outcome.vendor_id is not None and outcome.applied is not None
            seen_group = self.known.groups.get(op.target)
            origin = seen_group.origin if seen_group else _origin(outcome.result)
            self.state.record_group(op.target, outcome.vendor_id, origin, outcome.applied)
            self.group_ids[op.target] = outcome.vendor_id
        elif op.kind == "add_members":
            self.state.add_memberships(op.target, outcome.members)
        elif op.kind == "remove_members":
            self.state.remove_memberships(op.target, outcome.members)
        count_key = {
            "create_user": f"users_{outcome.result}",
            "update_user": "users_updated",
            "deactivate_user": "users_deactivated",
            "create_group": f"groups_{outcome.result}",
            "update_group": "groups_updated",
            "add_members": "members_added",
            "remove_members": "members_removed",
            "delete_user": "users_deleted",
            "delete_group": "groups_deleted",
        }[op.kind]
        report.counts[count_key] += len(outcome.members) if op.members else 1
        if not op.members or outcome.members:
            # A membership change with no member to send reached nobody: no sign of health.
            report.succeeded += 1
        if failure_key(op) in self.failing:
            self.state.clear_failure(failure_key(op))
        skipped = len(op.members) - len(outcome.members)
        if skipped:
            report.counts["members_skipped"] += skipped
        log.info(
            "change.applied",
            op=op.kind,
            result=outcome.result,
            ref=_ref(op.target),
            reason=op.reason or None,
            members=len(outcome.members) if op.members else None,
        )

    # -- lookups --------------------------------------------------------------------------

    def _search_one(self, resource_type: str, filter_: str, what: str) -> dict[str, Any] | None:
        found = self.client.search(resource_type, filter_)
        if len(found) > 1:
            raise Conflict(f"{len(found)} vendor {resource_type.lower()} match the same {what}")
        return found[0] if found else None

    def _find_existing(
        self, resource_type: str, ext: str, names: dict[str, str], *, fresh: bool = False
    ) -> dict[str, Any] | None:
        """Link candidates: by externalId; else by each naming attribute (userName, e-mail).

        Several different candidates, or one that carries another externalId, is a conflict:
        nothing is changed and it is reported. Answered from this cycle's listing of the
        vendor when there is one; else with one combined filter (or one per attribute, for a
        vendor that cannot combine them).
        """
        if self.index is not None and not fresh:
            return _resolve(ext, self.index.lookup(resource_type, ext, names), names)
        if self._combined_filter:
            clauses = [f"externalId eq {quote_filter_value(ext)}"] + [
                f"{attribute} eq {quote_filter_value(value)}" for attribute, value in names.items()
            ]
            try:
                found = self.client.search(resource_type, " or ".join(clauses))
            except ScimError as exc:
                if exc.status not in (400, 501):
                    raise
                log.warning("scim.filter.unsupported", attribute="or")
                self._combined_filter = False
            else:
                return _resolve(ext, VendorIndex.classify(found, ext, names), names)
        return self._find_one_by_one(resource_type, ext, names)

    def _find_one_by_one(
        self, resource_type: str, ext: str, names: dict[str, str]
    ) -> dict[str, Any] | None:
        matches: dict[str, list[dict[str, Any]]] = {"externalId": []}
        if self._external_id_filter:
            try:
                matches["externalId"] = self.client.search(
                    resource_type, f"externalId eq {quote_filter_value(ext)}"
                )
            except ScimError as exc:
                if exc.status not in (400, 501):  # 400/501: cannot filter on externalId
                    raise
                log.warning("scim.filter.unsupported", attribute="externalId")
                self._external_id_filter = False
        if matches["externalId"]:
            return _resolve(ext, matches, names)
        for attribute, value in names.items():
            try:
                matches[attribute] = self.client.search(
                    resource_type, f"{attribute} eq {quote_filter_value(value)}"
                )
            except ScimError as exc:
                if exc.status in (400, 501) and attribute != "userName":
                    continue  # the vendor cannot filter on this attribute
                raise
        return _resolve(ext, matches, names)

    # -- users ----------------------------------------------------------------------------

    def _create_user(self, op: Operation, *, sent_before: bool = False) -> Outcome:
        attributes = op.attributes
        names = account_names(attributes)
        return self._create(op, "Users", user_payload(attributes), names, sent_before=sent_before)

    def _create(
        self,
        op: Operation,
        resource_type: str,
        payload: dict[str, Any],
        names: dict[str, str],
        *,
        sent_before: bool = False,
    ) -> Outcome:
        """Link what the vendor already has; else create, and if the answer is lost (or 409),
        look again rather than send it twice. `sent_before`: a create of it may already have
        reached the vendor (a bulk request whose answer was lost), so look at the vendor itself."""
        attributes = op.attributes
        existing = self._find_existing(resource_type, op.target, names, fresh=sent_before)
        # Ours if an interrupted run of ours sent it (it carries our opaque externalId).
        ours = sent_before or op.target in self.prior_intents
        if existing is None:
            try:
                created = self.client.create(resource_type, payload)
                return Outcome(op, "created", created["id"], attributes, version=_version(created))
            except ScimError as exc:
                if exc.status not in (None, 409) and exc.status < 500:
                    raise
                # Our request may have been carried out (a lost answer), or someone else's: look
                # at the vendor itself (this cycle's listing cannot know).
                existing = self._find_existing(resource_type, op.target, names, fresh=True)
                if existing is None:
                    raise
                ours = True
        return self._link(op, resource_type, existing, ours)

    def _link(
        self, op: Operation, resource_type: str, existing: dict[str, Any], ours: bool
    ) -> Outcome:
        """Take over an account the vendor already holds, bringing it in line: "recovered" if
        it carries our externalId and is ours by how it was found (an earlier create of ours
        whose answer was lost), else "linked" (an account made by someone else)."""
        ours = ours and existing.get("externalId") == op.target
        version = self._bring_in_line(resource_type, existing, op.attributes)
        return Outcome(
            op, "recovered" if ours else "linked", existing["id"], op.attributes, version=version
        )

    def _bring_in_line(
        self,
        resource_type: str,
        existing: dict[str, Any],
        attributes: dict[str, Any],
    ) -> str | None:
        """Change only the managed attributes that differ from `existing`; the new version."""
        current = flatten(existing, frozenset(attributes))
        changes = {p: v for p, v in attributes.items() if not same_value(p, v, current.get(p))}
        if not changes:
            return _version(existing)
        return self._send_changes(
            resource_type, existing["id"], changes, existing, _version(existing)
        )

    def _send_changes(
        self,
        resource_type: str,
        vendor_id: str,
        changes: dict[str, Any],
        current: dict[str, Any] | None = None,
        version: str | None = None,
    ) -> str | None:
        """PATCH the changes (If-Match where the vendor does ETags); the new version."""
        features = self.client.features()
        if_match = version if features.etag else None
        with self._one_writer(resource_type, vendor_id):
            if features.patch:
                payload = attributes_patch(resource_type, changes)
                return self.client.patch(resource_type, vendor_id, payload, if_match=if_match)
            # No PATCH: read, change only our attributes, and put back everything else as it was.
            if current is None:
                current = self.client.get(resource_type, vendor_id)
                if_match = _version(current) if features.etag else None
            replaced = self.client.replace(
                resource_type, vendor_id, replaced_resource(current, changes), if_match=if_match
            )
        return _version(replaced)

    def _update_known_user(
        self, op: Operation, changes: dict[str, Any], wanted: dict[str, Any]
    ) -> str | None:
        """Send `changes` at the version we last saw. If the account changed at the vendor since
        (412), read it again and send what now differs from `wanted`, once."""
        assert op.vendor_id is not None
        seen = self.known.users[op.target]
        try:
            return self._send_changes("Users", op.vendor_id, changes, version=seen.version)
        except ScimError as exc:
            if exc.status != 412:
                raise
        return self._reread_and_replan(op, wanted)

    def _reread_and_replan(self, op: Operation, wanted: dict[str, Any]) -> str | None:
        """The account changed at the vendor since we last saw it: read it and send what now
        differs from `wanted`; the new version."""
        assert op.vendor_id is not None
        log.info("apply.replanned", op=op.kind, ref=_ref(op.target), why="changed at the vendor")
        current = self.client.get("Users", op.vendor_id)
        return self._bring_in_line("Users", current, wanted)

    def _update_user(self, op: Operation) -> Outcome:
        outcome = self._updated(op, None)
        assert outcome.applied is not None
        outcome.version = self._update_known_user(op, op.attributes, outcome.applied)
        return outcome

    def _updated(self, op: Operation, version: str | None) -> Outcome:
        merged = {**self.known.users[op.target].attributes, **op.attributes}
        wanted = {k: v for k, v in merged.items() if v is not None}
        return Outcome(op, "updated", op.vendor_id, wanted, version=version)

    def _deactivate_user(self, op: Operation) -> Outcome:
        version = self._update_known_user(op, {"active": False}, {"active": False})
        return self._deactivated(op, version)

    def _deactivated(self, op: Operation, version: str | None) -> Outcome:
        wanted = {**self.known.users[op.target].attributes, "active": False}
        if op.reason == "protected":
            # Keep only what is needed to recognise the account again: no name, no address.
            wanted = dict(SCRUBBED)
        return Outcome(op, "deactivated", op.vendor_id, wanted, version=version)

    def _delete_user(self, op: Operation) -> Outcome:
        assert op.vendor_id is not None
        self._delete("Users", op.vendor_id)
        return Outcome(op, "deleted", op.vendor_id)

    def _delete_group(self, op: Operation) -> Outcome:
        assert op.vendor_id is not None
        self._delete("Groups", op.vendor_id)
        return Outcome(op, "deleted", op.vendor_id)

    def _delete(self, resource_type: str, vendor_id: str) -> None:
        try:
            with self._one_writer(resource_type, vendor_id):
                self.client.delete(resource_type, vendor_id)
        except ScimError as exc:
            if exc.status != 404 or isinstance(exc, VendorError):  # already gone is what we wanted
                raise

    # -- groups ---------------------------------------------------------------------------

    def _create_group(self, op: Operation) -> Outcome:
        names = {"displayName": str(op.attributes["displayName"])}
        return self._create(op, "Groups", group_payload(op.attributes), names)

    def _update_group(self, op: Operation) -> Outcome:
        assert op.vendor_id is not None
        self._send_changes("Groups", op.vendor_id, op.attributes)
        applied = {**self.known.groups[op.target].attributes, **op.attributes}
        return Outcome(
            op, "updated", op.vendor_id, {k: v for k, v in applied.items() if v is not None}
        )

    def _group_id(self, op: Operation) -> str:
        group_id = self.group_ids.get(op.target)
        if group_id is None:
            raise ScimError(
                "PATCH", "/Groups/{id}", None, "the group could not be created or linked"
            )
        return group_id

    def _linked_members(self, op: Operation) -> tuple[str, ...]:
        """The members that have a vendor id. A user whose create failed this cycle is left
        out of an add (the next cycle adds them)."""
        return tuple(ext for ext in op.members if ext in self.user_ids)

    def _members_outcome(self, op: Operation, group_id: str, linked: tuple[str, ...]) -> Outcome:
        if op.kind == "add_members":
            return Outcome(op, "added", group_id, members=linked)
        # Members whose user link is gone cannot be addressed; their record is dropped too.
        return Outcome(op, "removed", group_id, members=op.members)

    def _add_members(self, op: Operation) -> Outcome:
        group_id = self._group_id(op)
        ready = self._linked_members(op)
        if ready:
            self._change_members(group_id, add=[self.user_ids[ext] for ext in ready])
        return self._members_outcome(op, group_id, ready)

    def _remove_members(self, op: Operation) -> Outcome:
        group_id = self._group_id(op)
        known = self._linked_members(op)
        if known:
            self._change_members(group_id, remove=[self.user_ids[ext] for ext in known])
        return self._members_outcome(op, group_id, known)

    def _change_members(
        self, group_id: str, *, add: list[str] | None = None, remove: list[str] | None = None
    ) -> None:
        with self._one_writer("Groups", group_id):
            if self.client.features().patch:
                payload = members_patch(add=add or [], remove=remove or [])
                self.client.patch("Groups", group_id, payload)
            else:
                self._replace_members(group_id, add or [], remove or [])

    def _replace_members(self, group_id: str, add: list[str], remove: list[str]) -> None:
        """No PATCH: read the group, change only these members, put back everything else -
        at the version read (If-Match, read again on 412) - and see that it took."""
        etag = self.client.features().etag
        for attempt in range(1, REPLACE_ATTEMPTS + 1):
            current = self.client.get("Groups", group_id)
            gone = set(remove)
            members = [
                m
                for m in current.get("members") or []
                if isinstance(m, dict) and m.get("value") not in gone
            ]
            present = {m.get("value") for m in members}
            members += [{"value": vendor_id} for vendor_id in add if vendor_id not in present]
            try:
                replaced = self.client.replace(
                    "Groups",
                    group_id,
                    replaced_resource(current, {"members": members}),
                    if_match=_version(current) if etag else None,
                )
            except ScimError as exc:
                if exc.status != 412 or attempt == REPLACE_ATTEMPTS:
                    raise
                continue  # changed since we read it: read again
            if "members" not in replaced:  # some vendors leave members out of the answer
                replaced = self.client.get("Groups", group_id)
            values = {m.get("value") for m in replaced.get("members") or [] if isinstance(m, dict)}
            if not set(add) <= values or values & gone:
                raise ScimError(
                    "PUT",
                    "/Groups/{id}",
                    200,
                    "the group the vendor answered with does not hold the members sent",
                )
            return

    # -- bulk -----------------------------------------------------------------------------

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
            outcome = self._guarded(lambda o, out=ready: self._bulk_prepare(o, out), op)
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
                outcomes.append(
                    self._guarded(lambda o, m=operation, r=result: self._bulk_settle(o, m, r), op)
                )
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
# A read-modify-replace of a group's members that meets 412 (changed meanwhile) reads again
# this many times in all before the change fails for this cycle.
REPLACE_ATTEMPTS = 3
# RFC 7644 has no default; a vendor that advertises none gets requests of at most 1 MB.
DEFAULT_BULK_PAYLOAD_BYTES = 1_048_576


def _split(ops: list[Operation], size: int) -> list[list[Operation]]:
    return [ops[start : start + size] for start in range(0, len(ops), size)]
