"""`connector status`: what the state file says about recent runs, and whether a daemon runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from connector.reports.render import table
from connector.state.store import Approval, RunRecord, StateStore

_CHANGE_KEYS = (
    ("users_created", "created"),
    ("users_recovered", "found"),
    ("users_linked", "linked"),
    ("users_rekeyed", "re-keyed"),
    ("users_updated", "updated"),
    ("users_deactivated", "deactivated"),
    ("users_deleted", "deleted"),
    ("members_added", "+members"),
    ("members_removed", "-members"),
    ("persons_added", "+persons"),
    ("persons_changed", "~persons"),
    ("persons_removed", "-persons"),
    ("files_delivered", "file delivered"),
    ("failed", "failed"),
)


def _duration(started: str, finished: str | None) -> str:
    if not finished:
        return "running or interrupted"
    seconds = (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()
    return f"{seconds:.0f} s"


def render_status(state_path: Path, runs: int = 10) -> str:
    """Needs the state file only: no config secrets, no daemon."""
    state = StateStore.open_readonly(state_path)
    if state is None:
        return f"No state file at {state_path}: the connector has not run yet."
    try:
        records = state.last_runs(runs)
        pid, next_run = state.daemon_pid(), state.next_run()
        targets = {name: state.target(name) for name in state.target_names()}
        degraded = {
            name: (t.degraded_since(), t.failing_cycles())
            for name, t in targets.items()
            if t.degraded_since()
        }
        approvals = state.approvals()
    finally:
        state.close()
    lines = _daemon_lines(state_path, pid, next_run)
    for name, (since, failing) in degraded.items():
        who = "Vendor" if len(targets) == 1 else f"Target {name}"
        lines.append(
            f"{who}: DEGRADED since {since} ({failing} failing cycles in a row; "
            "cycles are slowed down until it answers again)"
        )
    lines.append("")
    if not records:
        lines.append("No runs recorded yet.")
        return "\n".join(lines)
    lines.append(_runs_table(records, several=len(targets) > 1))
    lines += _last_run_notes(records)
    lines += approval_lines(approvals)
    return "\n".join(lines)


def _daemon_lines(state_path: Path, pid: str | None, next_run: str | None) -> list[str]:
    if not StateStore.lock_is_held(state_path):
        return ["Daemon: not running"]
    lines = [f"Daemon: running (pid {pid})" if pid else "A connector process is running."]
    if next_run:
        due = datetime.fromisoformat(next_run)
        seconds = (due - datetime.now(UTC)).total_seconds()
        lines.append(
            f"Next cycle: {due.isoformat(timespec='seconds')} (in {max(seconds, 0):.0f} s)"
        )
    return lines


def _runs_table(records: list[RunRecord], *, several: bool) -> str:
    rows = []
    for record in records:
        applied = record.summary.get("applied", {})
        changes = ", ".join(
            f"{label} {applied[key]}" for key, label in _CHANGE_KEYS if applied.get(key)
        )
        row = (
            record.started_at,
            _duration(record.started_at, record.finished_at),
            record.command,
            record.outcome or "-",
            changes or "no changes",
        )
        rows.append((record.target, *row) if several else row)
    headers = ("STARTED (UTC)", "DURATION", "COMMAND", "OUTCOME", "CHANGES")
    return table(("TARGET", *headers) if several else headers, rows)


def _last_run_notes(records: list[RunRecord]) -> list[str]:
    """What was held back or failed in each target's last run."""
    lines = []
    seen: set[str] = set()
    for record in records:
        if record.target in seen:
            continue
        seen.add(record.target)
        last = record.summary
        if last.get("held_back"):
            held = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in last["held_back"].items())
            reasons = "; ".join(last.get("hold_reasons", []))
            lines.append(f"\nHeld back in the last run ({reasons}): {held}")
        if last.get("source_failures"):
            lines.append(
                f"Sources that failed in the last run: {', '.join(last['source_failures'])}"
            )
    return lines


def approval_lines(approvals: list[Approval]) -> list[str]:
    """Pending approvals (who, when, which target, how many steps) and the last settled ones."""
    if not approvals:
        return []
    rows = []
    for approval in approvals:
        if approval.status == "pending":
            what = "waits for the next cycle"
        elif approval.status == "applied":
            what = f"applied {approval.applied_at} in run {approval.applied_run_id}"
        else:
            what = f"expired {approval.applied_at} (nothing it approved was left, or too old)"
        rows.append(
            (
                approval.status.upper() if approval.status == "pending" else approval.status,
                approval.id,
                approval.target,
                approval.requested_by,
                approval.requested_at,
                str(len(approval.keys)),
                what,
            )
        )
    headers = (
        "APPROVAL",
        "ID",
        "TARGET",
        "BY",
        "REQUESTED (UTC)",
        "OPERATIONS",
        "WHAT BECAME OF IT",
    )
    return ["", "Approvals:", table(headers, rows)]
