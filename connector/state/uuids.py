"""A target that becomes an EGIL target: its records' external ids rewritten to UUIDs, once.

A `kind: scim` target keyed its users by the opaque 32-hex externalId; EGIL keys every object
by a lower-case UUID (targets/egil/ids.py). So that a person keeps their record, history and
generated username when their target's kind changes, each user id is rewritten with
`convert` everywhere the target's records hold it: users (whose vendor id becomes the UUID:
EGIL's id is the externalId), memberships, history, failures, intents and usernames. The
SCIM groups (one per school unit code) have no EGIL counterpart: they and their memberships
are forgotten, as is a held plan (approving it would name the old ids). Runs once per target
(a mark in the meta table); ids already in UUID form are left as they are.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from connector.state.links import Links
from connector.state.schema import target_meta_key

MARK = "ids"
UUID_IDS = "uuid"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def migrated(links: Links) -> bool:
    return links.database.get_meta(target_meta_key(links.target, MARK)) == UUID_IDS


def migrate_to_uuids(links: Links, convert: Callable[[str], str]) -> int:
    """Rewrite the target's user ids with `convert` (once); how many users were rewritten."""
    if migrated(links):
        return 0
    db, target = links._db, links.target
    rows = db.execute("SELECT external_id FROM users WHERE target = ?", (target,)).fetchall()
    history = db.execute(
        "SELECT DISTINCT external_id FROM history WHERE target = ?", (target,)
    ).fetchall()
    named = db.execute("SELECT external_id FROM usernames WHERE target = ?", (target,)).fetchall()
    ids = {str(r[0]) for r in [*rows, *history, *named] if not _UUID.match(str(r[0]))}
    mapping = {old: convert(old) for old in sorted(ids)}
    with links.transaction():
        db.execute("DELETE FROM groups WHERE target = ?", (target,))
        db.execute("DELETE FROM memberships WHERE target = ?", (target,))
        db.execute("DELETE FROM intents WHERE target = ?", (target,))
        for old, new in mapping.items():
            db.execute(
                "UPDATE users SET external_id = ?, vendor_id = ? "
                "WHERE target = ? AND external_id = ?",
                (new, new, target, old),
            )
            for table in ("history", "usernames"):
                db.execute(
                    f"UPDATE {table} SET external_id = ? "  # noqa: S608 (fixed names)
                    "WHERE target = ? AND external_id = ?",
                    (new, target, old),
                )
        for (key,) in db.execute("SELECT key FROM failures WHERE target = ?", (target,)).fetchall():
            kind, _, old = str(key).partition(":")
            new_key = f"{kind}:{mapping[old]}" if old in mapping else None
            if new_key is None:
                db.execute("DELETE FROM failures WHERE target = ? AND key = ?", (target, key))
            else:
                db.execute(
                    "UPDATE failures SET key = ? WHERE target = ? AND key = ?",
                    (new_key, target, key),
                )
        db.execute("DELETE FROM meta WHERE key = ?", (target_meta_key(target, "held_plan"),))
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (target_meta_key(target, MARK), UUID_IDS),
        )
    return len([r for r in rows if str(r[0]) in mapping])
