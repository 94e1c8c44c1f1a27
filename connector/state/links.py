"""One target's links in the state file: which vendor id belongs to which externalId, what was
last applied, and which memberships the connector made.

Only people who were actually sent to the vendor are stored, so a protected person never has
a row with their data: a person who becomes protected keeps only the link (`scrub_user`) until
the vendor confirmed the removal, then not even that.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from connector.planning.objects import (
    DesiredUser,
    Known,
    KnownGroup,
    KnownUser,
    addresses,
    value_key,
    values_of,
)
from connector.state.database import Database

_USER_COLUMNS = "external_id, vendor_id, origin, active, attributes, deactivated_at, version"


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _known_user(row: tuple[Any, ...], wanted: dict[str, Any] | None = None) -> KnownUser:
    """`wanted`: what the plan wants this user to be. Recorded exactly so (the same JSON), the
    user shares that dict rather than holding a copy of its own: at 100,000 users the copies
    were most of a cycle's memory."""
    ext, vendor_id, origin, active, recorded, deactivated_at, version = row
    same = wanted is not None and recorded == json.dumps(wanted)
    return KnownUser(
        ext,
        vendor_id,
        origin,
        bool(active),
        wanted if same and wanted is not None else json.loads(recorded),
        datetime.fromisoformat(deactivated_at) if deactivated_at else None,
        version,
    )


