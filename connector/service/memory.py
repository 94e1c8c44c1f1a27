"""How the connector asks Python's garbage collector to behave.

Reading and planning allocate millions of small objects (people, placements, attribute
dicts) that live until the cycle ends and seldom form reference cycles. With Python's default
thresholds the cyclic collector walks all of them again and again as they pile up: a third of
the CPU time of planning for 100,000 persons. So while a cycle reads and plans, it collects
far less often. Applying is different: each HTTP request leaves a little cyclic garbage, and
collecting it often keeps memory small and warm (rare collections made applying ~7% slower),
so the defaults are back by then. The daemon collects once after each cycle.
"""

from __future__ import annotations

import gc

# Objects allocated (minus freed) before a young collection; then how many young collections
# make a middle one, and middle ones an old one.
WHILE_PLANNING = (100_000, 50, 100)
WHILE_APPLYING = gc.get_threshold()  # Python's defaults (700, 10, 10)


def tune_for_large_cycles() -> None:
    """Call once at start-up, after the imports: what is loaded then lives for the whole
    process, so no collection needs to look at it again."""
    gc.freeze()


def planning() -> None:
    """From here on the cycle reads its sources and plans: collect rarely."""
    gc.set_threshold(*WHILE_PLANNING)


def applying() -> None:
    """From here on the cycle sends requests (and after it ends): collect as usual."""
    gc.set_threshold(*WHILE_APPLYING)


def collect_after_cycle() -> None:
    """Free what a finished cycle left in reference cycles (exceptions, tracebacks)."""
    applying()
    gc.collect()
