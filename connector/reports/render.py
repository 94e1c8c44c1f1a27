"""What people read on the terminal: the plan as a table, a sync's summary, the demo's result."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import click

from connector.cycle.result import CycleResult
from connector.planning.objects import Known
from connector.planning.plan import ORDER, Plan

# How many opaque refs a summary of held updates shows as examples.
SAMPLE_REFS = 5

_OP_LABELS = {
    "create_group": "create group",
    "update_group": "update group",
    "create_user": "create user",
    "rekey_user": "re-key user",
    "update_user": "update user",
    "grant_values": "grant values",
    "revoke_values": "revoke values",
    "add_members": "add members",
    "remove_members": "remove members",
    "deactivate_user": "deactivate user",
    "delete_user": "delete user",
    "delete_group": "delete group",
}


def show_value(value: Any) -> str:
    """A SCIM value as an operator reads it: `true`, an address with its type, never a
    Python repr."""
    if value is None:
        return "(removed)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and "value" not in value and "display" not in value:
        # A complex value that is no multi-valued entry (EGIL's name): its parts.
        return " ".join(f"{k}={show_value(v)}" for k, v in value.items())
    if isinstance(value, dict):
        notes = [str(value[k]) for k in ("type",) if value.get(k)]
        notes += ["primary"] if value.get("primary") is True else []
        shown = str(value.get("value", value.get("display", "")))
        return f"{shown} ({', '.join(notes)})" if notes else shown
    if isinstance(value, list):
        return ", ".join(show_value(item) for item in value)
    return str(value)


def describe_counts(plan: Plan) -> str:
    """Operations per kind, and for membership changes the members they carry."""
    parts = []
    for kind in ORDER:
        ops = [op for op in plan.operations if op.kind == kind]
        if not ops:
            continue
        part = f"{_OP_LABELS[kind]}: {len(ops)}"
        if kind in ("add_members", "remove_members"):
            members = sum(len(op.members) for op in ops)
            part += f" ({members} member{'' if members == 1 else 's'})"
        parts.append(part)
    return ", ".join(parts)


def file_rows(rows: list[list[str]], show_rows: bool) -> str:
    """A file target's rows for one person: how many, and with `show_rows` what they hold."""
    counted = f"{len(rows)} row{'' if len(rows) == 1 else 's'}"
    return f"{counted}: " + " | ".join(";".join(row) for row in rows) if show_rows else counted


def plan_rows(plan: Plan, *, show_rows: bool = False) -> list[tuple[str, str, str]]:
    rows = []
    for op in plan.operations:
        if op.kind == "rekey_user":
            changes = "; ".join(f"{p}={show_value(v)}" for p, v in sorted(op.attributes.items()))
            detail = f"account of {op.previous[:12]} (same {op.why})"
            detail += f": {changes}" if changes and "rows" not in op.attributes else ""
        elif "rows" in op.attributes:  # a file target's person: their rows, names only if asked
            name = str(op.attributes.get("userName") or "") if op.kind == "create_user" else ""
            detail = f"{name} {file_rows(op.attributes['rows'], show_rows)}".strip()
        elif op.kind in ("create_user", "create_group"):
            name = op.attributes.get("userName") or op.attributes.get("displayName") or ""
            detail = f"{name}"
        elif op.kind in ("add_members", "remove_members"):
            detail = f"{len(op.members)} member(s)"
        elif op.kind in ("deactivate_user", "delete_user", "delete_group"):
            detail = "active=false" if op.kind == "deactivate_user" else ""
        else:
            detail = "; ".join(f"{p}={show_value(v)}" for p, v in sorted(op.attributes.items()))
        if op.reason:
            detail = f"{detail} ({op.reason})".strip()
        rows.append((_OP_LABELS[op.kind], op.target[:12], detail))
    return rows


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return "\n".join(out)


def render_held(plan: Plan, known: Known) -> str:
    """A held plan as an operator reads it: deprovisioning step by step, updates summarised
    (which attributes change, how often, a few opaque refs) - never the new values."""
    updates = [op for op in plan.operations if op.kind in ("update_user", "update_group")]
    rest = [op for op in plan.operations if op.kind not in ("update_user", "update_group")]
    parts = []
    if rest:
        rows = []
        for op in rest:
            if op.members:
                detail = f"{len(op.members)} member(s)"
            elif op.kind == "rekey_user":
                user = known.users.get(op.previous)
                name = str(user.attributes.get("userName", "")) if user else ""
                detail = f"{name} (account of {op.previous[:12]}, same {op.why})".strip()
            else:
                user = known.users.get(op.target)
                detail = str(user.attributes.get("userName", "")) if user else ""
            rows.append((_OP_LABELS[op.kind], op.target[:12], detail, op.reason))
        parts.append(table(("OPERATION", "REF", "USER / MEMBERS", "REASON"), rows))
    for kind in ("update_user", "update_group"):
        of_kind = [op for op in updates if op.kind == kind]
        if not of_kind:
            continue
        paths = Counter(path for op in of_kind for path in op.attributes)
        changed = ", ".join(f"{path}: {count}" for path, count in sorted(paths.items()))
        examples = ", ".join(op.target[:12] for op in of_kind[:SAMPLE_REFS])
        more = f" and {len(of_kind) - SAMPLE_REFS} more" if len(of_kind) > SAMPLE_REFS else ""
        parts.append(
            f"{_OP_LABELS[kind]}: {len(of_kind)}, changing {changed}\n"
            f"  for example {examples}{more}"
        )
    parts.append(describe_counts(plan))
    return "\n\n".join(parts)


