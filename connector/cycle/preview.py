"""What a sync would do, for `connector plan`: the same reading, planning and safety rules,
changing nothing anywhere (the state file is read, never written; the vendor only listed)."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from connector.config import Config
from connector.cycle.guarding import guard, plan_rules
from connector.cycle.rekeying import recognise_rekeys
from connector.cycle.result import CycleResult
from connector.cycle.run import desire, new_run_id
from connector.cycle.sources import read_all
from connector.planning.objects import Known
from connector.service import memory
from connector.state.store import StateStore
from connector.targets.base import Target


def preview(config: Config, targets: list[Target], *, full: bool = False) -> list[CycleResult]:
    """One result per target. `full`: compare with the vendor's real state (read-only), as a
    full reconcile would."""
    run_id = new_run_id()
    structlog.contextvars.bind_contextvars(run_id=run_id)
    now = datetime.now(UTC)
    state = StateStore.open_readonly(config.state)
    try:
        known = {t.name: state.target(t.name).load_known() if state else Known() for t in targets}
        last_good = state.source_counts() if state else {}
        memory.planning()
        sources = read_all(config)
        # Generated usernames: those given before, and what would be given now (not kept).
        desires = {
            t.name: desire(
                config, t, sources, state.target(t.name) if state else None, dry_run=True
            )
            for t in targets
        }
    finally:
        if state:
            state.close()
    results = []
    for target in targets:
        desired = desires[target.name]
        seen = known[target.name]
        if full:
            seen = target.observe(seen, desired, page_size=config.reconcile.page_size).known
        recognise_rekeys(config, desired, seen, sources.scoped)
        plan = target.plan(desired, seen, plan_rules(config, target.config.member_chunk_size, now))
        result = CycleResult(run_id, plan, desired, sources.reads, sources.failures, target.name)
        guard(result, config, target.config, seen, now, last_good=last_good)
        results.append(result)
    return results
