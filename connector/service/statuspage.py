"""The status page at / on the health listener: one read-only HTML page, rendered on the server.

Last runs with a chart of changes per cycle (inline SVG), what is held back and why, pending
approvals, failing objects, the sources' health, possible duplicates, the next run, version and
uptime. No scripts, no external assets; it reloads itself every 30 s. Everything shown is
HTML-escaped; objects are named by opaque refs unless `health.show_names` is on.

It reads the state file through a read-only connection of its own per request (the daemon's
worker thread alone uses the main one), so a page request never waits for or holds up a cycle.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from html import escape
from typing import Any

from connector import __version__
from connector.reports.overview import ObjectRow, Overview, TargetFacts, read_overview
from connector.reports.status import changes_of
from connector.service.metrics import Metrics
from connector.state.database import StateWhere
from connector.state.store import RunRecord

REFRESH_SECONDS = 30
CHART_CYCLES = 30
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
        "form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
# Counts a run keeps that are not changes made at the vendor.
_NOT_CHANGES = frozenset({"failed", "conflict", "postponed", "members_skipped"})
_COLOURS = {"success": "#2e7d32", "held": "#ef8f00", "failed": "#c62828"}
_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .4em;
border-bottom:1px solid #ccc}h3{font-size:1em;margin:.8em 0 .3em}
table{border-collapse:collapse;margin:.3em 0}td,th{padding:.15em .7em .15em 0;
text-align:left;vertical-align:top}th{font-weight:600;border-bottom:1px solid #ddd}
.muted{color:#666}.bad{color:#c62828;font-weight:600}.warn{color:#b26a00;font-weight:600}
.ok{color:#2e7d32}code{font-size:.95em}ul{margin:.2em 0}
"""


def e(value: object) -> str:
    return escape(str(value), quote=True)


def render_page(
    state_path: StateWhere, metrics: Metrics | None, *, show_names: bool = False
) -> str:
    """The whole page; what cannot be read is said on it instead."""
    overview = read_overview(state_path, show_names=show_names)
    parts = [_head(), _header(overview, metrics)]
    if overview.problem:
        parts.append(f'<p class="warn" id="problem">{e(overview.problem)}</p>')
    parts += [
        _held(overview),
        _runs(overview),
        _failing(overview),
        _sources(overview, metrics),
        _duplicates(overview),
        f'<p class="muted">Generated {e(_now())}; reloads every {REFRESH_SECONDS} s.</p>',
        "</body></html>\n",
    ]
    return "\n".join(parts)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _head() -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>connector status</title><style>{_STYLE}</style></head><body>"
    )


