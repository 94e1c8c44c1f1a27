"""The config file's JSON Schema (`connector config schema`): a description for every key, the
same text as config/example.yaml's comments, committed up to date, and it accepts the configs
the connector accepts and refuses misspelt keys (as an editor would, with jsonschema)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from connector.cli import main
from connector.config import Config, VendorConfig
from connector.config.fields import Key, defined_in
from connector.config.schema import SCHEMA_FILE, config_schema, render_schema, undescribed
from tests.fakes.slapd import Slapd
from tests.fakes.ss12000_server import SS12000Server
from tests.support.config_docs import normalised, written_keys
from tests.support.ldap import directory_source
from tests.support.paths import ILT_FILE_MAPPING, REPO
from tests.support.rosters import student
from tests.support.ss12000 import ss12000_source
from tests.support.workspace import Workspace

EXAMPLE = REPO / "config" / "example.yaml"
REGENERATE = "connector config schema --output config/connector.schema.json"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def errors(validator: jsonschema.Draft202012Validator, config: Any) -> list[str]:
    return [
        f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(config)
    ]


# -- one description for every key, one text ------------------------------------------------


def test_every_key_has_a_description() -> None:
    missing = undescribed()
    assert not missing, "\n".join(missing)


def test_every_property_of_the_schema_has_a_description() -> None:
    def properties(node: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
        if isinstance(node, dict):
            for name, value in (node.get("properties") or {}).items():
                yield f"{where}.properties.{name}", value
            for key, value in node.items():
                yield from properties(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from properties(value, f"{where}[{i}]")

    found = list(properties(config_schema(), "#"))
    assert len(found) > 200  # every model's keys, not an empty schema
    bare = [where for where, prop in found if not str(prop.get("description", "")).strip()]
    assert not bare, bare


def test_a_key_without_a_description_is_named_with_where_to_write_it() -> None:
    class Probe(Config):
        extra_setting: int = 1

    (line,) = undescribed(Probe)
    assert line.startswith("extra_setting: no description")
    assert "test_config_schema.py" in line and "docstring" in line


def test_example_yaml_comments_carry_each_keys_description() -> None:
    """Each key the example explains (a comment above or beside it) has its description, word
    for word, in that comment at one place at least; keys without a comment are free."""
    written: dict[tuple[type, str], list[Any]] = {}
    for key in written_keys(EXAMPLE, Config):
        written.setdefault((defined_in(key.model, key.name), key.name), []).append(key)
    assert len(written) > 100
    problems = []
    for (model, name), places in written.items():
        if not any(place.comment.strip() for place in places):
            continue
        description = model.model_fields[name].description or ""
        if not any(normalised(description) in normalised(p.comment) for p in places):
            where = Key(places[0].path, model, name, description).where
            problems.append(
                f"config/example.yaml line {places[0].line} ({places[0].path}): its comment "
                f"must contain the description of {where}, or the description change:\n"
                f"    {' '.join(description.split())}"
            )
    assert not problems, "\n".join(problems)


def test_the_comparison_sees_a_changed_comment(tmp_path: Path) -> None:
    changed = tmp_path / "example.yaml"
    text = EXAMPLE.read_text(encoding="utf-8")
    changed.write_text(text.replace("in flight at once", "on the way at once"), encoding="utf-8")
    wanted = normalised(VendorConfig.model_fields["concurrency"].description or "")

    def comment(file: Path) -> str:
        return next(k.comment for k in written_keys(file, Config) if k.name == "concurrency")

    assert wanted in normalised(comment(EXAMPLE))
    assert wanted not in normalised(comment(changed))


# -- the committed schema ---------------------------------------------------------------------


def test_committed_schema_is_up_to_date() -> None:
    committed = (REPO / SCHEMA_FILE).read_text(encoding="utf-8")
    assert committed == render_schema(), f"{SCHEMA_FILE} is out of date: run `{REGENERATE}`"


def test_example_yaml_points_editors_at_the_schema() -> None:
    first = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=./connector.schema.json"
    assert (EXAMPLE.parent / "connector.schema.json").is_file()


def test_config_schema_command_prints_and_writes_it(tmp_path: Path) -> None:
    printed = CliRunner().invoke(main, ["config", "schema"])
    assert printed.exit_code == 0
    assert json.loads(printed.stdout)["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert printed.stdout == render_schema()

    out = tmp_path / "connector.schema.json"
    written = CliRunner().invoke(main, ["config", "schema", "--output", str(out)])
    assert written.exit_code == 0 and written.stdout == ""
    assert out.read_text(encoding="utf-8") == render_schema()


# -- what it accepts and refuses --------------------------------------------------------------


def test_the_example_config_is_valid(validator: jsonschema.Draft202012Validator) -> None:
    assert errors(validator, yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))) == []


def configs_the_tests_write(root: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """Configs as the tests write them: a roster and staff list to one vendor, a directory
    and an SS 12000 API beside them, a file target and a SCIM target."""
    space = Workspace(root, "http://127.0.0.1:9/scim/v2")
    space.students([student("E1", "Åsa", "Berg", "11111111")])
    yield "rosters, vendor:", space.config()
    space.staff([])
    slapd = cast(
        Slapd,
        SimpleNamespace(
            url="ldap://127.0.0.1:3890",
            service_dn="cn=svc,dc=x",
            service_password="pw",
            suffix="dc=x",
        ),
    )
    server = cast(
        SS12000Server,
        SimpleNamespace(
            base_url="http://127.0.0.1:9/ss12000",
            token_url="http://127.0.0.1:9/token",
            client_id="connector",
        ),
    )
    space.extra_sources = [
        directory_source(slapd, group_rules=[{"group": "cn=x,dc=x", "school_unit_code": "1" * 8}]),
        ss12000_source(server, incremental=False),
    ]
    space.overrides = {"schools": [{"code": "11111111", "name": "Ekeby skola"}]}
    yield "staff, directory, SS 12000", space.config()
    config = space.config()
    del config["vendor"], config["mapping"]
    config["targets"] = [
        {
            "name": "ilt",
            "kind": "file",
            "mapping": str(ILT_FILE_MAPPING),
            "delivery": {"method": "sftp", "host": "h", "username": "u"}
            | {"private_key_file": "k", "known_hosts_file": "kh"},
            "format": {"rows": "joined"},
            "archive": {"directory": "archive"},
        },
        {"name": "scim", "base_url": "https://v.example/v2", "token": "${T}", "mapping": "m"},
    ]
    yield "targets: file and scim", config


def test_configs_the_tests_write_are_valid(
    tmp_path: Path, validator: jsonschema.Draft202012Validator
) -> None:
    for label, config in configs_the_tests_write(tmp_path):
        assert errors(validator, config) == [], label
        Config.model_validate({**config})  # the connector takes them too (without ${...})


@pytest.mark.parametrize(
    ("change", "unexpected"),
    [
        (lambda c: c["daemon"].update(intervall_seconds=5), "intervall_seconds"),
        (lambda c: c.update(deamon={}), "deamon"),
        (lambda c: c["targets"][0].update(base_ur="https://x"), "base_ur"),
        (lambda c: c["sources"][0]["columns"].update(klass="Klass"), "klass"),
        # an LDAP source's keys are not a CSV source's: the union is by `type:`
        (lambda c: c["sources"][1].update(path="x.csv"), "path"),
    ],
    ids=["nested", "top level", "in a target", "in a list item's section", "other union member"],
)
def test_the_schema_refuses_a_misspelt_or_misplaced_key(
    validator: jsonschema.Draft202012Validator, change: Any, unexpected: str
) -> None:
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    change(config)
    assert any(unexpected in e for e in errors(validator, config))


def test_the_schema_refuses_an_unknown_kind(validator: jsonschema.Draft202012Validator) -> None:
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config["targets"][0]["kind"] = "scm"
    assert errors(validator, config)
    targets = config_schema()["properties"]["targets"]["items"]
    assert targets["discriminator"]["propertyName"] == "kind"
    assert len(targets["oneOf"]) == 3
