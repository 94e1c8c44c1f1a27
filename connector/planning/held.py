"""A plan held back by the safety rules, as kept between a cycle and `connector approve`.

Updates are kept by the attributes they change, never their values: approving re-plans them
from the sources anyway, and the state file need not hold a second copy of every name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.planning.plan import Operation, Plan


@dataclass(slots=True)
class HeldPlan:
    run_id: str
    held_at: str  # ISO 8601, UTC
    reasons: list[str] = field(default_factory=list)
    plan: Plan = field(default_factory=Plan)

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "held_at": self.held_at,
            "reasons": list(self.reasons),
            "operations": [op.as_dict(values=False) for op in self.plan.operations],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HeldPlan:
        return cls(
            str(data["run_id"]),
            str(data["held_at"]),
            [str(reason) for reason in data.get("reasons", [])],
            Plan([Operation.from_dict(op) for op in data.get("operations", [])]),
        )
