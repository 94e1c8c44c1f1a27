"""What a cycle needs from a target - a place the connector keeps in step with the sources.

A cycle reads the sources once; for each target it maps the people with the target's own
mapping, reads what the target's part of the state file knows, and then asks the target to:
resolve creates an interrupted run may have sent, observe its real state (a full reconcile),
plan, and apply the guarded plan. The safety rules, the state and the cycle itself are the
same for every target; a new kind of target is a new sub-package implementing this.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from connector.config import ScimTargetConfig
from connector.mapping.desired import Desired
from connector.mapping.profile import Mapping
from connector.planning.objects import Known
from connector.planning.plan import Plan, PlanRules
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

    def record(self, state: TargetState) -> None:
        """Bring the target's state file records in line with what was found."""


class ApplyOutcome(Protocol):
    """What applying a plan came to (read-only here)."""

    @property
    def counts(self) -> Counter[str]: ...
    @property
    def failures(self) -> list[dict[str, Any]]: ...
    @property
    def transient_failures(self) -> int: ...
    @property
    def succeeded(self) -> int: ...
    @property
    def vendor_unavailable(self) -> bool: ...
    @property
    def vendor_error(self) -> str | None: ...


class Target(Protocol):
    name: str
    config: ScimTargetConfig
    mapping: Mapping

    def resolve_interrupted(self, state: TargetState, desired: Desired) -> None:
        """Link what creates of an interrupted run left at the target."""

    def observe(self, known: Known, desired: Desired, *, page_size: int = 200) -> Observation:
        """The target's real state of what the connector owns (raises if implausible);
        reads only."""

    def plan(self, desired: Desired, known: Known, rules: PlanRules) -> Plan:
        """The operations that bring the target from `known` to `desired`."""

    def apply(
        self,
        plan: Plan,
        state: TargetState,
        known: Known,
        observation: Observation | None,
        stop: threading.Event | None,
    ) -> ApplyOutcome:
        """Carry out the plan, recording each outcome in the target's state."""

    def check(self, linked: tuple[int, int]) -> CheckReport:
        """For `connector check`: reach the target, say what it offers, and whether what it
        lists is plausible against the (users, groups) the state file links."""

    def requests(self) -> Counter[str]:
        """Requests sent so far, by method."""

    def close(self) -> None: ...
