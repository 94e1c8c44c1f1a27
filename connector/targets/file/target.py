"""A vendor fed by a CSV file (Inläsningstjänst) as a target.

Each delivered file creates, updates *and deletes* accounts at the vendor: a person missing
from it is removed. So the file is planned like a SCIM vendor - against the last delivered
file, kept in the state as one record per person with their rows - and guarded by the same
rules: a held removal keeps that person's previous rows in the file. The file is sent only
when its content changed (or in a full reconcile, `sync --full`), and nothing is recorded as
delivered until the server confirmed the whole file.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import Any, ClassVar

import structlog

from connector.config import FileTargetConfig
from connector.mapping.desired import Desired, build_desired
from connector.people.externalid import ExternalIdMaker
from connector.people.scope import Scoped
from connector.planning.objects import Known
from connector.planning.plan import Plan, PlanRules, make_plan
from connector.progress import Progress
from connector.state.target import TargetState
from connector.targets.base import ApplyReport, CheckReport
from connector.targets.base import Observation as BaseObservation
from connector.targets.file.archive import archive_file
from connector.targets.file.audit import row_changes
from connector.targets.file.delivery import Delivery, DeliveryError, build_delivery
from connector.targets.file.mapping import FileMapping, load_file_mapping
from connector.targets.file.render import checksum, render_file

log = structlog.get_logger(__name__)

# What applying an operation means for a file, in the report's words.
RESULTS = {
    "create_user": "persons_added",
    "rekey_user": "persons_rekeyed",
    "update_user": "persons_changed",
    "deactivate_user": "persons_removed",
    "delete_user": "persons_removed",
}
# A file that would remove everyone at the vendor is never sent, whatever the plan says.
EMPTY_REFUSED = "nothing to deliver: a file without rows would remove every account"


class FileObservation:
    """A full reconcile of a file target: nothing to list, but the whole file is sent again."""

    described: ClassVar[str] = "full reconcile: the whole file sent again"

    def __init__(self, known: Known) -> None:
        self.known = known

    def record(self, state: TargetState) -> None:
        """Nothing was learnt that the state does not already hold."""


class FileTarget:
    kind = "file"

    def __init__(self, config: FileTargetConfig, mapping: FileMapping, delivery: Delivery):
        self.name = config.name
        self.config = config
        self.mapping = mapping
        self.delivery = delivery

    def desire(
        self,
        scoped: Scoped,
        ids: ExternalIdMaker,
        state: TargetState | None = None,
        *,
        dry_run: bool = False,
    ) -> Desired:
        desired = build_desired(scoped, self.mapping, ids)
        desired.groups = {}  # the rows carry the schools
        return desired

    def resolve_interrupted(self, state: TargetState, desired: Desired) -> None:
        """A delivery is all or nothing: no creates are left half-known."""

    def observe(
        self,
        known: Known,
        desired: Desired,
        *,
        page_size: int = 200,
        progress: Progress | None = None,
    ) -> FileObservation:
        return FileObservation(known)

    def plan(self, desired: Desired, known: Known, rules: PlanRules) -> Plan:
        return make_plan(
            desired.users,
            {},
            known,
            protected=desired.protected_ids,
            keep=desired.held_ids,
            rules=rules,
            rekeys=desired.rekeys,
        )

    def apply(
        self,
        plan: Plan,
        state: TargetState,
        known: Known,
        observation: BaseObservation | None,
        stop: threading.Event | None,
        progress: Progress | None = None,
    ) -> ApplyReport:
        """The whole file is one delivery: its operations are all done when it arrived (or
        when nothing needed sending), and none are when a signal came before it started."""
        report = ApplyReport()
        if stop is not None and stop.is_set() and plan:
            report.counts["postponed"] = len(plan.operations)
            return report
        report = self._deliver(plan, state, known, observation)
        if report.succeeded and progress is not None:
            progress.advance(sum(plan.counts().values()))
        return report

    def _deliver(
        self, plan: Plan, state: TargetState, known: Known, observation: BaseObservation | None
    ) -> ApplyReport:
        report = ApplyReport()
        attributes = _after(plan, known)
        rows = [row for person in attributes.values() for row in person.get("rows", [])]
        content = render_file(self.mapping.columns, rows, self.config.format)
        digest = checksum(content)
        last = state.delivered_file()
        unchanged = last is not None and last.get("sha256") == digest
        if not rows:
            log.error("delivery.refused", reason=EMPTY_REFUSED)
            report.vendor_unavailable, report.vendor_error = True, EMPTY_REFUSED
            return report
        if unchanged and observation is None:
            # e.g. a removal of someone with no rows left
            _record(plan, state, attributes, known, self.mapping.columns)
            report.counts.update(RESULTS[op.kind] for op in plan.operations)
            report.succeeded = len(plan.operations)
            return report
        file_name = self.config.format.file_name
        try:
            delivered = self.delivery.deliver(file_name, content)
        except DeliveryError as exc:
            report.vendor_unavailable, report.vendor_error = True, str(exc)
            report.transient_failures = len(plan.operations)
            return report
        now = datetime.now(UTC)
        _record(plan, state, attributes, known, self.mapping.columns)
        state.set_delivered_file(
            {
                "name": delivered.name,
                "bytes": delivered.size,
                "sha256": delivered.sha256,
                "rows": len(rows),
                "at": now.isoformat(timespec="seconds"),
            }
        )
        report.counts.update(RESULTS[op.kind] for op in plan.operations)
        report.counts["files_delivered"] += 1
        for op in plan.operations:  # the vendor has them all now
            report.confirm(op, op.members, now.timestamp())
        report.succeeded = len(plan.operations) + 1
        self._archive(file_name, content, now)
        return report

    def _archive(self, file_name: str, content: bytes, now: datetime) -> None:
        if self.config.archive is None:
            return
        try:
            archive_file(self.config.archive, file_name, content, now)
        except OSError as exc:  # the delivery stands; the audit copy is what failed
            log.error("delivery.archive_failed", error=f"{type(exc).__name__}: {exc.strerror}")

    def check(self, linked: tuple[int, int]) -> CheckReport:
        report = CheckReport()
        report.lines += self.delivery.check()
        report.lines.append(("", f"{linked[0]} persons in the last delivered file"))
        return report

    def requests(self) -> Counter[str]:
        return Counter({"UPLOAD": self.delivery.uploads})

    def close(self) -> None:
        self.delivery.close()


def _after(plan: Plan, known: Known) -> dict[str, dict[str, Any]]:
    """Each person's attributes (with their rows) once the plan is applied: what the file is."""
    people = {ext: dict(user.attributes) for ext, user in known.users.items() if user.active}
    for op in plan.operations:
        if op.kind in ("create_user", "update_user"):
            merged = {**people.get(op.target, {}), **op.attributes}
            people[op.target] = {k: v for k, v in merged.items() if v is not None}
        elif op.kind == "rekey_user":
            # The same row at the vendor (same username), now the new key's: the file is
            # what it would be had the person never changed key.
            people.pop(op.previous, None)
            merged = {**known.users[op.previous].attributes, **op.attributes}
            people[op.target] = {k: v for k, v in merged.items() if v is not None}
        elif op.kind in ("deactivate_user", "delete_user"):
            people.pop(op.target, None)
    return people


def _record(
    plan: Plan,
    state: TargetState,
    people: dict[str, dict[str, Any]],
    known: Known,
    columns: list[str],
) -> None:
    """The delivered file, person by person, as the next plan's known state; what changed
    for each, in the history (row by row, the names of the columns changed)."""
    with state.batch():
        state.history.record(row_changes(plan, known, people, columns, state.history))
        for op in plan.operations:
            if op.kind == "rekey_user" and op.target in people:
                state.rekey_user(op.previous, op.target, op.target, people[op.target])
            elif op.target in people:
                state.record_user(op.target, op.target, "created", people[op.target])
            else:
                state.forget_user(op.target)


def build_file_target(config: FileTargetConfig) -> FileTarget:
    mapping = load_file_mapping(config.mapping, config.format)
    return FileTarget(
        config, mapping, build_delivery(config.delivery, max_retries=config.max_retries)
    )


__all__ = ["FileTarget", "build_file_target"]
