"""Unit tests for connector.config: loading, env expansion, secrets, paths and error reports."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from connector.config import Config, load_config
from connector.errors import ConfigError
from connector.people.model import Kind

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MAPPING = REPO / "mappings" / "default.yaml"

BASE: dict[str, Any] = {
    "vendor": {"base_url": "https://scim.vendor.example/v2/", "token": "secret-token"},
    "state": {"path": "state.db"},
    "mapping": str(DEFAULT_MAPPING),
    "external_id": {"key": "id-key"},
    "sources": [
        {
            "name": "students",
            "type": "csv",
            "kind": "student",
            "path": "elever.csv",
            "delimiter": ",",
            "encoding": "windows-1252",
            "columns": {
                "key": "Elev-ID",
                "given_name": "Förnamn",
                "family_name": "Efternamn",
                "email": "E-post",
                "school_unit_code": "Skolenhetskod",
            },
            "protected_identity": {"column": "Skyddad", "not_protected_values": ["Nej"]},
        }
    ],
}


def config_dict(**overrides: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data.update(overrides)
    return data


def write_config(folder: Path, data: dict[str, Any], name: str = "connector.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


# -- a valid config --------------------------------------------------------------------------


def test_valid_config_loads_with_typed_values(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, config_dict()))
    assert isinstance(config, Config)
    assert config.vendor.base_url == "https://scim.vendor.example/v2"  # trailing / dropped
    assert config.vendor.bearer_token() == "secret-token"
    assert config.vendor.timeout_seconds == 30.0
    assert config.vendor.member_chunk_size == 100
    source = config.sources[0]
    assert source.kind is Kind.STUDENT
    assert source.delimiter == ","
    assert source.encoding == "windows-1252"
    assert source.columns.key == "Elev-ID"
    assert source.protected_identity.not_protected_values == ["Nej"]
    assert config.external_id.mode == "hmac"
    assert config.external_id.secret() == b"id-key"
    assert config.lifecycle.delete_after_days == 90
    assert config.source_file == tmp_path / "connector.yaml"


def test_token_is_not_shown_in_repr(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, config_dict()))
    assert "secret-token" not in repr(config.vendor)


# -- environment variables -------------------------------------------------------------------


def test_env_var_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_CONNECTOR_TOKEN", "from-env")
    monkeypatch.setenv("TEST_CONNECTOR_HOST", "scim.example.se")
    data = config_dict()
    data["vendor"] = {
        "base_url": "https://${TEST_CONNECTOR_HOST}/v2",
        "token": "${TEST_CONNECTOR_TOKEN}",
    }
    config = load_config(write_config(tmp_path, data))
    assert config.vendor.bearer_token() == "from-env"
    assert config.vendor.base_url == "https://scim.example.se/v2"


def test_unset_env_var_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_CONNECTOR_MISSING", raising=False)
    data = config_dict()
    data["vendor"]["token"] = "${TEST_CONNECTOR_MISSING}"
    problems = problems_of(write_config(tmp_path, data))
    assert problems == ["vendor.token: environment variable TEST_CONNECTOR_MISSING is not set"]


def test_unset_env_var_in_list_names_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_CONNECTOR_MISSING", raising=False)
    data = config_dict()
    data["sources"][0]["path"] = "${TEST_CONNECTOR_MISSING}/elever.csv"
    problems = problems_of(write_config(tmp_path, data))
    assert problems == ["sources[0].path: environment variable TEST_CONNECTOR_MISSING is not set"]


# -- secrets from files ----------------------------------------------------------------------


def test_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("  file-token\n\n", encoding="utf-8")
    data = config_dict()
    data["vendor"] = {"base_url": "https://scim.example.se", "token_file": "token.txt"}
    config = load_config(write_config(tmp_path, data))
    assert config.vendor.bearer_token() == "file-token"


def test_key_file_is_read_and_stripped(tmp_path: Path) -> None:
    (tmp_path / "id.key").write_text("hemlig\n", encoding="utf-8")
    data = config_dict(external_id={"key_file": "id.key"})
    config = load_config(write_config(tmp_path, data))
    assert config.external_id.secret() == b"hemlig"


def test_token_and_token_file_together_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("file-token", encoding="utf-8")
    data = config_dict()
    data["vendor"]["token_file"] = "token.txt"
    problems = problems_of(write_config(tmp_path, data))
    assert any(p.startswith("vendor:") and "either token or token_file" in p for p in problems), (
        problems
    )


def test_missing_token_file_is_an_error(tmp_path: Path) -> None:
    data = config_dict()
    data["vendor"] = {"base_url": "https://scim.example.se", "token_file": "nope.txt"}
    problems = problems_of(write_config(tmp_path, data))
    assert len(problems) == 1
    assert problems[0].startswith("vendor.token_file: file ")
    assert "does not exist" in problems[0]


def test_hmac_without_key_is_an_error(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path, config_dict(external_id={"mode": "hmac"})))
    assert any(p.startswith("external_id:") and "secret key" in p for p in problems), problems


# -- validation errors name the key ------------------------------------------------------------


def test_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    data = config_dict()
    data["vendor"]["timout_seconds"] = 5
    problems = problems_of(write_config(tmp_path, data))
    assert any(p.startswith("vendor.timout_seconds:") for p in problems), problems


def test_unknown_top_level_key_is_an_error(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path, config_dict(sourcez=[])))
    assert any(p.startswith("sourcez:") for p in problems), problems


def test_wrong_type_names_the_key(tmp_path: Path) -> None:
    data = config_dict()
    data["sources"][0]["delimiter"] = ";;"
    problems = problems_of(write_config(tmp_path, data))
    assert any(p.startswith("sources[0].delimiter:") for p in problems), problems


def test_wrong_scalar_type_names_the_key(tmp_path: Path) -> None:
    data = config_dict()
    data["vendor"]["concurrency"] = "many"
    problems = problems_of(write_config(tmp_path, data))
    assert any(p.startswith("vendor.concurrency:") for p in problems), problems


def test_bad_base_url_names_the_key(tmp_path: Path) -> None:
    data = config_dict()
    data["vendor"]["base_url"] = "ftp://example.se"
    problems = problems_of(write_config(tmp_path, data))
    assert any(p.startswith("vendor.base_url:") and "http" in p for p in problems), problems


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    data = config_dict()
    data["vendor"]["concurrency"] = 0
    data["sources"][0]["encoding"] = "latin-9"
    problems = problems_of(write_config(tmp_path, data))
    keys = {p.split(":", 1)[0] for p in problems}
    assert {"vendor.concurrency", "sources[0].encoding"} <= keys


def test_duplicate_source_names_are_an_error(tmp_path: Path) -> None:
    data = config_dict()
    data["sources"].append(copy.deepcopy(data["sources"][0]))
    problems = problems_of(write_config(tmp_path, data))
    assert any(p.startswith("sources:") and "students" in p for p in problems), problems


def test_missing_mapping_file_is_an_error(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path, config_dict(mapping="missing.yaml")))
    assert len(problems) == 1
    assert problems[0].startswith("mapping: file ")


# -- paths ---------------------------------------------------------------------------------


def test_relative_paths_resolve_against_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "etc" / "connector"
    folder.mkdir(parents=True)
    (folder / "token.txt").write_text("t", encoding="utf-8")
    data = config_dict()
    data["vendor"] = {"base_url": "https://scim.example.se", "token_file": "token.txt"}
    data["sources"][0]["path"] = "data/elever.csv"
    path = write_config(folder, data)
    monkeypatch.chdir(tmp_path)  # somewhere else entirely
    config = load_config(path)
    assert config.sources[0].path == (folder / "data" / "elever.csv").resolve()
    assert config.state.path == (folder / "state.db").resolve()
    assert config.vendor.token_file == (folder / "token.txt").resolve()


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    absolute = tmp_path / "elsewhere" / "elever.csv"
    data = config_dict()
    data["sources"][0]["path"] = str(absolute)
    config = load_config(write_config(tmp_path, data))
    assert config.sources[0].path == absolute
    assert config.mapping == DEFAULT_MAPPING


# -- YAML problems ---------------------------------------------------------------------------


def test_invalid_yaml_reports_line_number(tmp_path: Path) -> None:
    path = tmp_path / "connector.yaml"
    path.write_text("vendor:\n  base_url: https://x.se\n  token: [unclosed\nstate: {}\n")
    problems = problems_of(path)
    assert len(problems) == 1
    assert "line " in problems[0]
    assert "not valid YAML" in problems[0]


def test_invalid_yaml_points_at_the_right_line(tmp_path: Path) -> None:
    path = tmp_path / "connector.yaml"
    path.write_text("a: 1\nb: 2\nc: d: e\n")
    problems = problems_of(path)
    assert problems[0].startswith("line 3,"), problems


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nope.yaml") == ["the file does not exist"]


def test_yaml_that_is_not_a_mapping_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "connector.yaml"
    path.write_text("- just\n- a list\n")
    problems = problems_of(path)
    assert "mapping of keys" in problems[0]


# -- protected identity ----------------------------------------------------------------------


def test_protected_identity_without_column_is_an_error(tmp_path: Path) -> None:
    data = config_dict()
    data["sources"][0]["protected_identity"] = {"not_protected_values": ["Nej"]}
    problems = problems_of(write_config(tmp_path, data))
    assert any(
        p.startswith("sources[0].protected_identity:") and "column is required" in p
        for p in problems
    ), problems


def test_protected_identity_without_not_protected_values_is_an_error(tmp_path: Path) -> None:
    data = config_dict()
    data["sources"][0]["protected_identity"] = {"column": "Skyddad"}
    problems = problems_of(write_config(tmp_path, data))
    assert any(
        p.startswith("sources[0].protected_identity:") and "not_protected_values" in p
        for p in problems
    ), problems


def test_protected_identity_section_is_required(tmp_path: Path) -> None:
    data = config_dict()
    del data["sources"][0]["protected_identity"]
    problems = problems_of(write_config(tmp_path, data))
    assert any(p.startswith("sources[0].protected_identity:") for p in problems), problems


def test_assume_not_protected_is_accepted_without_column(tmp_path: Path) -> None:
    data = config_dict()
    data["sources"][0]["protected_identity"] = {"assume_not_protected": True}
    config = load_config(write_config(tmp_path, data))
    assert config.sources[0].protected_identity.assume_not_protected is True
    assert config.sources[0].protected_identity.column is None


def test_assume_not_protected_with_column_is_an_error(tmp_path: Path) -> None:
    data = config_dict()
    data["sources"][0]["protected_identity"] = {
        "assume_not_protected": True,
        "column": "Skyddad",
        "not_protected_values": ["Nej"],
    }
    problems = problems_of(write_config(tmp_path, data))
    assert any("not both" in p for p in problems), problems


# -- the command line --------------------------------------------------------------------------


def test_cli_reports_bad_config_without_traceback(tmp_path: Path) -> None:
    data = config_dict()
    data["vendor"]["timout_seconds"] = 5
    path = write_config(tmp_path, data, name="BAD.yaml")
    result = subprocess.run(
        [sys.executable, "-m", "connector", "--config", str(path), "plan"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "vendor.timout_seconds" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_reports_unset_env_var_without_traceback(tmp_path: Path) -> None:
    data = config_dict()
    data["vendor"]["token"] = "${TEST_CONNECTOR_SURELY_UNSET}"
    path = write_config(tmp_path, data, name="BAD.yaml")
    env = {k: v for k, v in os.environ.items() if k != "TEST_CONNECTOR_SURELY_UNSET"}
    result = subprocess.run(
        [sys.executable, "-m", "connector", "--config", str(path), "plan"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert "vendor.token: environment variable TEST_CONNECTOR_SURELY_UNSET is not set" in (
        result.stderr
    )
    assert "Traceback" not in result.stderr


# -- state and secrets are checked when the file is loaded -------------------------------------


def test_a_state_path_in_a_missing_folder_names_the_key(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path, config_dict(state={"path": "typo/state.db"})))
    assert any(p.startswith("state.path: folder") and "does not exist" in p for p in problems)
    assert not (tmp_path / "typo").exists()


@pytest.mark.parametrize(
    "token", ["tøken-with-non-ascii", "token with spaces", "token-with-newline\n", " padded"]
)
def test_a_token_that_cannot_be_a_bearer_token_names_the_key(tmp_path: Path, token: str) -> None:
    data = config_dict()
    data["vendor"]["token"] = token
    problems = problems_of(write_config(tmp_path, data))
    assert problems == [
        "vendor.token: must be printable ASCII without spaces or line breaks (a bearer token)"
    ]


def test_a_token_file_holding_non_ascii_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "token.txt").write_text("tøken\n", encoding="utf-8")
    data = config_dict()
    data["vendor"] = {"base_url": "https://scim.example.se", "token_file": "token.txt"}
    problems = problems_of(write_config(tmp_path, data))
    assert len(problems) == 1 and problems[0].startswith("vendor.token_file: ")
    assert "printable ASCII" in problems[0] and "tøken" not in problems[0]


def test_a_key_with_spaces_around_it_names_the_key(tmp_path: Path) -> None:
    problems = problems_of(write_config(tmp_path, config_dict(external_id={"key": "id-key \n"})))
    assert problems == ["external_id.key: has spaces or line breaks around it"]


# -- directory sources -------------------------------------------------------------------------


def ldap_source(**overrides: Any) -> dict[str, Any]:
    source: dict[str, Any] = {
        "name": "staff",
        "type": "ldap",
        "kind": "staff",
        "servers": ["ldaps://dc1.kommun.example"],
        "base_dns": ["OU=Personal,DC=kommun,DC=example"],
        "attributes": {"key": "objectGUID"},
        "protected_identity": {"attribute": "employeeType", "not_protected_values": ["0"]},
    }
    source.update(overrides)
    return source


def test_a_base_dn_split_at_its_commas_by_a_yaml_flow_list_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "connector.yaml"
    text = yaml.safe_dump(config_dict(sources=[ldap_source(base_dns="HERE")]))
    # as people write it: a flow list, unquoted
    text = text.replace("base_dns: HERE", "base_dns: [OU=Personal,DC=kommun,DC=example]")
    path.write_text(text, encoding="utf-8")

    problems = problems_of(path)

    assert len(problems) == 1, problems
    assert problems[0].startswith("sources[0].base_dns:"), problems
    assert "'OU=Personal', 'DC=kommun', 'DC=example'" in problems[0]
    assert "quote" in problems[0]


def test_several_whole_base_dns_are_accepted(tmp_path: Path) -> None:
    bases = ["OU=Personal,DC=kommun,DC=example", "OU=Vikarier,DC=kommun,DC=example"]
    data = config_dict(sources=[ldap_source(base_dns=bases)])
    config = load_config(write_config(tmp_path, data))
    assert config.sources[0].base_dns == bases


TEMPLATE = "cn=personal-{school_unit_code},ou=Grupper,dc=kommun,dc=example"
SCHOOLS = [{"code": "11111111", "name": "Ekeby skola"}, {"code": "22222222", "name": "Björkäng"}]


def test_a_group_rule_template_expands_to_one_rule_per_school(tmp_path: Path) -> None:
    rules = [
        {"group": TEMPLATE, "role": "Lärare"},
        {"group": "cn=rektorer,ou=Grupper,dc=kommun,dc=example", "school_unit_code": "11111111"},
    ]
    data = config_dict(sources=[ldap_source(group_rules=rules)], schools=SCHOOLS)

    config = load_config(write_config(tmp_path, data))

    expanded = config.sources[0].expanded_group_rules([s["code"] for s in SCHOOLS])
    assert [(r.group, r.school_unit_code, r.role) for r in expanded] == [
        ("cn=personal-11111111,ou=Grupper,dc=kommun,dc=example", "11111111", "Lärare"),
        ("cn=personal-22222222,ou=Grupper,dc=kommun,dc=example", "22222222", "Lärare"),
        ("cn=rektorer,ou=Grupper,dc=kommun,dc=example", "11111111", None),
    ]


def test_a_group_rule_template_without_schools_is_an_error_naming_the_key(tmp_path: Path) -> None:
    data = config_dict(sources=[ldap_source(group_rules=[{"group": TEMPLATE}])])

    problems = problems_of(write_config(tmp_path, data))

    assert len(problems) == 1, problems
    assert "sources[0].group_rules[0].group" in problems[0]
    assert "schools:" in problems[0]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # neither a school unit code nor a template
        ({"group": "cn=personal,ou=Grupper,dc=kommun,dc=example"}, "{school_unit_code}"),
        # a template names its schools through `schools:`, not one of its own
        ({"group": TEMPLATE, "school_unit_code": "11111111"}, "school_unit_code"),
        # a misspelt placeholder
        ({"group": "cn=personal-{school},ou=Grupper,dc=kommun,dc=example"}, "{school}"),
    ],
)
def test_a_group_rule_is_a_template_or_has_a_school_unit_code(
    tmp_path: Path, rule: dict[str, str], expected: str
) -> None:
    data = config_dict(sources=[ldap_source(group_rules=[rule])], schools=SCHOOLS)

    problems = problems_of(write_config(tmp_path, data))

    assert any(p.startswith("sources[0].group_rules[0]") and expected in p for p in problems), (
        problems
    )


def test_a_directory_source_may_name_a_default_role(tmp_path: Path) -> None:
    data = config_dict(sources=[ldap_source(default_role="Lärare")])
    assert load_config(write_config(tmp_path, data)).sources[0].default_role == "Lärare"
