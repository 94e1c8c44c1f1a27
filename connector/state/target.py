"""Everything the state file keeps for one target besides its links: creates about to be sent,
objects that keep failing, what is held back, the vendor's health, and the target's runs."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

from connector.jsonout import dump_text
from connector.mapping.usernames import AssignedName
from connector.planning.held import HeldPlan
from connector.state.approvals import ApprovalRecords
from connector.state.history import TargetHistory
from connector.state.links import Links, now_utc
from connector.state.schema import target_meta_key


@dataclass(frozen=True, slots=True)
class RunRecord:
    run_id: str
    target: str
    command: str
    started_at: str
    finished_at: str | None
    outcome: str | None
    summary: dict[str, Any]


RUN_COLUMNS = "run_id, target, command, started_at, finished_at, outcome, summary"


def run_record(row: tuple[Any, ...]) -> RunRecord:
    run_id, target, command, started, finished, outcome, summary = row
    return RunRecord(
        run_id, target, command, started, finished, outcome, json.loads(summary) if summary else {}
    )


class TargetState(ApprovalRecords, Links):
    """One target's namespace in the state file (its approvals: state/approvals.py)."""

    @cached_property
    def history(self) -> TargetHistory:
        """The target's audit trail (state/history.py)."""
        return TargetHistory(self.database, self.target)

    def _meta(self, name: str) -> str | None:
        return self.database.get_meta(target_meta_key(self.target, name)) or None

    def _set_meta(self, name: str, value: str) -> None:
        self.database.set_meta(target_meta_key(self.target, name), value)

    # -- creates about to be sent ------------------------------------------------------------

    def record_intents(self, kind: str, external_ids: Iterable[str]) -> None:
        """Before creates are sent: if the process dies mid-way, the next run knows that these
        objects may exist at the vendor without a link, and looks them up."""
        with self.transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO intents (target, external_id, kind, recorded_at) "
                "VALUES (?, ?, ?, ?)",
                [(self.target, ext, kind, now_utc()) for ext in external_ids],
            )

    def intents(self) -> dict[str, str]:
        """externalId -> kind of creates that were sent (or about to be) but never recorded."""
        rows = self._db.execute(
            "SELECT external_id, kind FROM intents WHERE target = ?", (self.target,)
        )
        return dict(rows)

    def clear_intent(self, external_id: str) -> None:
        with self.transaction():
            self._clear_intent(external_id)

    # -- objects that keep failing at the vendor ---------------------------------------------

    def record_failure(self, key: str, delay: float, max_delay: float) -> None:
        """One more failure: wait delay * 2^(attempts-1), at most max_delay, before the next try."""
        row = self._db.execute(
            "SELECT attempts FROM failures WHERE target = ? AND key = ?", (self.target, key)
        ).fetchone()
        attempts = (row[0] if row else 0) + 1
        wait = min(delay * 2 ** (attempts - 1), max_delay)
        next_attempt = datetime.now(UTC) + timedelta(seconds=wait)
        with self.transaction():
            self._db.execute(
                "INSERT INTO failures (target, key, attempts, next_attempt_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (target, key) DO UPDATE SET "
                "attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at",
                (self.target, key, attempts, next_attempt.isoformat()),
            )

    def clear_failure(self, key: str) -> None:
        with self.transaction():
            self._db.execute(
                "DELETE FROM failures WHERE target = ? AND key = ?", (self.target, key)
            )

    def failure_keys(self) -> set[str]:
        rows = self._db.execute("SELECT key FROM failures WHERE target = ?", (self.target,))
        return {row[0] for row in rows}

    def backing_off(self, now: datetime) -> set[str]:
        """Keys of objects whose next try is not yet due."""
        rows = self._db.execute(
            "SELECT key, next_attempt_at FROM failures WHERE target = ?", (self.target,)
        )
        return {key for key, when in rows if datetime.fromisoformat(when) > now}

    def failures(self) -> list[tuple[str, int, str]]:
        """(key, attempts, next attempt, ISO 8601) of the objects that keep failing."""
        rows = self._db.execute(
            "SELECT key, attempts, next_attempt_at FROM failures WHERE target = ? "
            "ORDER BY next_attempt_at, key",
            (self.target,),
        )
        return [(str(key), int(attempts), str(when)) for key, attempts, when in rows]

    def names_of(self, external_ids: Iterable[str]) -> dict[str, str]:
        """externalId -> the userName (users) or displayName (groups) the file holds; for
        the status page with `health.show_names` only. A protected person's is scrubbed."""
        wanted = sorted(set(external_ids))
        names: dict[str, str] = {}
        for table, path in (("users", "$.userName"), ("groups", "$.displayName")):
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = self._db.execute(
                    f"SELECT external_id, json_extract(attributes, '{path}') "  # noqa: S608
                    f"FROM {table} WHERE target = ? "
                    f"AND external_id IN ({', '.join('?' * len(chunk))})",
                    (self.target, *chunk),
                )
                names.update((ext, str(name)) for ext, name in rows if name)
        return names

    # -- what is held back, and the vendor's health ------------------------------------------

    def held_plan(self) -> HeldPlan | None:
        """What the last cycle held back, for `connector approve`."""
        raw = self._meta("held_plan")
        return HeldPlan.from_dict(json.loads(raw)) if raw else None

    def set_held_plan(self, held: HeldPlan | None) -> None:
        self._set_meta("held_plan", dump_text(held.as_dict()) if held else "")

    def failing_cycles(self) -> int:
        """Cycles in a row in which the vendor failed."""
        return int(self._meta("failing_cycles") or 0)

    def set_failing_cycles(self, count: int) -> None:
        self._set_meta("failing_cycles", str(count))

    def degraded_since(self) -> str | None:
        return self._meta("degraded_since")

    def set_degraded_since(self, when: datetime | None) -> None:
        self._set_meta("degraded_since", when.isoformat(timespec="seconds") if when else "")

    def last_full_reconcile(self) -> datetime | None:
        raw = self._meta("last_full_reconcile")
        return datetime.fromisoformat(raw) if raw else None

    def set_last_full_reconcile(self, when: datetime) -> None:
        self._set_meta("last_full_reconcile", when.isoformat())

    def delivered_file(self) -> dict[str, Any] | None:
        """A file target's last delivery the server confirmed: name, bytes, sha256, when."""
        raw = self._meta("delivered_file")
        return json.loads(raw) if raw else None

    def set_delivered_file(self, delivered: dict[str, Any]) -> None:
        self._set_meta("delivered_file", json.dumps(delivered, sort_keys=True))

    def duplicates(self) -> tuple[int, str] | None:
        """How many vendor accounts looked like duplicates at the last full reconcile, and
        when (for the status page; the report itself is `connector report duplicates`)."""
        raw = self._meta("duplicates")
        if not raw:
            return None
        data = json.loads(raw)
        return int(data["count"]), str(data["at"])

    def set_duplicates(self, count: int, when: datetime) -> None:
        at = when.isoformat(timespec="seconds")
        self._set_meta("duplicates", json.dumps({"count": count, "at": at}))

    # -- generated usernames -----------------------------------------------------------------

    def generated_usernames(self) -> dict[str, AssignedName]:
        """externalId -> the username generated for that person, and its base."""
        rows = self._db.execute(
            "SELECT external_id, user_name, base FROM usernames WHERE target = ?", (self.target,)
        )
        return {ext: AssignedName(name, base) for ext, name, base in rows}

    def usernames_in_use(self) -> set[str]:
        """Every userName this target's records hold or reserve, case-folded."""
        rows = self._db.execute(
            "SELECT json_extract(attributes, '$.userName') FROM users WHERE target = ? "
            "UNION SELECT user_name FROM usernames WHERE target = ?",
            (self.target, self.target),
        )
        return {str(name).casefold() for (name,) in rows if name}

    def assign_username(self, external_id: str, assigned: AssignedName) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO usernames (target, external_id, user_name, base, assigned_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (target, external_id) DO UPDATE SET "
                "user_name = excluded.user_name, base = excluded.base, "
                "assigned_at = excluded.assigned_at",
                (self.target, external_id, assigned.name, assigned.base, now_utc()),
            )

    def drop_usernames(self, external_ids: Iterable[str]) -> None:
        """A person now protected keeps no name in the state file."""
        with self.transaction():
            self._db.executemany(
                "DELETE FROM usernames WHERE target = ? AND external_id = ?",
                [(self.target, ext) for ext in external_ids],
            )

    # -- runs --------------------------------------------------------------------------------

    def start_run(self, run_id: str, command: str) -> None:
        with self.transaction():
            self._db.execute(
                "INSERT INTO runs (run_id, target, command, started_at) VALUES (?, ?, ?, ?)",
                (run_id, self.target, command, now_utc()),
            )

    def finish_run(self, run_id: str, outcome: str, summary: dict[str, Any]) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE runs SET finished_at = ?, outcome = ?, summary = ? "
                "WHERE run_id = ? AND target = ?",
                (now_utc(), outcome, json.dumps(summary), run_id, self.target),
            )

    def last_runs(self, limit: int = 10) -> list[RunRecord]:
        rows = self._db.execute(
            f"SELECT {RUN_COLUMNS} FROM runs WHERE target = ? "  # noqa: S608 (fixed)
            "ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (self.target, limit),
        )
        return [run_record(row) for row in rows]
