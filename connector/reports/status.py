"""`connector status`: what the state file says about recent runs, and whether a daemon runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from connector.reports.render import table
from connector.state.store import RunRecord, StateStore

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


def render_status(state_path: Path, runs: int = 10, timezone: str = "Europe/Stockholm") -> str:
    """Needs the state file only: no config secrets, no daemon. Times in UTC, with the local
    time (`daemon.timezone`) beside them."""
    zone = ZoneInfo(timezone)
    state = StateStore.open_readonly(state_path)
    if state is None:
        return f"No state file at {state_path}: the connector has not run yet."
    try:
        records = state.last_runs(runs)
        pid, next_run, rejected = state.daemon_pid(), state.next_run(), state.config_rejected()
        targets = {name: state.target(name) for name in state.target_names()}
        degraded = {
            name: (since, t.failing_cycles())
            for name, t in targets.items()
            if (since := t.degraded_since())
        }
    finally:
        state.close()
    lines = _daemon_lines(state_path, pid, next_run, zone)
    if rejected:
        lines.append(f"Config rejected at {when(rejected[0], zone)}: {rejected[1]}")
        lines.append("  (the daemon runs on the config it had; fix the file to clear this)")
    for name, (since, failing) in degraded.items():
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
    return "\n".join(lines)


def _daemon_lines(
    state_path: Path, pid: str | None, next_run: str | None, zone: ZoneInfo
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
        if last.get("held_back"):
            held = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in last["held_back"].items())
            reasons = "; ".join(last.get("hold_reasons", []))
            lines.append(f"\nHeld back in the last run ({reasons}): {held}")
        if last.get("source_failures"):
            lines.append(
                f"Sources that failed in the last run: {', '.join(last['source_failures'])}"
            )
    return lines
