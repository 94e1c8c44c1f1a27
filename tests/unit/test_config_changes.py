"""What `config.reloaded` says changed (connector.daemon.changed_keys)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.config import Config
from connector.service.reload import changed_keys


def config(**overrides: Any) -> Config:
    data: dict[str, Any] = {
        "vendor": {"base_url": "https://scim.example.se/v2", "token": "secret-one"},
        "state": {"path": "/var/lib/connector/state.db"},
        "mapping": "/etc/connector/default.yaml",
        "external_id": {"key": "k"},
        "sources": [
            {
                "type": "csv",
                "name": "students",
                "path": "/srv/elever.csv",
                "kind": "student",
                "columns": {"key": "Elev-ID", "school_unit_code": "Skolenhetskod"},
                "protected_identity": {"column": "Skyddad", "not_protected_values": ["Nej"]},
            }
        ],
    }
    for key, value in overrides.items():
        data[key] = value
    return Config.model_validate(data)


def test_nothing_changed() -> None:
    assert changed_keys(config(), config()) == []


def test_nested_keys_are_named_and_secrets_only_by_key() -> None:
    old = config()
    new = config(
        vendor={"base_url": "https://scim.example.se/v2", "token": "secret-two"},
        safety={"max_updates": {"count": 10, "percent": 1}},
    )
    changed = changed_keys(old, new)
    assert changed == [
        "vendor.token",
        "safety.max_updates.count",
        "safety.max_updates.percent",
    ]
    assert "secret" not in " ".join(changed)


def test_a_source_setting_is_named_by_its_index() -> None:
    old = config()
    source = old.sources[0].model_dump()
    source["path"] = Path("/srv/other.csv")
    assert changed_keys(old, config(sources=[source])) == ["sources[0].path"]
