"""A config error names the key as written and, for a misspelling, the key or value meant -
at the top level, in a section, in a list item of a union (a target, a source, a delivery) -
and never the value written, which may be a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.config import load_config
from connector.errors import ConfigError
from tests.support.paths import DEFAULT_MAPPING, ILT_FILE_MAPPING

SECRET = "s3cret-token-value-0123456789"


def minimal() -> dict[str, Any]:
    return {
        "vendor": {"base_url": "https://scim.example/v2", "token": "${SCIM_TOKEN}"},
        "mapping": str(DEFAULT_MAPPING),
        "state": {"path": "state.db"},
        "external_id": {"key": "k"},
        "sources": [
            {
                "name": "students",
                "type": "csv",
                "kind": "student",
                "path": "elever.csv",
                "columns": {"key": "Elev-ID", "school_unit_code": "Skolenhetskod"},
                "protected_identity": {"column": "Skyddad", "not_protected_values": ["Nej"]},
            }
        ],
    }


def problems(tmp_path: Path, config: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SCIM_TOKEN", SECRET)
    path = tmp_path / "connector.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


def targets(config: dict[str, Any], *items: dict[str, Any]) -> dict[str, Any]:
    del config["vendor"], config["mapping"]
    config["targets"] = list(items)
    return config


SCIM = {"name": "v", "base_url": "https://v.example/v2", "mapping": str(DEFAULT_MAPPING)}


def test_a_misspelt_top_level_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**minimal(), "deamon": {"interval_seconds": 60}}
    assert "  - deamon: unknown key; did you mean daemon?" in problems(
        tmp_path, config, monkeypatch
    )


def test_a_misspelt_nested_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**minimal(), "daemon": {"intervall_seconds": 60}}
    assert "daemon.intervall_seconds: unknown key; did you mean interval_seconds?" in problems(
        tmp_path, config, monkeypatch
    )


def test_a_misspelt_key_in_a_list_item_of_a_union(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scim = {**SCIM, "base_ur": SCIM["base_url"]}
    del scim["base_url"]
    file = {
        "name": "ilt",
        "kind": "file",
        "mapping": str(ILT_FILE_MAPPING),
        "delivery": {"method": "local", "directoyr": "out"},
    }
    message = problems(tmp_path, targets(minimal(), scim, file), monkeypatch)
    assert "targets[0].base_ur: unknown key; did you mean base_url?" in message
    assert "targets[1].delivery.directoyr: unknown key; did you mean directory?" in message
    # the location is the key as written: no union tags (scim, file, local) in it
    assert ".scim." not in message and ".local." not in message


def test_a_misspelt_key_in_a_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = minimal()
    config["sources"][0]["encodng"] = "utf-8"
    message = problems(tmp_path, config, monkeypatch)
    assert "sources[0].encodng: unknown key; did you mean encoding?" in message


def test_no_close_key_lists_the_keys_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = minimal()
    config["sources"][0]["columns"]["årskurs"] = "Årskurs"
    message = problems(tmp_path, config, monkeypatch)
    assert "sources[0].columns.årskurs: unknown key (the keys here: key, given_name," in message
    assert "school_year" in message


def test_a_misspelt_kind_of_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    message = problems(tmp_path, targets(minimal(), {**SCIM, "kind": "scm"}), monkeypatch)
    assert "targets[0].kind: should be one of: scim, file, egil; did you mean scim?" in message


def test_a_misspelt_or_missing_source_type(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = minimal()
    config["sources"][0]["type"] = "cvs"
    config["sources"].append({"name": "dir", "typ": "ldap"})
    message = problems(tmp_path, config, monkeypatch)
    assert "sources[0].type: should be one of: csv, ldap, ss12000; did you mean csv?" in message
    assert "sources[1].type: missing; one of: csv, ldap, ss12000" in message


def test_a_misspelt_value(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = {**minimal(), "logging": {"level": "inof"}}
    config["sources"][0]["kind"] = "stuent"
    message = problems(tmp_path, config, monkeypatch)
    assert "logging.level: Input should be 'debug', 'info'" in message
    assert "; did you mean 'info'?" in message
    assert "sources[0].kind: Input should be 'student' or 'staff'; did you mean 'student'?" in (
        message
    )


def test_a_misspelt_secret_key_does_not_show_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = minimal()
    config["vendor"] = {"base_url": "https://scim.example/v2", "tokn": "${SCIM_TOKEN}"}
    config["external_id"] = {"kye": SECRET}
    message = problems(tmp_path, config, monkeypatch)
    assert "vendor.tokn: unknown key; did you mean token?" in message
    assert "external_id.kye: unknown key; did you mean key?" in message
    assert SECRET not in message
