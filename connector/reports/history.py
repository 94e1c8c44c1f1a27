"""`connector history PERSON|REF`: every change the connector made to a person (or a group) at
each target, in time order - what, which attributes (names only), the outcome, the run, and
who approved it where it was approved.

Read from the state file alone, so it needs no secrets and runs beside a daemon. A person is
found by (in this order) their externalId, a ref (12 or more of its first characters, as the
logs give it), the userName or an e-mail address their account holds (or a username the
connector generated for them, kept after the account is gone) - and by their source key only
where the externalId's secret key is at hand (`external_id.mode: hmac` turns one into the
other with it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from connector.jsonout import dump_text
from connector.people.lookup import REF_LENGTH, looks_like_ref
from connector.reports.render import table
from connector.state.history import History, HistoryEntry, KnownObject

# Exit codes: found; nothing found; a ref that names several objects.
FOUND, NOT_FOUND, AMBIGUOUS = 0, 1, 2


@dataclass(slots=True)
class Lookup:
    objects: list[KnownObject] = field(default_factory=list)
    ambiguous: bool = False


def find(
    history: History, query: str, keyed: Callable[[str], frozenset[str]] | None = None
) -> Lookup:
    """The objects the query names. `keyed`: a source key's externalIds, where the secret key
    is at hand (see `people.lookup.keyed_external_ids`)."""
    query = query.strip()
    if objects := history.objects(query):
        return Lookup(objects)
    if looks_like_ref(query):
        objects = history.objects(query.lower(), prefix=True)
        if objects:
            return Lookup(objects, len({o.external_id for o in objects}) > 1)
    if objects := history.named(query):
        return Lookup(objects)
    if keyed is not None:
        return Lookup([o for ext in sorted(keyed(query)) for o in history.objects(ext)])
    return Lookup()


def render_ambiguous(query: str, objects: list[KnownObject]) -> str:
    rows = [(o.target, o.kind, o.external_id) for o in objects]
    return (
        f"{query!r} is the start of {len({o.external_id for o in objects})} externalIds; "
        "give more of it:\n" + table(("TARGET", "KIND", "EXTERNALID"), rows)
    )


def render_not_found(query: str, key_problem: str | None) -> str:
    lines = [
        f"Nothing in the state file matches {query!r} (by externalId, ref of at least "
        f"{REF_LENGTH} characters, userName or e-mail)."
    ]
    if key_problem:
        lines.append(
            "A source key is found only with the externalId's secret key, which is not "
            f"available here ({key_problem}); give a ref, userName or e-mail instead."
        )
    return "\n".join(lines)


def local_time(at: str) -> str:
    return datetime.fromisoformat(at).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def utc_time(at: str) -> str:
    return datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M:%SZ")


def render_history(objects: list[KnownObject], entries: list[HistoryEntry], days: int) -> str:
    """The objects, then their history as a table in time order."""
    lines = [
        f"{o.target}: {o.kind} {o.external_id}"
        if o.kind != "gone"
        else f"{o.target}: {o.external_id} (no longer linked; its history is kept)"
        for o in objects
    ]
    if not entries:
        return "\n".join([*lines, f"No changes recorded (the history keeps {days} days)."])
    several = len({e.external_id for e in entries}) > 1
    rows = [
        (
            utc_time(e.at),
            local_time(e.at),
            e.target + (f" {e.external_id[:REF_LENGTH]}" if several else ""),
            e.op,
            ", ".join(e.attributes),
            e.outcome,
            e.run_id,
            _approval(e),
        )
        for e in entries
    ]
    headers = ("TIME (UTC)", "LOCAL TIME", "TARGET", "OP", "ATTRIBUTES", "OUTCOME", "RUN")
    return "\n".join(lines) + "\n\n" + table((*headers, "APPROVAL"), rows)


def _approval(entry: HistoryEntry) -> str:
    if entry.approval_id is None:
        return ""
    return f"{entry.approval_id} by {entry.approved_by or '(unknown)'}"


def render_json(query: str, objects: list[KnownObject], entries: list[HistoryEntry]) -> str:
    return dump_text(
        {
            "query": query,
            "objects": [
                {"target": o.target, "kind": o.kind, "external_id": o.external_id} for o in objects
            ],
            "entries": [{**e.as_dict(), "local_time": local_time(e.at)} for e in entries],
        },
        indent=True,
    )
