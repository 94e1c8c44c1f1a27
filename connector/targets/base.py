"""What a cycle needs from a target - a place the connector keeps in step with the sources.

A cycle reads the sources once; for each target it maps the people with the target's own
mapping, reads what the target's part of the state file knows, and then asks the target to:
resolve creates an interrupted run may have sent, observe its real state (a full reconcile),
plan, and apply the guarded plan. The safety rules, the state and the cycle itself are the
same for every target; a new kind of target is a new sub-package implementing this.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from connector.config import TargetConfig
from connector.mapping.desired import Desired, PersonMapping
from connector.people.externalid import ExternalIdMaker
from connector.people.scope import Scoped
from connector.planning.objects import Known
from connector.planning.plan import Operation, Plan, PlanRules
from connector.progress import Progress
from connector.state.target import TargetState


@dataclass(slots=True)
class CheckReport:
    # (status, text): "ok" or "FAIL" for a finding, "" for a detail under the one before.
    lines: list[tuple[str, str]] = field(default_factory=list)

    @property
    def problems(self) -> int:
        return sum(1 for status, _ in self.lines if status == "FAIL")


class Observation(Protocol):
    """What a full reconcile found: the known state as the target really holds it."""

    known: Known
    # What the reconcile did, for the cycle's summary line.
    described: ClassVar[str]

    def record(self, state: TargetState) -> None:
        """Bring the target's state file records in line with what was found."""


# Operations whose target is a user (the others' is a group).
USER_OPERATIONS = frozenset(
    {
        "create_user",
        "rekey_user",
        "update_user",
        "deactivate_user",
        "delete_user",
        "grant_values",
        "revoke_values",
    }
)


@dataclass(slots=True)
class ApplyReport:
    """What applying a plan came to, for any kind of target."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: list[dict[str, Any]] = field(default_factory=list)
    transient_failures: int = 0
    succeeded: int = 0
    vendor_unavailable: bool = False
    # Why the vendor as a whole could not be worked with (a VendorError), if it could not.
    vendor_error: str | None = None
    # externalId -> when the vendor last confirmed a change to that user, or to their
    # memberships, in this run (Unix time): where a person's change arrived.
    confirmed: dict[str, float] = field(default_factory=dict)

    def confirm(self, op: Operation, members: Iterable[str] = (), at: float | None = None) -> None:
        """The vendor confirmed `op` (a membership change: for `members`), at `at` (now)."""
        when = time.time() if at is None else at
        if op.kind in USER_OPERATIONS:
            self.confirmed[op.target] = when
        for member in members:
            self.confirmed[member] = when


class Target(Protocol):
    name: str
    kind: str

    @property
    def config(self) -> TargetConfig: ...
    @property
    def mapping(self) -> PersonMapping: ...

    def desire(
        self,
        scoped: Scoped,
        ids: ExternalIdMaker,
        state: TargetState | None = None,
        *,
        dry_run: bool = False,
    ) -> Desired:
        """What this target should hold of the people in scope, through its own mapping.
        `state`: what the target gave before (generated usernames); `dry_run`: give nothing
        new for good (`connector plan`)."""

    def resolve_interrupted(self, state: TargetState, desired: Desired) -> None:
        """Link what creates of an interrupted run left at the target."""

    def observe(
        self,
        known: Known,
        desired: Desired,
        *,
        page_size: int = 200,
        progress: Progress | None = None,
    ) -> Observation:
        """The target's real state of what the connector owns (raises if implausible);
        reads only. A long listing tells `progress` how far it has come."""

    def plan(self, desired: Desired, known: Known, rules: PlanRules) -> Plan:
        """The operations that bring the target from `known` to `desired`."""

    def apply(
        self,
        plan: Plan,
        state: TargetState,
        known: Known,
        observation: Observation | None,
        stop: threading.Event | None,
        progress: Progress | None = None,
    ) -> ApplyReport:
        """Carry out the plan, recording each outcome in the target's state. Each operation
        done (or failed) advances `progress` as the plan counts it (a membership change by its
        members); once `stop` is set, nothing new starts and what did not start is counted
        `postponed`."""

    def check(self, linked: tuple[int, int]) -> CheckReport:
        """For `connector check`: reach the target, say what it offers, and whether what it
        lists is plausible against the (users, groups) the state file links."""

    def requests(self) -> Counter[str]:
        """Requests sent so far, by method."""

    def close(self) -> None: ...