class Links:
    """The vendor-side records of one target (its namespace in the file)."""

    def __init__(self, database: Database, target: str) -> None:
        self.database = database
        self.target = target
        self._db = database._db

    def transaction(self) -> Any:
        return self.database.transaction()

    def batch(self, max_changes: int = 500, max_seconds: float = 1.0) -> Any:
        return self.database.batch(max_changes, max_seconds)

    # -- reading -----------------------------------------------------------------------------

    def load_known(self, wanted: Mapping[str, DesiredUser] | None = None) -> Known:
        """Every user and group the target holds. `wanted` (the users the plan wants): a user
        recorded exactly as wanted shares the wanted attributes (nothing may change a known
        user's attributes in place: they are replaced), and every externalId the plan holds
        too is that same string, not a copy per user and per membership."""
        known = Known()
        rows = self._db.execute(
            f"SELECT {_USER_COLUMNS} FROM users WHERE target = ?",  # noqa: S608 (fixed)
            (self.target,),
        )
        for row in rows:
            user = wanted.get(row[0]) if wanted else None
            if user is None:
                known.users[row[0]] = _known_user(row)
            else:
                ext = user.external_id
                known.users[ext] = _known_user((ext, *row[1:]), user.attributes)
        self._load_groups(known)
        users = known.users
        for group_ext, user_ext in self._db.execute(
            "SELECT group_external_id, user_external_id FROM memberships WHERE target = ?",
            (self.target,),
        ):
            if group_ext in known.groups:
                member = users.get(user_ext)
                known.groups[group_ext].members.add(member.external_id if member else user_ext)
        return known

    def load_known_for(self, external_ids: Iterable[str], named: str | None = None) -> Known:
        """What is known of a few users (an on-demand sync of one person): these externalIds,
        and users whose recorded userName or an e-mail address is `named` (case-insensitive);
        every group, with only these users among its members. One pass over the users table
        instead of loading 100,000 of them."""
        wanted = set(external_ids)
        if named:
            wanted |= self._named(named.casefold())
        known = Known()
        for ext in sorted(wanted):
            row = self._db.execute(
                f"SELECT {_USER_COLUMNS} FROM users WHERE target = ? AND external_id = ?",  # noqa: S608
                (self.target, ext),
            ).fetchone()
            if row is not None:
                known.users[ext] = _known_user(row)
        self._load_groups(known)
        for ext in known.users:
            for (group_ext,) in self._db.execute(
                "SELECT group_external_id FROM memberships "
                "WHERE target = ? AND user_external_id = ?",
                (self.target, ext),
            ):
                if group_ext in known.groups:
                    known.groups[group_ext].members.add(ext)
        return known

    def named(self, query: str) -> set[str]:
        """The externalIds of users whose recorded userName or an e-mail address is `query`."""
        return self._named(query.casefold())

    def _named(self, folded: str) -> set[str]:
        found = set()
        rows = self._db.execute(
            "SELECT external_id, json_extract(attributes, '$.userName'), "
            "json_extract(attributes, '$.emails') FROM users WHERE target = ?",
            (self.target,),
        )
        for ext, user_name, emails in rows:
            # Most rows are ruled out by a substring test; JSON with escapes is parsed.
            maybe = emails and (folded in emails.casefold() or "\\" in emails)
            if str(user_name or "").casefold() == folded or (
                maybe and folded in addresses({"emails": json.loads(emails)})
            ):
                found.add(ext)
        return found

    def linked_counts(self) -> tuple[int, int]:
        """How many vendor users and groups this target's records link."""
        users = self._db.execute(
            "SELECT count(*) FROM users WHERE target = ?", (self.target,)
        ).fetchone()[0]
        groups = self._db.execute(
            "SELECT count(*) FROM groups WHERE target = ?", (self.target,)
        ).fetchone()[0]
        return int(users), int(groups)

    def _load_groups(self, known: Known) -> None:
        for ext, vendor_id, origin, attributes in self._db.execute(
            "SELECT external_id, vendor_id, origin, attributes FROM groups WHERE target = ?",
            (self.target,),
        ):
            known.groups[ext] = KnownGroup(ext, vendor_id, origin, json.loads(attributes))

    # -- users -------------------------------------------------------------------------------

    def record_user(
        self,
        external_id: str,
        vendor_id: str,
        origin: str,
        attributes: dict[str, Any],
        version: str | None = None,
    ) -> None:
        active = bool(attributes.get("active", True))
        now = now_utc()
        with self.transaction():
            self._db.execute(
                """
                INSERT INTO users (target, external_id, vendor_id, origin, active, attributes,
                                   updated_at, deactivated_at, version)
                VALUES (?, ?, ?, ?, ?, ?, ?, CASE WHEN ? <> 0 THEN NULL ELSE ? END, ?)
                ON CONFLICT (target, external_id) DO UPDATE SET
                    vendor_id = excluded.vendor_id,
                    active = excluded.active,
                    attributes = excluded.attributes,
                    updated_at = excluded.updated_at,
                    version = excluded.version,
                    deactivated_at = CASE
                        WHEN excluded.active <> 0 THEN NULL
                        ELSE COALESCE(users.deactivated_at, excluded.deactivated_at)
                    END
                """,
                (
                    self.target,
                    external_id,
                    vendor_id,
                    origin,
                    active,
                    json.dumps(attributes),
                    now,
                    active,
                    now,
                    version,
                ),
            )
            self._clear_intent(external_id)

    def record_values(
        self,
        external_id: str,
        *,
        add: dict[str, list[dict[str, Any]]],
        remove: dict[str, list[dict[str, Any]]],
        version: str | None,
    ) -> None:
        """Role or entitlement values the connector granted (`add`) or took away (`remove`) at
        the vendor: the user's record of what it granted, nothing else, follows."""
        row = self._db.execute(
            "SELECT attributes FROM users WHERE target = ? AND external_id = ?",
            (self.target, external_id),
        ).fetchone()
        if row is None:
            return
        attributes = json.loads(row[0])
        for path in add.keys() | remove.keys():
            gone = {value_key(v) for v in remove.get(path, [])}
            values = [v for v in values_of(attributes, path) if value_key(v) not in gone]
            present = {value_key(v) for v in values}
            values += [v for v in add.get(path, []) if value_key(v) not in present]
            attributes[path] = sorted(values, key=value_key)
            if not values:
                del attributes[path]
        with self.transaction():
            self._db.execute(
                "UPDATE users SET attributes = ?, version = COALESCE(?, version), updated_at = ? "
                "WHERE target = ? AND external_id = ?",
                (json.dumps(attributes), version, now_utc(), self.target, external_id),
            )

    def scrub_user(self, external_id: str) -> None:
        """Keep only the link and whether the account is active (a person now protected)."""
        with self.transaction():
            self._db.execute(
                "UPDATE users SET attributes = CASE WHEN active <> 0 THEN '{\"active\": true}' "
                "ELSE '{\"active\": false}' END, updated_at = ? "
                "WHERE target = ? AND external_id = ?",
                (now_utc(), self.target, external_id),
            )

    def rekey_user(
        self,
        old: str,
        new: str,
        vendor_id: str,
        attributes: dict[str, Any],
        version: str | None = None,
    ) -> None:
        """An account moved to its person's new key: its link, memberships and history follow
        (the link keeps its origin), with what was last applied."""
        active = bool(attributes.get("active", True))
        with self.transaction():
            self._db.execute(
                "DELETE FROM users WHERE target = ? AND external_id = ?", (self.target, new)
            )
            self._db.execute(
                "UPDATE users SET external_id = ?, vendor_id = ?, active = ?, attributes = ?, "
                "version = ?, updated_at = ?, "
                "deactivated_at = CASE WHEN ? <> 0 THEN NULL ELSE deactivated_at END "
                "WHERE target = ? AND external_id = ?",
                (
                    new,
                    vendor_id,
                    active,
                    json.dumps(attributes),
                    version,
                    now_utc(),
                    active,
                    self.target,
                    old,
                ),
            )
            self._db.execute(
                "UPDATE OR IGNORE memberships SET user_external_id = ? "
                "WHERE target = ? AND user_external_id = ?",
                (new, self.target, old),
            )
            self._db.execute(
                "DELETE FROM memberships WHERE target = ? AND user_external_id = ?",
                (self.target, old),
            )
            # Its history follows too: one account, one trail (state/history.py).
            self._db.execute(
                "UPDATE history SET external_id = ? WHERE target = ? AND external_id = ?",
                (new, self.target, old),
            )
            self._clear_intent(new)

    def relink_user(self, external_id: str, vendor_id: str) -> None:
        with self.transaction():
            self._db.execute(
                "UPDATE users SET vendor_id = ?, updated_at = ? "
                "WHERE target = ? AND external_id = ?",
                (vendor_id, now_utc(), self.target, external_id),
            )

    def forget_user(self, external_id: str) -> None:
        """Drop a link (the account is gone at the vendor) and the memberships recorded for it."""
        with self.transaction():
            self._db.execute(
                "DELETE FROM users WHERE target = ? AND external_id = ?",
                (self.target, external_id),
            )
            self._db.execute(
                "DELETE FROM memberships WHERE target = ? AND user_external_id = ?",
                (self.target, external_id),
            )

    # -- groups and memberships --------------------------------------------------------------

    def record_group(
        self, external_id: str, vendor_id: str, origin: str, attributes: dict[str, Any]
    ) -> None:
        with self.transaction():
            self._db.execute(
                """
                INSERT INTO groups (target, external_id, vendor_id, origin, attributes,
                                    updated_at)
                VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (target, external_id) DO UPDATE SET
                    vendor_id = excluded.vendor_id,
                    attributes = excluded.attributes,
                    updated_at = excluded.updated_at
                """,
                (self.target, external_id, vendor_id, origin, json.dumps(attributes), now_utc()),
            )
            self._clear_intent(external_id)

    def forget_group(self, external_id: str) -> None:
        with self.transaction():
            self._db.execute(
                "DELETE FROM groups WHERE target = ? AND external_id = ?",
                (self.target, external_id),
            )
            self._db.execute(
                "DELETE FROM memberships WHERE target = ? AND group_external_id = ?",
                (self.target, external_id),
            )

    def add_memberships(self, group_external_id: str, user_external_ids: Iterable[str]) -> None:
        with self.transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO memberships VALUES (?, ?, ?)",
                [(self.target, group_external_id, u) for u in user_external_ids],
            )

    def remove_memberships(self, group_external_id: str, user_external_ids: Iterable[str]) -> None:
        with self.transaction():
            self._db.executemany(
                "DELETE FROM memberships "
                "WHERE target = ? AND group_external_id = ? AND user_external_id = ?",
                [(self.target, group_external_id, u) for u in user_external_ids],
            )

    def memberships_of(self, group_external_ids: Iterable[str]) -> dict[str, set[str]]:
        """Every member recorded for these groups (also when what was loaded is only a few
        users': a target that sends a group whole needs all of them)."""
        found: dict[str, set[str]] = {}
        for group_ext in sorted(set(group_external_ids)):
            rows = self._db.execute(
                "SELECT user_external_id FROM memberships "
                "WHERE target = ? AND group_external_id = ?",
                (self.target, group_ext),
            )
            found[group_ext] = {str(row[0]) for row in rows}
        return found

    def _clear_intent(self, external_id: str) -> None:
        self._db.execute(
            "DELETE FROM intents WHERE target = ? AND external_id = ?",
            (self.target, external_id),
        )
