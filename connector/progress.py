"""How far a cycle has come: one tracker per cycle, handed down to the code that does the work.

The cycle starts a phase for a target (`apply`: the plan's operations; `list_users`,
`list_groups`: a full reconcile's listing of the vendor, page by page) and the work ticks it
(`advance` per operation, `update` per page). Every `every_seconds` a tick logs
`sync.progress` (done, planned, rate, eta; counts only, never anything about a person), and
every tick tells the listeners (the daemon's metrics, the terminal's progress bar).

Ticking is cheap (a lock and a few numbers) and thread-safe: applying runs requests on a
thread pool. A phase shorter than `every_seconds` logs nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)

DEFAULT_EVERY_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Where one phase of one target stands."""

    target: str
    phase: str
    done: int
    planned: int
    elapsed_seconds: float
    finished: bool = False

    @property
    def rate(self) -> float:
        """Done per second since the phase began (0 until time has passed)."""
        return self.done / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """When the rest will be done at the rate so far; None while that cannot be said."""
        left = max(self.planned - self.done, 0)
        if not left:
            return 0.0
        rate = self.rate
        return left / rate if rate > 0 else None

    def fields(self) -> dict[str, object]:
        """The `sync.progress` event's fields."""
        eta = self.eta_seconds
        return {
            "target": self.target,
            "phase": self.phase,
            "done": self.done,
            "planned": self.planned,
            "rate": round(self.rate, 1),
            "eta_seconds": None if eta is None else round(eta),
        }


class ProgressListener(Protocol):
    def progressed(self, snapshot: Snapshot) -> None:
        """Called on every tick (under the tracker's lock: keep it short)."""


class Progress:
    """One cycle's progress, phase by phase; see the module's docstring."""

    def __init__(
        self,
        every_seconds: float = DEFAULT_EVERY_SECONDS,
        listeners: Iterable[ProgressListener] = (),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.every_seconds = every_seconds
        self.listeners = list(listeners)
        self._clock = clock
        self._lock = threading.Lock()
        self._target = ""
        self._phase = ""
        self._done = 0
        self._planned = 0
        self._started = clock()
        self._next_event = self._started + every_seconds
        self._active = False

    def begin(self, target: str, phase: str, planned: int = 0) -> None:
        """A new phase: nothing done yet of `planned` (0 while not known, e.g. before the
        first page of a listing)."""
        with self._lock:
            self._target, self._phase = target, phase
            self._done, self._planned = 0, planned
            self._started = self._clock()
            self._next_event = self._started + self.every_seconds
            self._active = True
            self._tell(self._snapshot(self._started))

    def advance(self, count: int = 1) -> None:
        """`count` more of the phase are done (failed ones too: they were worked on)."""
        with self._lock:
            if self._active:
                self._done += count
                self._tick()

    def update(self, done: int, planned: int) -> None:
        """Where the phase stands, as a whole (a listing: read so far, announced in all)."""
        with self._lock:
            if self._active:
                self._done, self._planned = done, planned
                self._tick()

    def finish(self) -> None:
        """The phase is over (what is not done by now is left for the next cycle)."""
        with self._lock:
            if self._active:
                self._active = False
                self._tell(self._snapshot(self._clock(), finished=True))

    def snapshot(self) -> Snapshot:
        with self._lock:
            return self._snapshot(self._clock(), finished=not self._active)

    def _tick(self) -> None:
        now = self._clock()
        snapshot = self._snapshot(now)
        if now >= self._next_event:
            self._next_event = now + self.every_seconds
            log.info("sync.progress", **snapshot.fields())
        self._tell(snapshot)

    def _snapshot(self, now: float, *, finished: bool = False) -> Snapshot:
        elapsed = max(now - self._started, 0.0)
        return Snapshot(self._target, self._phase, self._done, self._planned, elapsed, finished)

    def _tell(self, snapshot: Snapshot) -> None:
        for listener in self.listeners:
            listener.progressed(snapshot)