def _uptime(seconds: float) -> str:
    minutes, hours, days = int(seconds // 60), int(seconds // 3600), int(seconds // 86400)
    if days:
        return f"{days} d {hours % 24} h"
    if hours:
        return f"{hours} h {minutes % 60} min"
    return f"{minutes} min" if minutes else f"{int(seconds)} s"


def _header(overview: Overview, metrics: Metrics | None) -> str:
    facts = [f"version {__version__}"]
    if metrics is not None:
        facts.append(f"up {_uptime(time.monotonic() - metrics.started_monotonic)}")
        if metrics.last_outcome:
            facts.append(f"last cycle: {metrics.last_outcome}")
    status = overview.status
    if status and status.next_run:
        facts.append(f"next cycle {status.next_run}")
    lines = [f'<h1>connector</h1><p id="daemon">{e(" · ".join(facts))}</p>']
    for name, (since, failing) in (status.degraded if status else {}).items():
        lines.append(
            f'<p class="bad degraded">Target {e(name)}: degraded since {e(since)} '
            f"({e(failing)} failing cycles in a row; cycles are slowed down)</p>"
        )
    if status and status.rejected:
        at, problems = status.rejected
        lines.append(
            f'<p class="bad rejected">Config rejected at {e(at)}: {e(problems)} '
            "(the daemon runs on the config it had; fix the file to clear this)</p>"
        )
    return "\n".join(lines)


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], css: str = "") -> str:
    """Cells are HTML already (escaped by the caller)."""
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{e(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _objects(rows: list[ObjectRow], total: int, show_names: bool) -> str:
    headers = ["kind", "ref", *(["name"] if show_names else []), ""]
    cells = [
        [
            e(row.kind.replace("_", " ")),
            f"<code>{e(row.ref)}</code>",
            *([e(row.name or "-")] if show_names else []),
            e(row.detail),
        ]
        for row in rows
    ]
    more = total - len(rows)
    tail = f'<p class="muted">and {more} more</p>' if more > 0 else ""
    return _table(headers, cells, "objects") + tail


def _held(overview: Overview) -> str:
    held = [t for t in overview.targets if t.held or t.approvals]
    out = ['<section id="held"><h2>Held back</h2>']
    if not held:
        out.append('<p class="ok">Nothing is held back.</p>')
    for target in held:
        out.append(_held_target(target, overview.show_names))
    out.append("</section>")
    return "\n".join(out)


def _held_target(target: TargetFacts, show_names: bool) -> str:
    out = [f'<div class="held-target" data-target="{e(target.name)}">']
    out.append(f"<h3>Target {e(target.name)}</h3>")
    if target.held:
        held = target.held
        out.append(f"<p>Held at {e(held.held_at)} (run <code>{e(held.run_id)}</code>).</p>")
        out.append(
            '<ul class="reasons">' + "".join(f"<li>{e(r)}</li>" for r in held.reasons) + "</ul>"
        )
        counts = [(k, n) for k, n in held.plan.counts().items() if n]
        rows = [[e(k.replace("_", " ")), e(n)] for k, n in counts]
        out.append(_table(("operation", "count"), rows, "held-counts"))
        total = len(held.plan.operations)
        out.append(f"<details><summary>The {total} held operations, by object</summary>")
        out.append(_objects(target.held_objects, total, show_names) + "</details>")
    if target.approvals:
        rows = [
            [
                f"<code>{e(a.id)}</code>",
                e(a.requested_at),
                e(a.operations),
                e(a.requested_by or "-"),
            ]
            for a in target.approvals
        ]
        out.append("<h3>Pending approvals</h3>")
        out.append(_table(("approval", "requested", "operations", "by"), rows, "approvals"))
    out.append("</div>")
    return "\n".join(out)


def _changes(record: RunRecord) -> int:
    applied: dict[str, int] = record.summary.get("applied", {})
    return sum(count for key, count in applied.items() if key not in _NOT_CHANGES)


def _duration(record: RunRecord) -> str:
    seconds = record.summary.get("duration_seconds")
    if seconds is None and record.finished_at:
        finished = datetime.fromisoformat(record.finished_at)
        seconds = (finished - datetime.fromisoformat(record.started_at)).total_seconds()
    return "running or interrupted" if seconds is None else f"{float(seconds):.1f} s"


def _runs(overview: Overview) -> str:
    records = overview.status.records if overview.status else []
    out = ['<section id="runs"><h2>Last runs</h2>']
    if not records:
        out.append("<p>No runs recorded yet.</p></section>")
        return "\n".join(out)
    out.append(_chart(records))
    rows = []
    for record in records:
        outcome = record.outcome or "-"
        changes = ", ".join(f"{label} {n}" for label, n in changes_of(record.summary))
        rows.append(
            [
                e(record.target),
                f"<code>{e(record.run_id)}</code>",
                e(record.started_at),
                e(_duration(record)),
                e(record.command),
                f'<span class="outcome {e(outcome)}">{e(outcome)}</span>',
                e(changes or "no changes"),
            ]
        )
    headers = ("target", "run", "started (UTC)", "duration", "command", "outcome", "changes")
    out.append(_table(headers, rows, "runs"))
    out.append("</section>")
    return "\n".join(out)


def _cycles(records: list[RunRecord]) -> list[tuple[str, int, str]]:
    """(run id, changes, worst outcome) per cycle, oldest first: a cycle's targets share its id."""
    cycles: dict[str, list[RunRecord]] = {}
    for record in records:
        cycles.setdefault(record.run_id, []).append(record)
    out = []
    for run_id, runs in list(cycles.items())[:CHART_CYCLES]:
        outcomes = {r.outcome for r in runs}
        worst = next((o for o in ("failed", "held", "success") if o in outcomes), "other")
        out.append((run_id, sum(_changes(r) for r in runs), worst))
    return out[::-1]


def _chart(records: list[RunRecord]) -> str:
    cycles = _cycles(records)
    width, height, gap = 640, 120, 2
    bar = min(max((width - 40) / max(len(cycles), 1) - gap, 2), 24)
    top = max((changes for _, changes, _ in cycles), default=0) or 1
    bars = []
    for index, (run_id, changes, outcome) in enumerate(cycles):
        tall = max(changes / top * (height - 20), 2)  # a quiet cycle still shows
        x, y = 40 + index * (bar + gap), height - tall
        bars.append(
            f'<rect class="bar" data-run="{e(run_id)}" data-changes="{changes}" '
            f'x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{tall:.1f}" '
            f'fill="{_COLOURS.get(outcome, "#777")}"><title>{e(run_id)}: {changes} '
            f"changes ({e(outcome)})</title></rect>"
        )
    return (
        f'<svg id="chart" role="img" aria-label="changes per cycle" width="{width}" '
        f'height="{height + 4}" viewBox="0 0 {width} {height + 4}" '
        'xmlns="http://www.w3.org/2000/svg">'
        f'<text x="0" y="12" font-size="11" fill="#666">{top}</text>'
        f'<text x="0" y="{height}" font-size="11" fill="#666">0</text>'
        f'<line x1="38" y1="{height}" x2="{width}" y2="{height}" stroke="#bbb"/>'
        + "".join(bars)
        + '</svg><p class="muted">Changes per cycle, oldest on the left (green: success, '
        "amber: held, red: failed).</p>"
    )


def _failing(overview: Overview) -> str:
    out = ['<section id="failing"><h2>Failing objects</h2>']
    failing = [t for t in overview.targets if t.failing_counts]
    if not failing:
        out.append('<p class="ok">No object keeps failing.</p>')
    for target in failing:
        counts = ", ".join(f"{k.replace('_', ' ')}: {n}" for k, n in target.failing_counts.items())
        out.append(f"<h3>Target {e(target.name)}</h3><p>{e(counts)}</p>")
        total = sum(target.failing_counts.values())
        out.append(_objects(target.failing, total, overview.show_names))
    out.append("</section>")
    return "\n".join(out)


def _sources(overview: Overview, metrics: Metrics | None) -> str:
    out = ['<section id="sources"><h2>Sources</h2>']
    health = metrics.sources if metrics is not None else {}
    if health:
        rows = []
        for name, source in health.items():
            css = {"up": "ok", "unhealthy": "warn"}.get(source.state, "bad")
            persons = "-" if source.persons is None else str(source.persons)
            state = f'<span class="{css}">{e(source.state)}</span>'
            rows.append([e(name), state, e(source.reason or ""), e(persons)])
        out.append(_table(("source", "state", "why", "persons read"), rows, "sources"))
    else:
        out.append(_sources_from_runs(overview))
    out.append("</section>")
    return "\n".join(out)


def _sources_from_runs(overview: Overview) -> str:
    """Without the daemon's last cycle at hand (just started): what the last run recorded."""
    records = overview.status.records if overview.status else []
    if not records:
        return '<p class="muted">No cycle has run yet.</p>'
    summary: dict[str, Any] = records[0].summary
    failed = ", ".join(summary.get("source_failures", [])) or "none"
    return (
        f"<p>In the last recorded run: {e(summary.get('persons_read', 0))} persons read; "
        f"sources that failed: {e(failed)}.</p>"
    )


def _duplicates(overview: Overview) -> str:
    out = ['<section id="duplicates"><h2>Possible duplicates</h2>']
    rows = []
    for target in overview.targets:
        if target.duplicates is None:
            rows.append([e(target.name), "not counted yet", ""])
        else:
            count, at = target.duplicates
            rows.append([e(target.name), e(count), e(f"at the full reconcile of {at}")])
    if rows:
        out.append(_table(("target", "possible duplicates", ""), rows, "duplicates"))
    else:
        out.append("<p>Not counted yet.</p>")
    out.append(
        '<p class="muted">Counted at each full reconcile; <code>connector report duplicates'
        "</code> lists them.</p></section>"
    )
    return "\n".join(out)
