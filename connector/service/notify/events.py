"""What is worth telling an operator, found in the cycles' results - and nothing personal.

An event carries only names from the config (targets, sources), counts, operation kinds, run
ids and hold reasons. The hold reasons the safety rules write are built from counts and the
config, except where a source is named with why it is unhealthy: a failed source's reason is
the source's own error text (a server's message, a file's header), so here it is replaced by
the word "failed" - the log (`source.failed`) has the rest.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from connector.cycle.result import CycleResult
from connector.planning.guard import approval_keys


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # one of config.notify.EVENTS, or "test"
    target: str | None = None
    source: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    run_id: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """What the rate limit counts by: the event and its target or source."""
        return self.kind, self.target or self.source or ""


# Reasons the safety rules (planning/guard.py) build from counts and the config only.
_COUNTS_ONLY = (
    re.compile(r"^threshold: \d+ "),
    re.compile(r"^school-year rollover window \d\d-\d\d to \d\d-\d\d$"),
    re.compile(r"^re-key: \d+ account\(s\) "),
    re.compile(r"^\d+ newly protected persons \("),
)
_UNHEALTHY = re.compile(r"^(unhealthy source(?:, re-keys wait)?): ")
_SHRUNK = re.compile(r"^returned \d+ persons, \d+ at the last good read \(below [\d.]+%\)$")
GENERIC_REASON = "held back by a safety rule (the log's guard.held says which)"


def safe_reason(reason: str, result: CycleResult) -> str:
    """A hold reason as a notification may carry it."""
    if any(pattern.match(reason) for pattern in _COUNTS_ONLY):
        return reason
    unhealthy = _UNHEALTHY.match(reason)
    if unhealthy:
        return f"{unhealthy.group(1)}: {'; '.join(_source_states(result))}"
    return GENERIC_REASON


def _source_states(result: CycleResult) -> list[str]:
    failed = {failure.source for failure in result.source_failures}
    states = []
    for name in sorted(failed | result.unhealthy_sources.keys()):
        why = result.unhealthy_sources.get(name, "")
        if name in failed:
            states.append(f"{name} failed")
        elif _SHRUNK.match(why):
            states.append(f"{name} {why}")
        else:
            states.append(f"{name} unhealthy")
    return states


def config_keys(problems: Iterable[str]) -> list[str]:
    """The keys a rejected config's problems concern (`targets[0].base_url`), not their text."""
    keys = []
    for problem in problems:
        where = problem.split(": ", 1)[0]
        if re.fullmatch(r"[A-Za-z0-9_.\[\]]+|line \d+, column \d+|\(top level\)", where):
            keys.append(where)
    return sorted(set(keys))


class Detector:
    """Turns each cycle's results into events: a new held plan, a target becoming degraded or
    recovering, a source failing `source_failed_after` cycles in a row (and reading again).
    Remembers only the last cycle's picture, in memory."""

    def __init__(self, source_failed_after: int) -> None:
        self.source_failed_after = source_failed_after
        self._held: dict[str, frozenset[str]] = {}  # target -> its held plan's steps
        self._degraded: set[str] = set()
        self._failing: dict[str, int] = {}  # source -> cycles failed in a row

    def observe(self, results: Sequence[CycleResult], sources: Sequence[str]) -> list[Event]:
        events: list[Event] = []
        for result in results:
            events += self._target_events(result)
        if results:
            events += self._source_events(results[0], sources)
        return events

    def _target_events(self, result: CycleResult) -> list[Event]:
        events = []
        target, run_id = result.target, result.run_id
        steps = _held_steps(result)
        if steps and steps != self._held.get(target):
            events.append(
                Event(
                    "held",
                    target=target,
                    counts=dict(sorted(result.held_back.items())),
                    reasons=tuple(safe_reason(r, result) for r in result.hold_reasons),
                    run_id=run_id,
                )
            )
        if steps:
            self._held[target] = steps
        else:
            self._held.pop(target, None)
        if result.degraded and target not in self._degraded:
            self._degraded.add(target)
            counts = {"failing_cycles": result.failing_cycles}
            events.append(Event("degraded", target=target, counts=counts, run_id=run_id))
        elif not result.degraded and target in self._degraded:
            self._degraded.discard(target)
            events.append(Event("recovered", target=target, run_id=run_id))
        return events

    def _source_events(self, result: CycleResult, sources: Sequence[str]) -> list[Event]:
        failed = {failure.source for failure in result.source_failures}
        events = []
        for name in sources:
            before = self._failing.get(name, 0)
            now = before + 1 if name in failed else 0
            self._failing[name] = now
            if now == self.source_failed_after:
                counts = {"cycles_failed": now}
                events.append(
                    Event("source_failed", source=name, counts=counts, run_id=result.run_id)
                )
            elif now == 0 and before >= self.source_failed_after:
                events.append(Event("source_recovered", source=name, run_id=result.run_id))
        return events


def _held_steps(result: CycleResult) -> frozenset[str]:
    """What identifies a held plan: the steps approving it would release (or, for a plan of
    steps no approval key names, its counts)."""
    if not result.held_plan.operations:
        return frozenset()
    keys = approval_keys(result.held_plan)
    return keys or frozenset(f"{kind}={n}" for kind, n in result.held_back.items())
