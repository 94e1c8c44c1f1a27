"""Helpers for the tests: write rosters and configs, run the CLI, look at the SCIM server."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml
from click.testing import CliRunner

from connector.cli import main

SCIM_TOKEN = "test-token-7f3a9c"
ID_KEY = "test-id-key-2b8d41"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_MAPPING = REPO / "mappings" / "default.yaml"

STUDENT_HEADER = [
    "Elev-ID",
    "Förnamn",
    "Efternamn",
    "E-post",
    "Skolenhetskod",
    "Skola",
    "Skolform",
    "Årskurs",
    "Klass",
    "Skyddad",
]
STAFF_HEADER = [
    "Personal-ID",
    "Förnamn",
    "Efternamn",
    "E-post",
    "Skolenhetskod",
    "Befattning",
    "Skyddad",
]


def student(
    key: str,
    given: str,
    family: str,
    school: str = "11111111",
    *,
    marking: str = "Nej",
    email: str | None = None,
    school_name: str | None = None,
    school_type: str = "GR",
    year: str = "7",
    klass: str = "7A",
) -> list[str]:
    email = email if email is not None else f"{key.lower()}@edu.example.se"
    return [
        key,
        given,
        family,
        email,
        school,
        school_name or f"Skola {school}",
        school_type,
        year,
        klass,
        marking,
    ]


def staff(
    key: str,
    given: str,
    family: str,
    school: str = "11111111",
    role: str = "Lärare",
    *,
    marking: str = "Nej",
    email: str | None = None,
) -> list[str]:
    email = email if email is not None else f"{key.lower()}@edu.example.se"
    return [key, given, family, email, school, role, marking]


def write_csv(
    path: Path,
    header: list[str],
    rows: list[list[str]],
    *,
    encoding: str = "utf-8",
    delimiter: str = ";",
    bom: bool = False,
) -> Path:
    lines = [delimiter.join(header), *(delimiter.join(r) for r in rows)]
    data = ("\r\n".join(lines) + "\r\n").encode(encoding)
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    return path


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def log_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr.splitlines() if line.startswith("{")]

    def event(self, name: str) -> dict[str, Any]:
        """The last log event with this name."""
        matching = [e for e in self.log_events() if e.get("event") == name]
        assert matching, f"no {name} event in the log:\n{self.stderr}"
        return matching[-1]


class Workspace:
    """A folder holding a config, rosters and the state file for one test."""

    def __init__(self, root: Path, scim_url: str) -> None:
        self.root = root
        self.scim_url = scim_url
        self.students_csv = root / "students.csv"
        self.staff_csv = root / "staff.csv"
        self.state_path = root / "state.db"
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
            "state": {"path": str(self.state_path)},
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


class ScimPeek:
    """Reads (and, to set up a scene, writes) the SCIM server directly, bypassing the connector."""

    def __init__(self, base_url: str) -> None:
        self._http = httpx.Client(
            base_url=base_url + "/", headers={"Authorization": f"Bearer {SCIM_TOKEN}"}, timeout=30
        )

    def __enter__(self) -> ScimPeek:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def list(self, resource_type: str) -> list[dict[str, Any]]:
        response = self._http.get(resource_type, params={"count": 10000})
        response.raise_for_status()
        return list(response.json().get("Resources") or [])

    def users(self) -> dict[str, dict[str, Any]]:
        """Users by userName."""
        return {u["userName"]: u for u in self.list("Users")}

    def groups(self) -> dict[str, dict[str, Any]]:
        """Groups by externalId (the school unit code)."""
        return {g.get("externalId") or g["displayName"]: g for g in self.list("Groups")}

    def member_names(self, group: dict[str, Any]) -> set[str]:
        names = {u["id"]: u["userName"] for u in self.list("Users")}
        return {names.get(m["value"], m["value"]) for m in group.get("members") or []}

    def create_user(self, payload: dict[str, Any]) -> dict[str, Any]:
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], **payload}
        response = self._http.post(
            "Users", json=body, headers={"Content-Type": "application/scim+json"}
        )
        response.raise_for_status()
        return response.json()


def no_patch_service_provider_config(path: Path) -> Path:
    """A ServiceProviderConfig announcing that PATCH is not supported."""
    path.write_text(
        json.dumps(
            {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
                "patch": {"supported": False},
                "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
                "filter": {"supported": True, "maxResults": 1000},
                "changePassword": {"supported": False},
                "sort": {"supported": True},
                "etag": {"supported": True},
                "authenticationSchemes": [],
            }
        ),
        encoding="utf-8",
    )
    return path
