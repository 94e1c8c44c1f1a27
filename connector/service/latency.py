"""Change-to-vendor latency: from a person's change in a source (by the source's own clock) to
the vendor confirming the operations it caused, for `connector_change_latency_seconds`.

A change counts once, in the cycle that brings it to the vendor, and only if it is newer than
the start of the target's last successful cycle: an older one was seen by that cycle already,
so an operation for that person now (a retry after a failure aside, which keeps the mark where
it was) has another cause - an edited mapping, a repaired drift - and is not that change
arriving. Nothing here names a person: a time, and the source's name from the config.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

from connector.people.model import Modified

# Seconds: from "within one short interval" to "a night's cron job".
LATENCY_BUCKETS = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 1800, 3600, 14400)


def change_latencies(
    modified: Mapping[str, Modified], confirmed: Mapping[str, float], since: float
) -> Iterator[tuple[str, float]]:
    """(source, seconds) for each person whose change since `since` the vendor confirmed.

    `modified`: externalId -> when a source last changed the person's record; `confirmed`:
    externalId -> when the vendor confirmed the last operation for them. A source's clock
    ahead of ours gives 0, not a negative time. A directory's timestamps are whole seconds:
    such a change in the second `since` began counts (it may have come after that read)."""
    whole_second = math.floor(since)
    for external_id, at in confirmed.items():
        change = modified.get(external_id)
        if change is None:
            continue
        if change.at > since or (change.at.is_integer() and change.at >= whole_second):
            yield change.source, max(at - change.at, 0.0)
