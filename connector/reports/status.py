"""`connector status`: what the state file says about recent runs, and whether a daemon runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from connector.cycle.run import DEGRADED_SINCE, FAILING_CYCLES
from connector.reports.render import table
from connector.service.daemon import DAEMON_PID, NEXT_RUN
from connector.state.store import StateStore

_CHANGE_KEYS = (
    ("users_created", "created"),
    ("users_recovered", "found"),
    ("users_linked", "linked"),
    ("users_updated", "updated"),
    ("users_deactivated", "deactivated"),
    ("users_deleted", "deleted"),
    ("members_added", "+members"),
    ("members_removed", "-members"),
    ("failed", "failed"),
)


def _duration(started: str, finished: str | None) -> str:
    if not finished:
        return "running or interrupted"
    seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    return f"{seconds:.0f} s"


def render_status(state_path: Path, runs: int = 10) -> str:
    state = StateStore.open_readonly(state_path)
    if state is None:
        return f"No state file at {state_path}: the connector has not run yet."
    try:
        records = state.last_runs(runs)
        pid = state.get_meta(DAEMON_PID)
        next_run = state.get_meta(NEXT_RUN)
        degraded_since = state.get_meta(DEGRADED_SINCE)
        failing = state.get_meta(FAILING_CYCLES)
    finally:
        state.close()
    lines = []
    if StateStore.lock_is_held(state_path):
        lines.append(f"Daemon: running (pid {pid})" if pid else "A connector process is running.")
        if next_run:
            due = datetime.fromisoformat(next_run)
            seconds = (due - datetime.now(UTC)).total_seconds()
            lines.append(
                f"Next cycle: {due.isoformat(timespec='seconds')} (in {max(seconds, 0):.0f} s)"
            )
    else:
        lines.append("Daemon: not running")
    if degraded_since:
        lines.append(
            f"Vendor: DEGRADED since {degraded_since} ({failing} failing cycles in a row; "
            "cycles are slowed down until it answers again)"
        )
    lines.append("")
    if not records:
        lines.append("No runs recorded yet.")
        return "\n".join(lines)
    rows = []
    for record in records:
        applied = record.summary.get("applied", {})
        changes = ", ".join(
            f"{label} {applied[key]}" for key, label in _CHANGE_KEYS if applied.get(key)
        )
        rows.append(
            (
                record.started_at,
                _duration(record.started_at, record.finished_at),
                record.command,
                record.outcome or "-",
                changes or "no changes",
            )
        )
    lines.append(table(("STARTED (UTC)", "DURATION", "COMMAND", "OUTCOME", "CHANGES"), rows))
    last = records[0].summary
    if last.get("held_back"):
        held = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in last["held_back"].items())
        lines.append(
            f"\nHeld back in the last run ({'; '.join(last.get('hold_reasons', []))}): {held}"
        )
    if last.get("source_failures"):
        lines.append(f"Sources that failed in the last run: {', '.join(last['source_failures'])}")
    return "\n".join(lines)
