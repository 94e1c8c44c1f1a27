"""Mapping files (`mappings/*.yaml`): neutral people and schools -> desired SCIM objects.

A mapping names the SCIM attributes the connector manages and a safe template for each (see
`connector.mapping.template`). Whatever it does not name is left alone at the vendor. `externalId`
and `active` are not in the file: the connector owns them (the opaque id and the lifecycle).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from connector.config import load_yaml, validation_problems
from connector.errors import ConfigError
from connector.mapping.paths import FREE_TEXT_USER_PATHS
from connector.mapping.template import Template, TemplateError, TemplateSet, compile_template
from connector.mapping.usernames import UsernameNeeded, UsernameRule
from connector.mapping.values import EntitlementsSection, RolesSection, ValueMapping
from connector.people.externalid import contains_personal_identity_number
from connector.people.model import Kind, Person, School, unsafe_text, unsafe_text_screen
from connector.people.phones import normalize_mobile

# SCIM User attributes a mapping may manage, as PATCH paths (RFC 7643 section 4.1): the free
# text ones, the profile URL and the e-mail addresses.
USER_PATHS = (FREE_TEXT_USER_PATHS - {"externalId"}) | {"profileUrl", "emails", "phoneNumbers"}
GROUP_PATHS = frozenset({"displayName"})

USER_FIELDS = frozenset(
    {"given_name", "family_name", "email", "username", "kind", "user_type", "roles", "classes"}
    | {"mobile"}
)
# A mobile number is sent only where the mapping opts in (`mobile_opt_in: true`): for a
# vendor's SMS login. The field is checked as a phone number, not as free text.
MOBILE_FIELD, MOBILE_PATH = "mobile", "phoneNumbers"
GROUP_FIELDS = frozenset({"school_code", "school_name", "school_types"})

# A person's mapped values are checked in one search (100,000+ people per cycle).
_SEPARATOR = "\uffff"
_SCREEN = unsafe_text_screen(_SEPARATOR)


class UnsafeTextError(ValueError):
    """A mapped value fails the text-safety rule: the person is there, only not sendable."""


class _Attribute(BaseModel):
    """An attribute with a template and when it is set: `always` (kept in step) or only on
    `create` (then left to the vendor and its admins: a shortened userName stays)."""

    model_config = ConfigDict(extra="forbid")
    template: str
    on: Literal["create", "always"] = "always"

    @model_validator(mode="before")
    @classmethod
    def _yaml_on(cls, data: Any) -> Any:
        # YAML 1.1 reads the key `on` as the boolean true.
        if isinstance(data, dict) and True in data:
            data = {("on" if k is True else k): v for k, v in data.items()}
        return data


class _GenerateUsername(BaseModel):
    model_config = ConfigDict(extra="forbid")
    template: str
    max_length: int = Field(default=20, ge=3, le=64)  # of the part before the domain
    domain: str = Field(default="", pattern=r"^(@[a-z0-9-]+(\.[a-z0-9-]+)+)?$")
    regenerate_on_rename: bool = False


class _UserSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attributes: dict[str, str | _Attribute]
    # Staff with any of these roles get user_type "teacher"; other staff get "staff".
    teacher_roles: list[str] = Field(default_factory=list)
    email_type: str = "work"
    # For people whose userName template is empty (no e-mail): a generated, unique username.
    generate_username: _GenerateUsername | None = None
    # Only with this may a mobile number ({mobile}, phoneNumbers) be mapped.
    mobile_opt_in: bool = False


class _GroupSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    attributes: dict[str, str]


class _MappingFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: _UserSection
    group: _GroupSection
    roles: RolesSection | None = None  # see mapping/values.py
    entitlements: EntitlementsSection | None = None


class Mapping:
    """A validated, compiled mapping file."""

    def __init__(
        self,
        path: Path,
        user: _UserSection,
        group: _GroupSection,
        values: ValueMapping | None = None,
    ) -> None:
        self.path = path
        self.values = values or ValueMapping(None, None)
        self.email_type = user.email_type
        self._teacher_roles = frozenset(r.casefold() for r in user.teacher_roles)
        problems: list[str] = []
        templates = {
            p: a.template if isinstance(a, _Attribute) else a for p, a in user.attributes.items()
        }
        # Paths set when an account is created and never updated after (nor by drift repair).
        self.create_only = frozenset(
            p for p, a in user.attributes.items() if isinstance(a, _Attribute) and a.on == "create"
        )
        self.user_templates = _compile_section(
            templates, USER_PATHS, USER_FIELDS, "user.attributes", problems
        )
        self.group_templates = _compile_section(
            group.attributes, GROUP_PATHS, GROUP_FIELDS, "group.attributes", problems
        )
        self.username_rule = _username_rule(user.generate_username, problems)
        if "userName" not in user.attributes:
            problems.append("user.attributes.userName: is required")
        if "displayName" not in group.attributes:
            problems.append("group.attributes.displayName: is required")
        if not user.mobile_opt_in:
            problems += _mobile_without_opt_in(self.user_templates)
        if problems:
            raise ConfigError(str(path), problems)
        # Only the fields some template uses are worked out per person (100,000+ per cycle).
        self._user_set = TemplateSet(self.user_templates)
        self._user_fields = self._user_set.fields

    def describe(self) -> str:
        return f"{len(self.user_templates)} user attributes"

    def user_type(self, person: Person) -> str:
        if person.kind is Kind.STUDENT:
            return "student"
        roles = {p.role.casefold() for p in person.placements if p.role}
        return "teacher" if roles & self._teacher_roles else "staff"

    def _context(self, person: Person, used: frozenset[str]) -> dict[str, str | None]:
        context: dict[str, str | None] = {
            "given_name": person.given_name,
            "family_name": person.family_name,
            "email": person.email,
            "username": person.username,
            "kind": person.kind.value,
        }
        if "user_type" in used:
            context["user_type"] = self.user_type(person)
        if "roles" in used:
            context["roles"] = ", ".join(sorted({p.role for p in person.placements if p.role}))
        if "classes" in used:
            context["classes"] = ", ".join(
                sorted({p.class_name for p in person.placements if p.class_name})
            )
        if MOBILE_FIELD in used:
            context[MOBILE_FIELD] = person.mobile
        return context

    def user_attributes(
        self, person: Person, external_id: str, schools: dict[str, School] | None = None
    ) -> dict[str, Any]:
        """The managed attributes for one person. Raises ValueError if userName is empty (or
        UsernameNeeded, where one is to be generated), and UnsafeTextError if a value fails the
        text-safety rule or holds a personnummer (the last guard before the vendor: it checks
        what the templates made, whatever the source checked). `schools` is for mappings that
        write a school's name per person; SCIM ones name it in groups."""
        context = self._context(person, self._user_fields)
        values: dict[str, str] = {}
        for path, rendered in self._user_set.render(context).items():
            value = rendered.strip()
            if value:
                values[path] = value
            elif path == "userName" and self.username_rule is None:
                raise ValueError("userName is empty (is the e-mail or username missing?)")
            # else: an empty optional attribute is simply not managed for this person
        mobile = values.pop(MOBILE_PATH, None)
        if _SCREEN.search(_SEPARATOR + _SEPARATOR.join(values.values())):
            _refuse_unsafe(values)
        if contains_personal_identity_number(_SEPARATOR.join(values.values())):
            raise UnsafeTextError("a value holds what looks like a personnummer")
        attributes: dict[str, Any] = {"externalId": external_id, "active": True, **values}
        if "emails" in values:
            attributes["emails"] = [
                {"value": values["emails"], "type": self.email_type, "primary": True}
            ]
        if self.values:
            attributes.update(self.values.attributes(person, schools))
        if mobile is not None:
            attributes[MOBILE_PATH] = [{"value": _mobile(mobile), "type": "mobile"}]
        if "userName" not in values and self.username_rule is not None:
            raise UsernameNeeded(attributes, self.username_rule.base(context))
        return attributes

    def group_attributes(self, school: School) -> dict[str, Any]:
        context = {
            "school_code": school.code,
            "school_name": school.name,
            "school_types": ", ".join(school.school_types),
        }
        attributes: dict[str, Any] = {"externalId": school.code}
        for path, template in self.group_templates.items():
            value = template.render(context).strip()
            attributes[path] = value or school.code
        return attributes


