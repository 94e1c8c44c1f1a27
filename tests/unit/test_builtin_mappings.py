"""`mapping: builtin:NAME`: the profiles that come with the connector, wherever it is installed;
a path keeps meaning a path (relative to the config file's folder)."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from connector.config import load_config
from connector.config.builtin import BUILTIN_MAPPINGS, EXAMPLE_CONFIG, builtin_names
from connector.errors import ConfigError
from tests.support.paths import REPO

MAPPINGS = REPO / "mappings"


def config(mapping: str, **extra: Any) -> dict[str, Any]:
    return {
        "vendor": {"base_url": "https://scim.vendor.example/v2", "token": "secret-token"},
        "state": {"path": "state.db"},
        "mapping": mapping,
        "external_id": {"key": "id-key"},
        "sources": [
            {
                "name": "students",
                "type": "csv",
                "kind": "student",
                "path": "elever.csv",
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
        **extra,
    }


def write(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / "connector.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_every_profile_in_mappings_is_built_in_with_the_same_content() -> None:
    shipped = sorted(p.stem for p in MAPPINGS.glob("*.yaml"))
    assert shipped == ["default", "egil", "ilt", "ilt-file"]
    assert builtin_names() == shipped
    for name in shipped:
        built_in = BUILTIN_MAPPINGS / f"{name}.yaml"
        assert built_in.read_bytes() == (MAPPINGS / f"{name}.yaml").read_bytes()
    assert EXAMPLE_CONFIG.read_bytes() == (REPO / "config" / "example.yaml").read_bytes()


def matches(name: str, pattern: str) -> bool:
    """setuptools' package-data glob: `*` stays within one folder."""
    path = PurePosixPath(name)
    return len(path.parts) == len(PurePosixPath(pattern).parts) and path.match(pattern)


def test_the_wheel_carries_the_profiles_and_the_example() -> None:
    """pyproject's package data names every file under connector/share (what the wheel holds)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = pyproject["tool"]["setuptools"]["package-data"]["connector"]
    package = REPO / "connector"
    share = package / "share"
    files = [*share.glob("*.yaml"), *share.glob("mappings/*.yaml")]  # rglob stops at a link
    shared = [p.relative_to(package).as_posix() for p in files]
    assert len(shared) == 5
    for name in shared:
        assert any(matches(name, pattern) for pattern in patterns), name


@pytest.mark.parametrize("name", ["default", "ilt", "ilt-file"])
def test_a_builtin_mapping_resolves_to_the_shipped_file(tmp_path: Path, name: str) -> None:
    loaded = load_config(write(tmp_path, config(f"builtin:{name}")))
    mapping = loaded.targets[0].mapping
    assert mapping.is_absolute() and mapping.is_file()
    assert mapping.read_bytes() == (MAPPINGS / f"{name}.yaml").read_bytes()
    assert tmp_path not in mapping.parents  # not taken as a path beside the config


def test_a_file_target_names_a_builtin_mapping_too(tmp_path: Path) -> None:
    target = {
        "name": "ilt",
        "kind": "file",
        "mapping": "builtin:ilt-file",
        "delivery": {"method": "local", "directory": str(tmp_path)},
    }
    data = config("unused")
    del data["vendor"], data["mapping"]
    loaded = load_config(write(tmp_path, {**data, "targets": [target]}))
    assert loaded.targets[0].mapping == BUILTIN_MAPPINGS / "ilt-file.yaml"


def test_paths_keep_working_relative_and_absolute(tmp_path: Path) -> None:
    shutil.copy(MAPPINGS / "default.yaml", tmp_path / "own.yaml")
    relative = load_config(write(tmp_path, config("own.yaml")))
    assert relative.targets[0].mapping == tmp_path.resolve() / "own.yaml"
    absolute = load_config(write(tmp_path, config(str(MAPPINGS / "ilt.yaml"))))
    assert absolute.targets[0].mapping == MAPPINGS / "ilt.yaml"
    # a file of your own called builtin-something is still a path beside the config
    shutil.copy(MAPPINGS / "default.yaml", tmp_path / "builtin-copy.yaml")
    own = load_config(write(tmp_path, config("builtin-copy.yaml")))
    assert own.targets[0].mapping == tmp_path.resolve() / "builtin-copy.yaml"


@pytest.mark.parametrize("name", ["nope", "", "../mappings/default", "default.yaml"])
def test_an_unknown_builtin_names_the_known_ones(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, config(f"builtin:{name}")))
    assert info.value.problems == [
        f"mapping: no built-in mapping {name!r}; the built-in ones are: "
        "builtin:default, builtin:egil, builtin:ilt, builtin:ilt-file"
    ]
