"""The command line as people use it: demo, check, exit codes, the example config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from connector.config import LdapSourceConfig, load_config
from connector.state.store import StateStore
from tests.support.cli import run_module
from tests.support.paths import REPO
from tests.support.rosters import student
from tests.support.scim import SCIM_TOKEN, ScimPeek
from tests.support.workspace import Workspace


def test_demo_syncs_the_sample_data_and_the_second_run_changes_nothing() -> None:
    result = run_module("demo")

    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    first, second = out.split("== Second sync")
    assert "users created        13" in first
    assert "groups created       3" in first
    assert "left out (protected identity): 2" in first
    assert "users created        0" in second
    assert "requests             none" in second
    assert "13 users, 3 groups" in out
    assert "Group Ekeby skola (school unit 23456781): 6 members" in out
    # The same reading, as the file Inläsningstjänst would receive: sent once, then unchanged.
    assert "file for Inläsningstjänst: files delivered 1, persons added 13" in first
    assert "file for Inläsningstjänst: unchanged, not sent again" in second
    assert "users.csv, 15 rows" in out
    assert "sven.ek@edu.example.se;Sven;Ek;sven.ek@edu.example.se;Elev;23456781;Ekeby skola" in out
    # the sample's protected student and the one with an empty marking
    assert "skyddad.elev" not in out and "okand.markering" not in out


def test_check_reports_sources_and_vendor(workspace: Workspace) -> None:
    workspace.students([student("E1", "Åsa", "Öberg"), student("E2", "Hemlig", "X", marking="Ja")])

    result = workspace.run("check")

    assert result.exit_code == 0, result.stdout
    assert (
        "ok    source students: 2 records, 2 persons (1 protected, left out), 0 records skipped"
        in result.stdout
    )
    assert "ok    vendor" in result.stdout and "PATCH yes" in result.stdout


def test_check_names_a_wrong_token_and_a_missing_file(workspace: Workspace) -> None:
    workspace.students([student("E1", "Åsa", "Öberg")])
    workspace.write_config()
    config = yaml.safe_load(workspace.config_path.read_text())
    config["vendor"]["token"] = "wrong-token"
    config["sources"][0]["path"] = str(workspace.root / "missing.csv")
    workspace.config_path.write_text(yaml.safe_dump(config, allow_unicode=True))

    result = run_module("--config", str(workspace.config_path), "check")

    assert result.returncode == 1
    assert "FAIL  source students: cannot read" in result.stdout
    assert "401" in result.stdout and "is the token right?" in result.stdout
    assert "wrong-token" not in result.stdout + result.stderr


def test_python_dash_m_reports_a_bad_config_with_exit_code_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("vendor:\n  base_url: ftp://nope\nstate: {}\n", encoding="utf-8")

    result = run_module("--config", str(bad), "sync")

    assert result.returncode == 2
    assert "vendor.base_url: must be an http:// or https:// URL" in result.stderr
    assert "state: set path (the SQLite file) or url (PostgreSQL)" in result.stderr
    assert "Traceback" not in result.stderr


EXAMPLE_ENV = {"SCIM_TOKEN": "x", "CONNECTOR_ID_KEY": "y", "LDAP_PASSWORD": "z"}


def example_config(folder: Path) -> Path:
    """config/example.yaml (its mapping built in) with its CA file pointing at a file here."""
    example = folder / "example.yaml"
    text = (REPO / "config" / "example.yaml").read_text(encoding="utf-8")
    text = text.replace("/var/lib/connector/state.db", str(folder / "state.db"))
    example.write_text(text.replace("/etc/connector/kommun-ca.pem", str(REPO / "README.md")))
    return example


def test_example_config_is_valid(tmp_path: Path) -> None:
    example = example_config(tmp_path)

    result = run_module("--config", str(example), "plan", env=EXAMPLE_ENV)

    # the example's exports do not exist here: the sources fail, the config itself is accepted
    assert result.returncode == 1, result.stderr
    assert "SOURCE FAILED students" in result.stdout
    assert "is not valid" not in result.stderr


def test_example_config_directory_dns_are_whole_dns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """YAML's flow lists split on commas: [OU=Elever,DC=kommun,DC=example] is three "DNs"."""
    for name, value in EXAMPLE_ENV.items():
        monkeypatch.setenv(name, value)
    config = load_config(example_config(tmp_path))
    directories = [s for s in config.sources if isinstance(s, LdapSourceConfig)]
    assert directories
    for source in directories:
        dns = [*source.base_dns, source.bind_dn, *(rule.group for rule in source.group_rules)]
        for dn in dns:
            assert dn is not None and dn.endswith(",DC=kommun,DC=example"), (source.name, dn)
            assert dn.count("=") >= 3, (source.name, dn)


def test_second_sync_on_a_locked_state_refuses_clearly(
    workspace: Workspace, peek: ScimPeek
) -> None:
    workspace.students([student("E1", "Åsa", "Öberg")])
    workspace.write_config()
    holder = StateStore.open(workspace.state_path)
    holder.acquire_lock()
    try:
        result = run_module(
            "--config", str(workspace.config_path), "sync", env={"TEST_SCIM_TOKEN": SCIM_TOKEN}
        )
    finally:
        holder.close()

    assert result.returncode == 1
    assert "another connector process is using the state file" in result.stderr
    assert peek.list("Users") == []


def test_state_file_is_private(workspace: Workspace) -> None:
    workspace.students([student("E1", "Åsa", "Öberg")])
    assert workspace.sync().exit_code == 0
    assert workspace.state_path.stat().st_mode & 0o777 == 0o600


def test_demo_config_plan_json_changes_nothing(
    tmp_path: Path, scim_url: str, peek: ScimPeek
) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(REPO / "config" / "demo", demo)
    config = yaml.safe_load((demo / "connector.yaml").read_text(encoding="utf-8"))
    config["vendor"]["base_url"] = scim_url
    config["vendor"]["token"] = SCIM_TOKEN
    config["mapping"] = str(REPO / "mappings" / "default.yaml")
    (demo / "connector.yaml").write_text(
        yaml.safe_dump(config, allow_unicode=True), encoding="utf-8"
    )

    result = run_module("--config", str(demo / "connector.yaml"), "plan", "--json")

    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert sum(op["op"] == "create_user" for op in plan["operations"]) == 13
    assert plan["excluded"] == {"protected identity": 2}
    assert peek.list("Users") == [] and peek.list("Groups") == []
    assert not (demo / "demo-state.db").exists()
