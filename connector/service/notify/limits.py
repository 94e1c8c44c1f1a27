"""How often an operator is told: the same event for the same target or source at most once per
`min_interval_seconds`, at most `max_per_hour` messages in all, and a recovery always told
after its trouble was.

Kept in memory: a restart forgets it, so a target still held back or degraded after a restart
is told about once more.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from connector.service.notify.events import Event

HOUR = 3600.0
# A recovery and the trouble it ends.
RECOVERS = {"recovered": "degraded", "source_recovered": "source_failed"}


class RateLimiter:
    def __init__(
        self,
        min_interval_seconds: float,
        max_per_hour: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.min_interval_seconds = min_interval_seconds
        self.max_per_hour = max_per_hour
        self._clock = clock
        self._last: dict[tuple[str, str], float] = {}
        self._sent: deque[float] = deque()
        self._told: set[tuple[str, str]] = set()  # troubles told, whose recovery is still to come

    def admit(self, event: Event) -> str | None:
        """None when the event may be sent now (and it counts as sent), else why not."""
        now = self._clock()
        while self._sent and now - self._sent[0] >= HOUR:
            self._sent.popleft()
        trouble = RECOVERS.get(event.kind)
        if trouble is not None:
            told = (trouble, event.key[1])
            if told not in self._told:
                return "its trouble was not told"
            self._told.discard(told)
            self._record(event, now)
            return None
        last = self._last.get(event.key)
        if last is not None and now - last < self.min_interval_seconds:
            return "min_interval_seconds"
        if len(self._sent) >= self.max_per_hour:
            return "max_per_hour"
        self._record(event, now)
        if event.kind in RECOVERS.values():
            self._told.add(event.key)
        return None

    def _record(self, event: Event, now: float) -> None:
        self._last[event.key] = now
        self._sent.append(now)
