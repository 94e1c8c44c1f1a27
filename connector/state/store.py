"""The state file as a whole: the shared part (the sources' last pictures and counts, the
daemon's schedule) and one namespace per target (`target(name)`, see state/target.py)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterable
from typing import Any

from connector.state.approvals import Approval, recent_approvals
from connector.state.database import Database, StateWhere
from connector.state.history import History
from connector.state.requests import Requests
from connector.state.target import RUN_COLUMNS, RunRecord, TargetState, run_record

__all__ = ["Approval", "RunRecord", "StateStore", "TargetState"]

NEXT_RUN = "daemon.next_run"
DAEMON_PID = "daemon.pid"
DAEMON_HOST = "daemon.host"
CONFIG_REJECTED = "daemon.config_rejected"


class StateStore(Database):
    @classmethod
    def open(cls, where: StateWhere) -> StateStore:
        database = Database.open(where)
        return cls(database._db, database.config)

    @classmethod
    def open_readonly(cls, where: StateWhere) -> StateStore | None:
        database = Database.open_readonly(where)
        return cls(database._db, database.config) if database else None

    def target(self, name: str) -> TargetState:
        """One target's part of the file."""
        return TargetState(self, name)

    @property
    def history(self) -> History:
        """The audit trail of every target: reading it, and its retention."""
        return History(self)

    def target_names(self) -> list[str]:
        """The targets the file holds anything for."""
        rows = self._db.execute(
            "SELECT target FROM users UNION SELECT target FROM groups UNION SELECT target FROM runs"
        )
        return sorted(row[0] for row in rows)

    def last_runs(self, limit: int = 10) -> list[RunRecord]:
        """The last runs of every target, newest first."""
        rows = self._db.execute(
            f"SELECT {RUN_COLUMNS} FROM runs "  # noqa: S608 (fixed)
            "ORDER BY started_at DESC, rowid DESC LIMIT ?",
            (limit,),
        )
        return [run_record(row) for row in rows]

    # -- the last full picture of an incremental source ----------------------------------------

    def load_snapshot(self, source: str) -> dict[str, dict[str, dict[str, Any]]]:
        """kind -> id -> object, as the source kept it (never a protected person's)."""
        snapshot: dict[str, dict[str, dict[str, Any]]] = {}
        for kind, obj_id, data in self._db.execute(
            "SELECT kind, id, data FROM snapshots WHERE source = ?", (source,)
        ):
            snapshot.setdefault(kind, {})[obj_id] = json.loads(data)
        return snapshot

    def save_snapshot(
        self, source: str, snapshot: dict[str, dict[str, dict[str, Any]]], checkpoint: str
    ) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM snapshots WHERE source = ?", (source,))
            self._db.executemany(
                "INSERT INTO snapshots (source, kind, id, data) VALUES (?, ?, ?, ?)",
                [
                    (source, kind, obj_id, json.dumps(data, ensure_ascii=False))
                    for kind, objects in snapshot.items()
                    for obj_id, data in objects.items()
                ],
            )
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (f"checkpoint:{source}", checkpoint),
            )

    def checkpoint_of(self, source: str) -> str | None:
        return self.get_meta(f"checkpoint:{source}") or None

    # -- what the sources looked like ----------------------------------------------------------

    def source_counts(self) -> dict[str, int]:
        """Persons per source at its last good read (for the shrinking-source check)."""
        rows = self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'source_count:%'")
        return {key.removeprefix("source_count:"): int(value) for key, value in rows}

    def set_source_count(self, source: str, count: int) -> None:
        self.set_meta(f"source_count:{source}", str(count))

    def marking_digests(self, source: str) -> set[str]:
        """Fingerprints of the marking values a source has written (see sources/health.py)."""
        raw = self.get_meta(f"marking_values:{source}")
        return set(json.loads(raw)) if raw else set()

    def remember_marking_digests(self, source: str, digests: Iterable[str]) -> None:
        seen = self.marking_digests(source)
        if not seen.issuperset(digests):
            self.set_meta(f"marking_values:{source}", json.dumps(sorted(seen.union(digests))))

    # -- the daemon ------------------------------------------------------------------------

    def next_run(self) -> str | None:
        """When a running daemon starts its next cycle (ISO 8601), if one runs."""
        return self.get_meta(NEXT_RUN) or None

    def set_next_run(self, when: str | None) -> None:
        self.set_meta(NEXT_RUN, when or "")

    def daemon_pid(self) -> str | None:
        return self.get_meta(DAEMON_PID) or None

    def set_daemon_pid(self, pid: int | None) -> None:
        """The daemon's pid, and its host (replicas on PostgreSQL may run anywhere)."""
        self.set_meta(DAEMON_PID, str(pid) if pid else "")
        self.set_meta(DAEMON_HOST, socket.gethostname() if pid else "")

    def daemon_host(self) -> str | None:
        return self.get_meta(DAEMON_HOST) or None

    def config_rejected(self) -> tuple[str, str] | None:
        """When (ISO 8601) the config file on disk was rejected, and why, while that stands."""
        raw = self.get_meta(CONFIG_REJECTED)
        if not raw:
            return None
        value = json.loads(raw)
        return str(value["at"]), str(value["reason"])

    def set_config_rejected(self, at: str | None, reason: str = "") -> None:
        """Record a rejected config (the loader's problems: keys and rules, never a secret's
        value), or with None clear it after a good (re)load."""
        self.set_meta(CONFIG_REJECTED, json.dumps({"at": at, "reason": reason}) if at else "")

    # -- approvals, and what commands ask of a running daemon ---------------------------------

    def approvals(self, settled: int = 5) -> list[Approval]:
        """Every pending approval and the last `settled` applied or expired ones (all targets)."""
        return recent_approvals(self._db, settled)

    def pending_approvals(self) -> list[Approval]:
        return [a for a in recent_approvals(self._db, 0) if a.status == "pending"]

    def requests(self) -> Requests:
        """`sync --only` asked of a running daemon (state/requests.py)."""
        return Requests(self)