def render_plan(result: CycleResult, *, show_rows: bool = False) -> str:
    """`show_rows`: a file target's rows in full (names and all), for an operator."""
    rows = plan_rows(result.plan, show_rows=show_rows)
    parts = []
    if rows:
        parts.append(table(("OPERATION", "REF", "DETAILS"), rows))
        count = len(result.plan.operations)
        parts.append(
            f"\n{count} operation{'' if count == 1 else 's'}: {describe_counts(result.plan)}"
        )
    elif result.held_back or result.source_failures:
        parts.append("Nothing would be sent now; see what is held back or failed below.")
    else:
        parts.append("Nothing to do: the vendor already matches the sources.")
    parts.extend(_notes(result))
    return "\n".join(parts)


def _notes(result: CycleResult) -> list[str]:
    notes = []
    for reason, count in sorted(result.scope.excluded.items()):
        notes.append(f"left out ({reason}): {count}")
    for issue in result.issues:
        notes.append(f"skipped {issue.location}: {issue.reason}")
    for failure in result.source_failures:
        notes.append(f"SOURCE FAILED {failure.source}: {failure.reason}")
    if result.vendor_trouble:
        notes.append(f"VENDOR FAILED: {result.vendor_trouble}")
    if result.held_plan:
        held = describe_counts(result.held_plan)
        notes.append(f"HELD BACK ({'; '.join(result.hold_reasons)}): {held}")
    return notes


def _value_lines(applied: dict[str, int]) -> list[str]:
    """Role and entitlement values, where a cycle granted or revoked any."""
    granted, revoked = applied.get("values_granted", 0), applied.get("values_revoked", 0)
    if not granted and not revoked:
        return []
    return [f"  values granted       {granted} (revoked: {revoked}; roles and entitlements)"]


def render_summary(result: CycleResult) -> str:
    summary = result.summary()
    applied = summary["applied"]
    lines = [
        f"Sync {result.run_id}: {summary['outcome']} in {summary['duration_seconds']:.1f} s"
        + (f" ({result.full_reconcile_described})" if result.full_reconcile else ""),
        f"  persons read         {summary['persons_read']}",
        f"  in scope             {summary['users_in_scope']} users, {summary['groups_in_scope']} groups",
        f"  excluded             {sum(summary['excluded'].values())}",
        f"  users created        {applied.get('users_created', 0)}"
        f" (found after an interrupted create: {applied.get('users_recovered', 0)};"
        f" linked to existing accounts: {applied.get('users_linked', 0)})",
        f"  users re-keyed       {applied.get('users_rekeyed', 0)}"
        " (accounts moved to their person's new key)",
        f"  users updated        {applied.get('users_updated', 0)}",
        f"  users deactivated    {applied.get('users_deactivated', 0)}",
        f"  users deleted        {applied.get('users_deleted', 0)}",
        f"  groups created       {applied.get('groups_created', 0)}"
        f" (found after an interrupted create: {applied.get('groups_recovered', 0)};"
        f" linked: {applied.get('groups_linked', 0)}; updated: {applied.get('groups_updated', 0)})",
        f"  memberships added    {applied.get('members_added', 0)}",
        f"  memberships removed  {applied.get('members_removed', 0)}",
        *_value_lines(applied),
        f"  skipped records      {summary['skipped_records']}",
        f"  failed               {applied.get('failed', 0) + applied.get('conflict', 0)}",
        f"  postponed            {applied.get('postponed', 0)} (left for the next cycle)",
        "  requests             "
        + (", ".join(f"{m} {n}" for m, n in summary["requests"].items()) or "none"),
    ]
    notes = _notes(result)
    if result.interrupted:
        notes.append(
            f"INTERRUPTED by a signal: {applied.get('postponed', 0)} planned operations were "
            "not sent; the next cycle plans them again"
        )
    if notes:
        lines.append("")
        lines.extend(notes)
    if result.applied:
        for failure in result.applied.failures:
            lines.append(f"FAILED {failure['op']} {failure['ref']}: {failure['error']}")
    return "\n".join(lines)


def echo(text: str) -> None:
    click.echo(text)
