"""`connector status`: what the state file says about recent runs, and whether a daemon runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from connector.reports.render import table
from connector.state.database import StateWhere, state_config
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


@dataclass(slots=True)
class StatusFacts:
    """What `status` and the status page read from the state file."""

    records: list[RunRecord]
    pid: str | None
    next_run: str | None
    target_names: list[str]
    degraded: dict[str, tuple[str, int]]  # target -> (since, failing cycles in a row)
    rejected: tuple[str, str] | None = None  # (when, problems) of a rejected config file


def read_status(state: StateStore, runs: int = 10) -> StatusFacts:
    targets = {name: state.target(name) for name in state.target_names()}
    degraded = {
        name: (since, t.failing_cycles())
        for name, t in targets.items()
        if (since := t.degraded_since())
    }
    return StatusFacts(
        state.last_runs(runs),
        state.daemon_pid(),
        state.next_run(),
        list(targets),
        degraded,
        state.config_rejected(),
    )


def changes_of(summary: dict[str, Any]) -> list[tuple[str, int]]:
    """A run's applied changes (and failures), as (label, count): the usual ones in a fixed
    order, then any other count the run kept (groups created, values granted...) by its key."""
    applied: dict[str, int] = summary.get("applied", {})
    labelled = [(label, applied[key]) for key, label in _CHANGE_KEYS if applied.get(key)]
    known = {key for key, _ in _CHANGE_KEYS}
    others = [(k.replace("_", " "), n) for k, n in sorted(applied.items()) if n and k not in known]
    return labelled + others


def when(iso: str, zone: ZoneInfo) -> str:
    """`2026-12-04 22:10 UTC (23:10 Europe/Stockholm)`: UTC, and the local time beside it."""
    moment = datetime.fromisoformat(iso)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    utc, local = moment.astimezone(UTC), moment.astimezone(zone)
    day = "" if local.date() == utc.date() else f"{local:%Y-%m-%d} "
    return f"{utc:%Y-%m-%d %H:%M} UTC ({day}{local:%H:%M} {zone.key})"


def _started(iso: str, zone: ZoneInfo) -> str:
    moment = datetime.fromisoformat(iso)
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} ({moment.astimezone(zone):%H:%M:%S})"


def render_status(
    state_path: StateWhere, runs: int = 10, timezone: str = "Europe/Stockholm"
) -> str:
    """Needs the state file only: no config secrets, no daemon. Times in UTC, with the local
    time (`daemon.timezone`) beside them."""
    zone = ZoneInfo(timezone)
    state = StateStore.open_readonly(state_path)
    if state is None:
        config = state_config(state_path)
        where = f"file at {config.path}" if config.path else f"in {config.url}"
        return f"No state {where}: the connector has not run yet."
    try:
        facts = read_status(state, runs)
        approvals = state.approvals()
    finally:
        state.close()
    records, targets = facts.records, facts.target_names
    lines = _daemon_lines(state_path, facts.pid, facts.next_run, zone)
    if facts.rejected:
        when_at, problems = facts.rejected
        lines.append(f"Config rejected at {when(when_at, zone)}: {problems}")
        lines.append("  (the daemon runs on the config it had; fix the file to clear this)")
    for name, (since, failing) in facts.degraded.items():
        who = "Vendor" if len(targets) == 1 else f"Target {name}"
        lines.append(
            f"{who}: DEGRADED since {when(since, zone)} ({failing} failing cycles in a row; "
            "cycles are slowed down until it answers again)"
        )
    lines.append("")
    if not records:
        lines.append("No runs recorded yet.")
        return "\n".join(lines)
    lines.append(_runs_table(records, zone, several=len(targets) > 1))
    lines += _last_run_notes(records)
    lines += approval_lines(approvals)
    return "\n".join(lines)


def _daemon_lines(
    state_path: StateWhere, pid: str | None, next_run: str | None, zone: ZoneInfo
) -> list[str]:
    if not StateStore.lock_is_held(state_path):
        return ["Daemon: not running"]
    lines = [f"Daemon: running (pid {pid})" if pid else "A connector process is running."]
    if next_run:
        due = datetime.fromisoformat(next_run)
        seconds = (due - datetime.now(UTC)).total_seconds()
        lines.append(f"Next cycle: {when(next_run, zone)}, in {max(seconds, 0):.0f} s")
    return lines


def _runs_table(records: list[RunRecord], zone: ZoneInfo, *, several: bool) -> str:
    rows = []
    for record in records:
        applied = record.summary.get("applied", {})
        changes = ", ".join(
            f"{label} {applied[key]}" for key, label in _CHANGE_KEYS if applied.get(key)
        )
        row = (
            _started(record.started_at, zone),
            _duration(record.started_at, record.finished_at),
            record.command,
            record.outcome or "-",
            changes or "no changes",
        )
        rows.append((record.target, *row) if several else row)
    headers = (f"STARTED UTC ({zone.key})", "DURATION", "COMMAND", "OUTCOME", "CHANGES")
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
        if record.outcome == "interrupted":
            left = last.get("applied", {}).get("postponed", 0)
            lines.append(
                f"\nInterrupted in the last run (stopped by a signal): {left} planned "
                "operations were not sent; the next cycle plans them again"
            )
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
