"""Recording outcomes: the state file as soon as an outcome is known, the report, the log."""

from __future__ import annotations

from concurrent.futures import Future, wait

import structlog

from connector.planning.objects import Known
from connector.planning.plan import Operation
from connector.state.history import Change
from connector.state.target import TargetState
from connector.targets.scim.outcome import ApplyReport, Outcome, failure_key, origin_of, ref

log = structlog.get_logger(__name__)

# Waiting longer than this for a vendor's answer commits the open batch first (Database.flush).
FLUSH_AFTER_SECONDS = 0.2

# An operation as the history names it (state/history.py).
HISTORY_OPS = {
    "create_user": "create",
    "create_group": "create",
    "update_user": "update",
    "update_group": "update",
    "rekey_user": "rekey",
    "grant_values": "grant",
    "revoke_values": "revoke",
    "deactivate_user": "deactivate",
    "delete_user": "delete",
    "delete_group": "delete",
    "add_members": "member_add",
    "remove_members": "member_remove",
}


class RecordingMixin:
    """The Applier's bookkeeping."""

    state: TargetState
    known: Known
    user_ids: dict[str, str]
    group_ids: dict[str, str]
    failing: set[str]
    retry_delay: float
    max_retry_delay: float
    _server_errors: list[Operation]
    group_names: dict[str, str]

    def _outcomes_of(self, future: Future[list[Outcome]]) -> list[Outcome]:
        """A request's outcomes, waited for without holding the state's write lock: a slow
        vendor must not lock out `approve` or `sync --only` beside the daemon."""
        if not wait([future], timeout=FLUSH_AFTER_SECONDS).done:
            self.state.database.flush()
        return future.result()

    def _back_off_server_errors(self, report: ApplyReport) -> None:
        """A 5xx the other objects did not get is this object's trouble: back off from it."""
        if report.succeeded and not report.vendor_unavailable:
            with self.state.batch():
                for op in self._server_errors:
                    self.state.record_failure(
                        failure_key(op), self.retry_delay, self.max_retry_delay
                    )

    def _record(self, outcome: Outcome, report: ApplyReport) -> None:
        """Write one outcome to the state file and the report (this thread alone does)."""
        if outcome.result == "postponed":
            report.counts["postponed"] += 1
            return
        # First, so the state change that follows commits it with itself.
        self.state.history.record(self._history_of(outcome))
        if outcome.result in ("failed", "conflict"):
            self._record_failure(outcome, report)
        else:
            self._record_change(outcome)
            self._count(outcome, report)

    def _history_of(self, outcome: Outcome) -> list[Change]:
        """The history's rows for an outcome: names of attributes, never values; none at all
        for a protected person's removal (their trail is deleted, see cycle/run.py)."""
        op = outcome.op
        if op.reason == "protected":
            return []
        result = outcome.result if outcome.result in ("failed", "conflict") else "applied"
        history = self.state.history
        if op.kind in ("add_members", "remove_members"):
            group = (self._group_label(op.target),)
            members = op.members if result != "applied" else outcome.members
            return [
                Change(m, HISTORY_OPS[op.kind], group, result, history.approval_for(op, m))
                for m in members
            ]
        name = HISTORY_OPS[op.kind]
        if outcome.result == "linked":
            name = "link"
        elif op.kind == "update_user" and op.attributes.get("active") is True:
            name = "reactivate"
        if op.kind in ("create_group", "update_group") and outcome.applied:
            self.group_names[op.target] = str(outcome.applied.get("displayName") or "")
        attributes = tuple(sorted(op.attributes))
        return [Change(op.target, name, attributes, result, history.approval_for(op))]

    def _group_label(self, external_id: str) -> str:
        """A group as the history names it: the school's name and code (no personal data)."""
        name = self.group_names.get(external_id)
        if name is None:
            seen = self.known.groups.get(external_id)
            name = str(seen.attributes.get("displayName") or "") if seen else ""
        return f"{name} ({ref(external_id)})" if name else ref(external_id)

    def _record_failure(self, outcome: Outcome, report: ApplyReport) -> None:
        op = outcome.op
        report.counts[outcome.result] += 1
        report.transient_failures += outcome.transient
        if outcome.transient and (outcome.status or 0) >= 500:
            self._server_errors.append(op)  # judged once the cycle is done
        elif not outcome.transient and not outcome.vendor_wide:
            # This object's own trouble (refused, ambiguous): try again later, less often.
            # A vendor that is down is handled per cycle instead (degraded, slower cycles).
            self.state.record_failure(failure_key(op), self.retry_delay, self.max_retry_delay)
        report.failures.append({"op": op.kind, "ref": ref(op.target), "error": outcome.error})
        log.warning(
            "apply.failed" if outcome.result == "failed" else "apply.conflict",
            op=op.kind,
            ref=ref(op.target),
            error=outcome.error,
        )
        if outcome.gone and op.kind in (
            "update_user",
            "rekey_user",
            "grant_values",
            "revoke_values",
            "deactivate_user",
        ):
            # Deleted at the vendor: forget the link so the next cycle re-creates it.
            self.state.forget_user(op.previous or op.target)
        return

    def _record_change(self, outcome: Outcome) -> None:
        op = outcome.op
        if op.kind == "delete_user":
            self.state.forget_user(op.target)
            self.user_ids.pop(op.target, None)
        elif op.kind == "delete_group":
            self.state.forget_group(op.target)
            self.group_ids.pop(op.target, None)
        elif op.kind == "rekey_user":
            assert outcome.vendor_id is not None and outcome.applied is not None
            self.state.rekey_user(
                op.previous, op.target, outcome.vendor_id, outcome.applied, outcome.version
            )
            self.user_ids.pop(op.previous, None)
            self.user_ids[op.target] = outcome.vendor_id
        elif op.kind in ("create_user", "update_user", "deactivate_user"):
            assert outcome.vendor_id is not None and outcome.applied is not None
            seen = self.known.users.get(op.target)
            origin = seen.origin if seen else origin_of(outcome.result)
            self.state.record_user(
                op.target, outcome.vendor_id, origin, outcome.applied, outcome.version
            )
            self.user_ids[op.target] = outcome.vendor_id
        elif op.kind in ("create_group", "update_group"):
            assert outcome.vendor_id is not None and outcome.applied is not None
            seen_group = self.known.groups.get(op.target)
            origin = seen_group.origin if seen_group else origin_of(outcome.result)
            self.state.record_group(op.target, outcome.vendor_id, origin, outcome.applied)
            self.group_ids[op.target] = outcome.vendor_id
        elif op.kind in ("grant_values", "revoke_values"):
            # A protected person's record holds no values (scrubbed): none are written back.
            recorded = {} if op.reason == "protected" else op.attributes
            add, remove = (recorded, {}) if op.kind == "grant_values" else ({}, recorded)
            self.state.record_values(op.target, add=add, remove=remove, version=outcome.version)
        elif op.kind == "add_members":
            self.state.add_memberships(op.target, outcome.members)
        elif op.kind == "remove_members":
            self.state.remove_memberships(op.target, outcome.members)

    def _count(self, outcome: Outcome, report: ApplyReport) -> None:
        op = outcome.op
        count_key = {
            "create_user": f"users_{outcome.result}",
            "rekey_user": "users_rekeyed",
            "update_user": "users_updated",
            "deactivate_user": "users_deactivated",
            "create_group": f"groups_{outcome.result}",
            "update_group": "groups_updated",
            "grant_values": "values_granted",
            "revoke_values": "values_revoked",
            "add_members": "members_added",
            "remove_members": "members_removed",
            "delete_user": "users_deleted",
            "delete_group": "groups_deleted",
        }[op.kind]
        report.counts[count_key] += (
            len(outcome.members)
            if op.members
            else sum(map(len, op.attributes.values()))
            if op.kind in ("grant_values", "revoke_values")
            else 1
        )
        report.confirm(outcome.op, outcome.members)
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
            ref=ref(op.target),
            reason=op.reason or None,
            members=len(outcome.members) if op.members else None,
            previous=op.previous[:12] or None,
        )
