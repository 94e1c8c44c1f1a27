"""What the status page shows from the state file: the last runs (as `status` reads them), and
per target what is held back and why, pending approvals, objects that keep failing and the
possible duplicates counted at the last full reconcile.

Objects are named by their opaque ref (the first 12 characters of the externalId); a name
(userName, a group's displayName) only when `show_names` is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from connector.planning.held import HeldPlan
from connector.reports.status import StatusFacts, read_status
from connector.state.database import STATE_ERRORS, StateWhere
from connector.state.store import StateStore
from connector.state.target import TargetState
from connector.targets.scim.outcome import ref

# At most this many held or failing objects are listed per target; the counts cover them all.
LISTED = 50


@dataclass(frozen=True, slots=True)
class ObjectRow:
    kind: str  # the operation kind (create_user, deactivate_user, add_members, ...)
    ref: str
    name: str | None = None  # only with show_names
    detail: str = ""  # e.g. "12 members", "3 attempts, next 2025-01-01T02:00:00+00:00"


@dataclass(frozen=True, slots=True)
class PendingApproval:
    id: str
    held_run_id: str
    operations: int
    requested_at: str
    requested_by: str | None  # an operator's name: only with show_names


@dataclass(slots=True)
class TargetFacts:
    name: str
    held: HeldPlan | None = None
    held_objects: list[ObjectRow] = field(default_factory=list)
    approvals: list[PendingApproval] = field(default_factory=list)
    failing_counts: dict[str, int] = field(default_factory=dict)  # operation kind -> objects
    failing: list[ObjectRow] = field(default_factory=list)
    duplicates: tuple[int, str] | None = None  # (count, when counted)


@dataclass(slots=True)
class Overview:
    """None of it when there is no state file yet; `problem` when it could not be read."""

    status: StatusFacts | None = None
    targets: list[TargetFacts] = field(default_factory=list)
    problem: str | None = None
    show_names: bool = False


def read_overview(path: StateWhere, *, runs: int = 30, show_names: bool = False) -> Overview:
    """Through a read-only connection of its own, closed before returning; never raises for
    a missing, busy or broken file (the page then says what it could not read)."""
    try:
        state = StateStore.open_readonly(path)
    except (*STATE_ERRORS, OSError) as exc:
        return Overview(problem=f"the state file could not be opened ({_why(exc)})")
    if state is None:
        return Overview(problem="no state file yet: the connector has not run")
    try:
        status = read_status(state, runs)
        targets = [_target(state.target(n), show_names) for n in status.target_names]
        return Overview(status, targets, show_names=show_names)
    except (*STATE_ERRORS, ValueError, KeyError) as exc:
        return Overview(problem=f"the state file could not be read just now ({_why(exc)})")
    finally:
        state.close()


def _why(exc: BaseException) -> str:
    """The kind of trouble, never a path's or a row's content beyond SQLite's own words."""
    return f"{type(exc).__name__}: {exc}" if isinstance(exc, STATE_ERRORS) else type(exc).__name__


def _target(state: TargetState, show_names: bool) -> TargetFacts:
    facts = TargetFacts(state.target, held=state.held_plan(), duplicates=state.duplicates())
    failures = state.failures()
    for key, _, _ in failures:
        kind = key.split(":", 1)[0]
        facts.failing_counts[kind] = facts.failing_counts.get(kind, 0) + 1
    held_ops = facts.held.plan.operations[:LISTED] if facts.held else []
    listed = [key.split(":", 1)[-1] for key, _, _ in failures[:LISTED]]
    wanted = [op.target for op in held_ops] + listed
    names = state.names_of(wanted) if show_names else {}
    for op in held_ops:
        detail = f"{len(op.members)} members" if op.members else (op.reason or "")
        facts.held_objects.append(ObjectRow(op.kind, ref(op.target), names.get(op.target), detail))
    for key, attempts, when in failures[:LISTED]:
        kind, _, ext = key.partition(":")
        detail = f"{attempts} attempt{'s' if attempts != 1 else ''}; next try {when[:19]}Z"
        facts.failing.append(ObjectRow(kind, ref(ext), names.get(ext), detail))
    for pending in state.pending_approvals():
        who = pending.requested_by if show_names else None
        facts.approvals.append(
            PendingApproval(
                pending.id, pending.held_run_id, len(pending.keys), pending.requested_at, who
            )
        )
    return facts
