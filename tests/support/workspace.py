"""A test's own folder: a config, rosters and the state file, and the CLI run on them in process.

The config it writes is a real connector config (CSV rosters, the default mapping, the test
SCIM server); a test changes it through `overrides`, `extra_sources` and the roster methods.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from connector.cli import main
from connector.config import StateConfig
from tests.support.cli import CliResult
from tests.support.ids import ID_KEY
from tests.support.paths import DEFAULT_MAPPING
from tests.support.rosters import STAFF_HEADER, STUDENT_HEADER, write_csv
from tests.support.scim import SCIM_TOKEN

# A bound, so a connector that never settles fails its test instead of syncing on and on.
MAX_CYCLES = 16


class Workspace:
    """A folder holding a config, rosters and the state file for one test."""

    def __init__(self, root: Path, scim_url: str) -> None:
        self.root = root
        self.scim_url = scim_url
        self.students_csv = root / "students.csv"
        self.staff_csv = root / "staff.csv"
        self.state_path = root / "state.db"
        # PostgreSQL instead of the file (use_postgres); its password from the environment.
        self.state_url: str | None = None
        self.config_path = root / "connector.yaml"
        self.student_encoding = "utf-8"
        self.staff_enabled = False
        self.students_enabled = False
        self.extra_sources: list[dict[str, Any]] = []
        self.student_columns: dict[str, str] = {}
        self.student_required = ["given_name", "family_name", "email", "school_unit_code"]
        self.overrides: dict[str, Any] = {}
        self.environment: dict[str, str] = {"TEST_SCIM_TOKEN": SCIM_TOKEN}

    def students(self, rows: list[list[str]], **kwargs: Any) -> None:
        self.students_enabled = True
        write_csv(self.students_csv, STUDENT_HEADER, rows, **kwargs)

    def staff(self, rows: list[list[str]]) -> None:
        self.staff_enabled = True
        write_csv(self.staff_csv, STAFF_HEADER, rows)

    def config(self) -> dict[str, Any]:
        sources: list[dict[str, Any]] = []
        if self.students_enabled:
            sources.append(
                {
                    "name": "students",
                    "type": "csv",
                    "kind": "student",
                    "path": str(self.students_csv),
                    "encoding": self.student_encoding,
                    "columns": {
                        "key": "Elev-ID",
                        "given_name": "Förnamn",
                        "family_name": "Efternamn",
                        "email": "E-post",
                        "school_unit_code": "Skolenhetskod",
                        "school_name": "Skola",
                        "school_type": "Skolform",
                        "school_year": "Årskurs",
                        "class_name": "Klass",
                        **self.student_columns,
                    },
                    "protected_identity": {"column": "Skyddad", "not_protected_values": ["Nej"]},
                    "required": self.student_required,
                }
            )
        if self.staff_enabled:
            sources.append(
                {
                    "name": "staff",
                    "type": "csv",
                    "kind": "staff",
                    "path": str(self.staff_csv),
                    "columns": {
                        "key": "Personal-ID",
                        "given_name": "Förnamn",
                        "family_name": "Efternamn",
                        "email": "E-post",
                        "school_unit_code": "Skolenhetskod",
                        "role": "Befattning",
                    },
                    "protected_identity": {"column": "Skyddad", "not_protected_values": ["Nej"]},
                }
            )
        sources += self.extra_sources
        config: dict[str, Any] = {
            "vendor": {"base_url": self.scim_url, "token": "${TEST_SCIM_TOKEN}", "max_retries": 1},
            "state": self.state_settings(),
            "mapping": str(DEFAULT_MAPPING),
            "external_id": {"key": ID_KEY},
            "sources": sources,
            "logging": {"format": "json", "level": "info"},
            # The tests' rosters are tiny: one leaver of three would trip the shrinking-source
            # check, which has tests of its own (tests/integration/test_safety.py).
            "safety": {"min_source_percent": 0},
        }
        config.update(self.overrides)
        return config

    def use_postgres(self, url: str, password: str) -> None:
        self.state_url = url
        self.environment["TEST_PG_PASSWORD"] = password

    def state_settings(self) -> dict[str, Any]:
        if self.state_url is None:
            return {"path": str(self.state_path)}
        return {"url": self.state_url, "password": "${TEST_PG_PASSWORD}"}

    def state_config(self) -> StateConfig:
        """Where this workspace's state is, as the connector is given it."""
        if self.state_url is None:
            return StateConfig.model_validate({"path": self.state_path})
        password = self.environment["TEST_PG_PASSWORD"]
        return StateConfig.model_validate({"url": self.state_url, "password": password})

    def write_config(self) -> Path:
        self.config_path.write_text(
            yaml.safe_dump(self.config(), allow_unicode=True), encoding="utf-8"
        )
        return self.config_path

    def run(self, *args: str, config: bool = True) -> CliResult:
        if config:
            self.write_config()
        prefix = ["--config", str(self.config_path)] if config else []
        runner = CliRunner()
        result = runner.invoke(main, [*prefix, *args], env=self.environment, catch_exceptions=False)
        return CliResult(result.exit_code, result.stdout, result.stderr)

    def sync(self) -> CliResult:
        return self.run("sync")


def cycles_until_clean(workspace: Workspace) -> list[CliResult]:
    """Sync until a cycle ends clean (exit 0), at most MAX_CYCLES times; every result."""
    results = []
    for _ in range(MAX_CYCLES):
        result = workspace.sync()
        results.append(result)
        assert result.exit_code in (0, 1), result.stdout + result.stderr
        if result.exit_code == 0:
            break
    return results
