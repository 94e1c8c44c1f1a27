"""`load_config(path, secrets=False)`: the read-only mode of `status` and `history`. Secrets
may be missing (placeholders, files not read); nothing else is relaxed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.config import load_config, load_state_settings
from connector.errors import ConfigError
from tests.support.paths import DEFAULT_MAPPING


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "connector.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def config_with_secrets(tmp_path: Path) -> dict[str, Any]:
    roster = tmp_path / "students.csv"
    roster.write_text("Elev-ID;Skyddad\n", encoding="utf-8")
    return {
        "vendor": {"base_url": "https://vendor.example/scim/v2", "token": "${RO_SCIM_TOKEN}"},
        "mapping": str(DEFAULT_MAPPING),
        "state": {"path": str(tmp_path / "state.db")},
        "external_id": {"key_file": str(tmp_path / "absent-id-key")},
        "daemon": {"timezone": "Europe/Stockholm"},
        "sources": [
            {
                "name": "staff",
                "type": "ldap",
                "kind": "staff",
                "servers": ["ldaps://ldap.example"],
                "base_dns": ["dc=example"],
                "bind_dn": "cn=connector,dc=example",
                "password": "${RO_LDAP_PASSWORD}",
                "attributes": {"key": "entryUUID", "given_name": "givenName"},
                "protected_identity": {"assume_not_protected": True},
            }
        ],
    }


def test_without_secrets_unset_secrets_are_placeholders_and_files_are_not_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RO_SCIM_TOKEN", raising=False)
    monkeypatch.delenv("RO_LDAP_PASSWORD", raising=False)
    path = write(tmp_path, config_with_secrets(tmp_path))

    with pytest.raises(ConfigError) as refused:
        load_config(path)
    problems = "\n".join(refused.value.problems)
    assert "environment variable RO_SCIM_TOKEN is not set" in problems

    config = load_config(path, secrets=False)
    assert config.state.path == tmp_path / "state.db"
    assert config.daemon.timezone == "Europe/Stockholm"
    assert [t.name for t in config.targets] == ["default"]
    assert config.targets[0].token is not None
    assert config.targets[0].token.get_secret_value() == "${RO_SCIM_TOKEN}"


def test_without_secrets_a_set_secret_is_still_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RO_SCIM_TOKEN", "real-token")
    monkeypatch.delenv("RO_LDAP_PASSWORD", raising=False)
    config = load_config(write(tmp_path, config_with_secrets(tmp_path)), secrets=False)
    token = config.targets[0].token
    assert token is not None and token.get_secret_value() == "real-token"


def test_without_secrets_nothing_else_is_relaxed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RO_URL", raising=False)
    monkeypatch.delenv("RO_SCIM_TOKEN", raising=False)
    monkeypatch.delenv("RO_LDAP_PASSWORD", raising=False)
    config = config_with_secrets(tmp_path)
    config["vendor"]["base_url"] = "${RO_URL}"  # not a secret: still required
    config["mapping"] = str(tmp_path / "no-such-mapping.yaml")
    config["sources"][0]["ca_file"] = str(tmp_path / "no-such-ca.pem")
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, config), secrets=False)
    problems = refused.value.problems
    assert "vendor.base_url: environment variable RO_URL is not set" in problems
    assert all("RO_SCIM_TOKEN" not in p and "RO_LDAP_PASSWORD" not in p for p in problems)

    del config["vendor"]["base_url"]
    config["vendor"]["base_url"] = "https://vendor.example/scim/v2"
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, config), secrets=False)
    text = "\n".join(refused.value.problems)
    assert "mapping: file" in text and "sources[0].ca_file: file" in text
    assert "key_file" not in text


def test_a_column_called_key_is_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RO_COLUMN", raising=False)
    config = config_with_secrets(tmp_path)
    config["sources"] = [
        {
            "name": "students",
            "type": "csv",
            "kind": "student",
            "path": str(tmp_path / "students.csv"),
            "columns": {"key": "${RO_COLUMN}"},
            "protected_identity": {"column": "Skyddad", "not_protected_values": ["Nej"]},
        }
    ]
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, config), secrets=False)
    assert "sources[0].columns.key: environment variable RO_COLUMN is not set" in (
        refused.value.problems
    )


def test_status_settings_come_from_an_otherwise_invalid_file(tmp_path: Path) -> None:
    config = config_with_secrets(tmp_path)
    config["vendor"]["token"] = "pasted with spaces"
    config["state"] = {"path": "state.db"}  # relative to the config's folder
    path = write(tmp_path, config)
    with pytest.raises(ConfigError):
        load_config(path, secrets=False)
    state, daemon = load_state_settings(path)
    assert (state.path, daemon.timezone) == (tmp_path.resolve() / "state.db", "Europe/Stockholm")

    config["daemon"] = {"timezone": "Mars/Olympus"}
    del config["state"]
    with pytest.raises(ConfigError) as refused:
        load_state_settings(write(tmp_path, config))
    assert any(p.startswith("state.") for p in refused.value.problems)
    assert any(p.startswith("daemon.timezone: unknown time zone") for p in refused.value.problems)


def test_without_secrets_notification_secrets_need_not_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RO_HOOK_URL", raising=False)
    monkeypatch.delenv("RO_SMTP_PASSWORD", raising=False)
    config = config_with_secrets(tmp_path)
    config["notify"] = {
        "webhooks": [{"name": "teams", "url": "${RO_HOOK_URL}"}],
        "email": [
            {
                "name": "it",
                "host": "smtp.example",
                "from": "connector@example.se",
                "to": ["it@example.se"],
                "username": "connector",
                "password": "${RO_SMTP_PASSWORD}",
            },
            {
                "name": "it2",
                "host": "smtp.example",
                "from": "connector@example.se",
                "to": ["it@example.se"],
                "username": "connector",
                "password_file": str(tmp_path / "absent-smtp-password"),
            },
        ],
    }
    path = write(tmp_path, config)

    with pytest.raises(ConfigError) as refused:
        load_config(path)
    problems = "\n".join(refused.value.problems)
    assert "RO_HOOK_URL is not set" in problems and "RO_SMTP_PASSWORD is not set" in problems

    loaded = load_config(path, secrets=False)
    assert loaded.state.path == tmp_path / "state.db"


def test_without_secrets_credential_folders_need_not_be_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """systemd sets $CREDENTIALS_DIRECTORY for the service only: `status` in a shell has none."""
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.setenv("RO_SCIM_TOKEN", "t0ken")
    monkeypatch.setenv("RO_LDAP_PASSWORD", "secret")
    config = config_with_secrets(tmp_path)
    config["external_id"] = {"key_file": "${CREDENTIALS_DIRECTORY}/connector_id-key"}
    path = write(tmp_path, config)

    with pytest.raises(ConfigError) as refused:
        load_config(path)
    assert "CREDENTIALS_DIRECTORY is not set" in "\n".join(refused.value.problems)

    assert load_config(path, secrets=False).state.path == tmp_path / "state.db"
