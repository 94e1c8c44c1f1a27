"""Roles and entitlements in tests: a mapping that sends them, values granted by hand at the
vendor, and what the state file records as granted."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.paths import DEFAULT_MAPPING
from tests.support.scim import SCIM_TOKEN

PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def mapping_with_values(folder: Path, **sections: Any) -> Path:
    """The default mapping with `roles:` / `entitlements:` sections added."""
    mapping = yaml.safe_load(DEFAULT_MAPPING.read_text(encoding="utf-8"))
    mapping.update(sections)
    path = folder / "mapping-roles.yaml"
    path.write_text(yaml.safe_dump(mapping, allow_unicode=True), encoding="utf-8")
    return path


def grant_by_hand(base_url: str, user: dict[str, Any], path: str, *values: dict[str, Any]) -> None:
    """A vendor admin adds values by hand: read the user, put it back with them (works on a
    server with or without PATCH)."""
    headers = {"Authorization": f"Bearer {SCIM_TOKEN}", "Content-Type": "application/scim+json"}
    with httpx.Client(base_url=base_url + "/", headers=headers, timeout=30) as http:
        current = http.get(f"Users/{user['id']}").json()
        current.pop("meta", None)
        current[path] = [*(current.get(path) or []), *values]
        http.put(f"Users/{user['id']}", json=current).raise_for_status()


def values_at(user: dict[str, Any], path: str = "roles") -> set[tuple[str, str]]:
    """(value, type) of each value a vendor user holds under `path`."""
    return {(v.get("value"), v.get("type") or "") for v in user.get(path) or []}


def recorded_grants(state_path: Path) -> dict[str, dict[str, Any]]:
    """externalId -> the roles/entitlements the state file records as granted (and userName)."""
    with sqlite3.connect(state_path) as db:
        rows = db.execute("SELECT external_id, attributes FROM users").fetchall()
    out = {}
    for ext, raw in rows:
        attributes = json.loads(raw)
        out[ext] = {
            k: attributes[k] for k in ("userName", "roles", "entitlements") if k in attributes
        }
    return out
