"""What a delivered file changed for each person, for the history (state/history.py): a row
added, changed (the names of the columns whose values changed) or removed, never the values.
A protected person's removal leaves no trail."""

from __future__ import annotations

from typing import Any

from connector.planning.objects import Known
from connector.planning.plan import Plan
from connector.state.history import Change, TargetHistory

ROW_OPS = {
    "create_user": "row_add",
    "update_user": "row_change",
    "rekey_user": "rekey",
    "deactivate_user": "row_remove",
    "delete_user": "row_remove",
}


def row_changes(
    plan: Plan,
    known: Known,
    people: dict[str, dict[str, Any]],
    columns: list[str],
    history: TargetHistory,
) -> list[Change]:
    changes = []
    for op in plan.operations:
        if op.reason == "protected" or op.kind not in ROW_OPS:
            continue
        before = known.users.get(op.previous or op.target)
        old_rows = before.attributes.get("rows", []) if before else []
        new_rows = people.get(op.target, {}).get("rows", [])
        names = changed_columns(old_rows, new_rows, columns)
        if op.kind == "rekey_user":
            names = ("externalId", *names)
        changes.append(
            Change(op.target, ROW_OPS[op.kind], names, approval_id=history.approval_for(op))
        )
    return changes


def changed_columns(
    old: list[list[str]], new: list[list[str]], columns: list[str]
) -> tuple[str, ...]:
    """The columns whose values differ between a person's old and new rows (all of them for
    rows added, none for rows removed); `rows` too when the number of rows changed."""
    if not old or not new:
        return tuple(columns) if new else ()
    names = [
        column
        for i, column in enumerate(columns)
        if {row[i] for row in old if i < len(row)} != {row[i] for row in new if i < len(row)}
    ]
    return (*names, "rows") if len(old) != len(new) else tuple(names)
