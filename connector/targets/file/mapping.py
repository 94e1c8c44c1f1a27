"""File mappings (`mappings/ilt-file.yaml`): the columns of a delivered CSV file, each a safe
template over a person and one of their schools.

A person at several schools is one row per school (`rows: per_school`) or one row whose
per-school fields are joined (`rows: joined`). The role column comes from a table: students
get one value, staff the value of their first duty role listed (or a default). A value that
fails the text-safety rule, or cannot be written in the file's encoding, leaves the person
out with an issue - and held, like an unreadable row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connector.config import FileFormatConfig, load_yaml, validation_problems
from connector.errors import ConfigError
from connector.mapping.template import TemplateError, TemplateSet, compile_template
from connector.people.model import Kind, Person, Placement, School, unsafe_text

PERSON_FIELDS = frozenset({"given_name", "family_name", "email", "username", "kind", "role"})
SCHOOL_FIELDS = frozenset(
    {"school_code", "school_name", "school_type", "school_year", "class", "duty_role"}
)
FIELDS = PERSON_FIELDS | SCHOOL_FIELDS
PYTHON_ENCODINGS = {"utf-8": "utf-8", "utf-8-bom": "utf-8", "windows-1252": "cp1252"}


class _Roles(BaseModel):
    model_config = ConfigDict(extra="forbid")
    student: str = "Elev"
    # A staff member's duty role -> the vendor's role; the first of their roles listed wins.
    staff: dict[str, str] = Field(default_factory=dict)
    # For staff with none of the roles listed; empty: such staff are left out (not in scope).
    staff_default: str = ""


class _FileMappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    columns: dict[str, str] = Field(min_length=1)
    # The column that is the account's name at the vendor (unique there).
    username_column: str
    roles: _Roles = Field(default_factory=_Roles)


class FileMapping:
    """A validated, compiled file mapping, for one file format."""

    def __init__(self, path: Path, parsed: _FileMappingFile, file_format: FileFormatConfig):
        self.path = path
        self.columns = list(parsed.columns)
        self.format = file_format
        self._roles = parsed.roles
        self._staff_roles = {k.casefold(): v for k, v in parsed.roles.staff.items()}
        self._encoding = PYTHON_ENCODINGS[file_format.encoding]
        problems = []
        templates = {}
        for column, source in parsed.columns.items():
            try:
                templates[column] = compile_template(str(source), FIELDS)
            except TemplateError as exc:
                problems.append(f"columns.{column}: {exc}")
        if parsed.username_column not in parsed.columns:
            problems.append(f"username_column: {parsed.username_column!r} is not a column")
        if problems:
            raise ConfigError(str(path), problems)
        self.username_column = parsed.username_column
        self._templates = TemplateSet(templates)

    def describe(self) -> str:
        return f"{len(self.columns)} columns, {self.format.rows.replace('_', ' ')}"

    def role(self, person: Person) -> str:
        if person.kind is Kind.STUDENT:
            return self._roles.student
        for placement in person.placements:
            found = self._staff_roles.get((placement.role or "").casefold())
            if found:
                return found
        return self._roles.staff_default

    def user_attributes(
        self, person: Person, external_id: str, schools: dict[str, School] | None = None
    ) -> dict[str, Any]:
        """{externalId, active, userName, rows}: rows are the person's lines of the file.
        Raises ValueError when the person cannot be written (the reason names the column)."""
        role = self.role(person)
        if not role:
            raise ValueError("no role: none of their duty roles is in the role table")
        base: dict[str, str | None] = {
            "given_name": person.given_name,
            "family_name": person.family_name,
            "email": person.email,
            "username": person.username,
            "kind": person.kind.value,
            "role": role,
        }
        schools = schools or {}
        if self.format.rows == "joined":
            contexts = [{**base, **self._joined(person.placements, schools)}]
        else:
            contexts = [{**base, **_school_fields(p, schools)} for p in person.placements]
        # Two duties at one school are one row.
        rows = list(dict.fromkeys(tuple(self._row(context)) for context in contexts))
        username = rows[0][self.columns.index(self.username_column)]
        if not username:
            raise ValueError(f"{self.username_column} is empty (is the e-mail missing?)")
        return {
            "externalId": external_id,
            "active": True,
            "userName": username,
            "rows": [list(row) for row in rows],
        }

    def group_attributes(self, school: School) -> dict[str, Any]:
        """A file has no groups: its rows carry the school."""
        return {"externalId": school.code, "displayName": school.name}

    def _row(self, context: dict[str, str | None]) -> list[str]:
        rendered = self._templates.render(context)
        row = []
        for column in self.columns:
            value = rendered[column].strip()
            reason = unsafe_text(value) if value else None
            if reason is not None:
                raise ValueError(f"{column} {reason}")
            try:
                value.encode(self._encoding)
            except UnicodeEncodeError:
                raise ValueError(f"{column} cannot be written in {self.format.encoding}") from None
            row.append(value)
        return row

    def _joined(
        self, placements: tuple[Placement, ...], schools: dict[str, School]
    ) -> dict[str, str]:
        """The per-school fields of all a person's schools, each joined (in placement order)."""
        each = [_school_fields(p, schools) for p in placements]
        separator = self.format.joined_separator
        return {
            name: separator.join(dict.fromkeys(v for fields in each if (v := fields[name])))
            for name in SCHOOL_FIELDS
        }


def _school_fields(placement: Placement, schools: dict[str, School]) -> dict[str, str]:
    school = schools.get(placement.school_unit_code)
    school_type = placement.school_type or (
        school.school_types[0] if school and school.school_types else ""
    )
    return {
        "school_code": placement.school_unit_code,
        "school_name": school.name if school else placement.school_unit_code,
        "school_type": school_type,
        "school_year": placement.school_year or "",
        "class": placement.class_name or "",
        "duty_role": placement.role or "",
    }


def load_file_mapping(path: Path, file_format: FileFormatConfig) -> FileMapping:
    raw = load_yaml(path)
    try:
        parsed = _FileMappingFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(path), validation_problems(exc, _FileMappingFile)) from None
    return FileMapping(path, parsed, file_format)