def _mobile(value: str) -> str:
    try:
        return normalize_mobile(value)
    except ValueError:
        raise UnsafeTextError(f"{MOBILE_PATH} is not a mobile number") from None


def _mobile_without_opt_in(templates: dict[str, Template]) -> list[str]:
    problems = []
    for path, template in templates.items():
        if path == MOBILE_PATH or MOBILE_FIELD in template.fields:
            problems.append(
                f"user.attributes.{path}: a mobile number is sent only with "
                "user.mobile_opt_in: true"
            )
    return problems


def _username_rule(section: _GenerateUsername | None, problems: list[str]) -> UsernameRule | None:
    if section is None:
        return None
    try:
        template = compile_template(section.template, USER_FIELDS - {MOBILE_FIELD})
    except TemplateError as exc:
        problems.append(f"user.generate_username.template: {exc}")
        return None
    return UsernameRule(template, section.max_length, section.domain, section.regenerate_on_rename)


def _refuse_unsafe(values: dict[str, str]) -> None:
    """The rare person the screen found something in: which attribute fails, and why."""
    for path, value in values.items():
        reason = unsafe_text(value)
        if reason is not None:
            raise UnsafeTextError(f"{path} {reason}")


def _compile_section(
    templates: dict[str, str],
    allowed_paths: frozenset[str],
    fields: frozenset[str],
    where: str,
    problems: list[str],
) -> dict[str, Template]:
    compiled = {}
    for path, source in templates.items():
        if path not in allowed_paths:
            if path in ("externalId", "active", "id", "members"):
                problems.append(f"{where}.{path}: is set by the connector and cannot be mapped")
            else:
                problems.append(
                    f"{where}.{path}: not a SCIM attribute the connector can manage "
                    f"(allowed: {', '.join(sorted(allowed_paths))})"
                )
            continue
        try:
            compiled[path] = compile_template(str(source), fields)
        except TemplateError as exc:
            problems.append(f"{where}.{path}: {exc}")
    return compiled


def load_mapping(path: Path) -> Mapping:
    raw = load_yaml(path)
    try:
        parsed = _MappingFile.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(path), validation_problems(exc, _MappingFile)) from None
    values = ValueMapping(parsed.roles, parsed.entitlements)
    return Mapping(path, parsed.user, parsed.group, values)
