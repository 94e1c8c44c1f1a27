"""Where the connector reads: roster CSV files, the directory (LDAP/AD), SS 12000 APIs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.config.base import _Strict, bearer, secret_value, unpadded
from connector.people.model import Kind

CsvRequired = Literal["given_name", "family_name", "email", "username", "school_unit_code"]
LdapRequired = Literal["given_name", "family_name", "email", "username"]


# A personnummer may be a source's key or join key (neither is ever sent); no other field
# may come from a column or attribute whose name says it holds one: every other field can
# reach a vendor through a mapping template.
NOT_MAPPED_FIELDS = frozenset({"key", "join_key"})
_PERSONNUMMER_NAME = re.compile(
    r"person\W*(nummer|number|nr|id\W*nr)|^p\W*nr$|civic|social\W*security|ssn$|nin$|"
    r"f[öo]delse\W*(nummer|nr)|samordning|personalunique",
    re.IGNORECASE,
)


def refuse_personnummer_fields(fields: object, allowed: frozenset[str]) -> None:
    """Raise ValueError for a mapped field read from a column/attribute named like a
    personnummer (`Personnummer`, `PNR`, `norEduPersonNIN`, `civicNo`)."""
    for name, value in vars(fields).items():
        if name not in allowed and isinstance(value, str) and _PERSONNUMMER_NAME.search(value):
            raise ValueError(
                f"{name}: {value!r} looks like a personnummer, which is never sent to a vendor "
                "(it may only be the key or the join key)"
            )


class CsvColumns(_Strict):
    """Which column (by header name) holds each field. Unused fields stay unset."""

    key: str
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    username: str | None = None
    school_unit_code: str
    school_name: str | None = None
    school_type: str | None = None
    school_year: str | None = None
    class_name: str | None = None
    role: str | None = None
    # A mobile number (sent only where a mapping opts in: `mobile_opt_in`).
    mobile: str | None = None
    # A value present in another source too (a student id, a personnummer) that joins this
    # person with their entry there (see `join:`). Never sent to the vendor.
    join_key: str | None = None

    @model_validator(mode="after")
    def _no_personnummer_in_mapped_fields(self) -> CsvColumns:
        refuse_personnummer_fields(self, NOT_MAPPED_FIELDS)
        return self


class _MarkingConfig(_Strict):
    """Where a source keeps the protected-identity marking and which values mean 'not
    protected'. Fail closed: any other value, an empty one or a missing one means protected."""

    not_protected_values: list[str] = Field(default_factory=list)
    # Only for a source that does not carry the marking at all (e.g. a staff list): its people
    # count as not protected, and every start logs a warning saying so.
    assume_not_protected: bool = False
    _where: ClassVar[str]  # the name of the field that says where the marking is

    @model_validator(mode="after")
    def _where_or_explicit_assumption(self) -> _MarkingConfig:
        where = getattr(self, self._where)
        if self.assume_not_protected:
            if where is not None:
                raise ValueError(f"set either {self._where} or assume_not_protected, not both")
            return self
        if where is None:
            raise ValueError(f"{self._where} is required (or set assume_not_protected: true)")
        if not self.not_protected_values:
            raise ValueError("not_protected_values must list at least one value")
        return self


class ProtectedIdentityConfig(_MarkingConfig):
    """The marking in a CSV file: a column."""

    column: str | None = None
    _where: ClassVar[str] = "column"


class CsvSourceConfig(_Strict):
    type: Literal["csv"]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    path: Path
    kind: Kind
    delimiter: str = Field(default=";", min_length=1, max_length=1)
    encoding: Literal["utf-8", "windows-1252", "auto"] = "utf-8"
    columns: CsvColumns
    protected_identity: ProtectedIdentityConfig
    # A field listed here must be non-empty, or the row is reported and skipped.
    required: list[CsvRequired] = Field(
        default_factory=lambda: list[CsvRequired](["given_name", "family_name", "school_unit_code"])
    )


class LdapAttributes(_Strict):
    """Which LDAP attribute gives each field of a person."""

    # The stable key: entryUUID (OpenLDAP), objectGUID (Active Directory), employeeID...
    key: str
    given_name: str | None = "givenName"
    family_name: str | None = "sn"
    email: str | None = "mail"
    username: str | None = None
    # A (multi-valued) attribute holding school unit codes: one placement per value.
    school_unit_codes: str | None = None
    role: str | None = None
    mobile: str | None = None  # e.g. `mobile`; sent only where a mapping opts in
    join_key: str | None = None

    @model_validator(mode="after")
    def _no_personnummer_in_mapped_fields(self) -> LdapAttributes:
        refuse_personnummer_fields(self, NOT_MAPPED_FIELDS)
        return self


SCHOOL_UNIT_PLACEHOLDER = "{school_unit_code}"


class LdapGroupRule(_Strict):
    """Membership in `group` (a DN, via memberOf) means a placement at a school unit.

    A group with {school_unit_code} in it is a template: one rule per school unit listed under
    `schools:`, each with that code in its group DN (and no school_unit_code of its own).
    """

    group: str = Field(min_length=3)
    school_unit_code: str | None = Field(default=None, pattern=r"^\d{8}$")
    role: str | None = None

    @property
    def is_template(self) -> bool:
        return SCHOOL_UNIT_PLACEHOLDER in self.group

    @model_validator(mode="after")
    def _template_or_school_unit(self) -> LdapGroupRule:
        unknown = sorted(set(re.findall(r"\{[^{}]*\}", self.group)) - {SCHOOL_UNIT_PLACEHOLDER})
        if unknown:
            raise ValueError(
                f"group: {', '.join(unknown)} is not a placeholder; the only one is "
                f"{SCHOOL_UNIT_PLACEHOLDER}"
            )
        if self.is_template and self.school_unit_code is not None:
            raise ValueError(
                f"a group template with {SCHOOL_UNIT_PLACEHOLDER} takes its codes from "
                "`schools:`: leave out school_unit_code"
            )
        if not self.is_template and self.school_unit_code is None:
            raise ValueError(
                f"school_unit_code is required (or a group template with {SCHOOL_UNIT_PLACEHOLDER})"
            )
        return self

    def expand(self, school_codes: Iterable[str]) -> list[LdapGroupRule]:
        """This rule, or for a template one rule per school unit code."""
        if not self.is_template:
            return [self]
        return [
            LdapGroupRule(
                group=self.group.replace(SCHOOL_UNIT_PLACEHOLDER, code),
                school_unit_code=code,
                role=self.role,
            )
            for code in school_codes
        ]


class LdapProtectedIdentityConfig(_MarkingConfig):
    """The marking in the directory: an attribute."""

    attribute: str | None = None
    _where: ClassVar[str] = "attribute"


class LdapSourceConfig(_Strict):
    type: Literal["ldap"]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Kind
    # One or more servers, tried in order: ldap://host[:port] or ldaps://host[:port].
    servers: list[str] = Field(min_length=1)
    start_tls: bool = False
    verify_tls: bool = True
    ca_file: Path | None = None
    bind_dn: str | None = None
    password: SecretStr | None = None
    password_file: Path | None = None
    base_dns: list[str] = Field(min_length=1)
    filter: str = "(objectClass=person)"
    page_size: int = Field(default=500, ge=1, le=100000)
    timeout_seconds: float = Field(default=30.0, gt=0)
    # Active Directory: objectGUID as a UUID, disabled accounts (userAccountControl) left out,
    # ranged retrieval of large multi-valued attributes.
    active_directory: bool = False
    attributes: LdapAttributes
    group_rules: list[LdapGroupRule] = Field(default_factory=list)
    # The duty role of a placement when neither its group rule nor attributes.role gives one
    # (e.g. "Lärare", so that staff placed by group membership count as teachers).
    default_role: str | None = Field(default=None, min_length=1)
    protected_identity: LdapProtectedIdentityConfig
    required: list[LdapRequired] = Field(
        default_factory=lambda: list[LdapRequired](["given_name", "family_name"])
    )

    @field_validator("servers")
    @classmethod
    def _ldap_urls(cls, servers: list[str]) -> list[str]:
        for server in servers:
            if not re.match(r"^ldaps?://[^/\s]+/?$", server):
                raise ValueError(f"{server!r} is not an ldap:// or ldaps:// URL")
        # ldap3 would read a trailing slash as part of the host or port.
        return [server.rstrip("/") for server in servers]

    @field_validator("base_dns")
    @classmethod
    def _whole_dns(cls, base_dns: list[str]) -> list[str]:
        # `base_dns: [OU=Elever,DC=kommun,DC=example]` is a YAML flow list of three items: the
        # DN split at its commas. A lone dc= part beside others is that, never a real base.
        if len(base_dns) > 1 and any(re.fullmatch(r"\s*dc=[^,]*", b, re.I) for b in base_dns):
            parts = ", ".join(repr(b) for b in base_dns)
            raise ValueError(
                f"{parts} look like one DN split at its commas by YAML's [a, b] list syntax: "
                f'quote each DN (base_dns: ["{",".join(b.strip() for b in base_dns)}"])'
            )
        return base_dns

    _password = field_validator("password")(unpadded)

    @model_validator(mode="after")
    def _password_source(self) -> LdapSourceConfig:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set either password or password_file, not both")
        if self.bind_dn is None and (self.password or self.password_file):
            raise ValueError("a password needs a bind_dn")
        if self.start_tls and any(s.startswith("ldaps://") for s in self.servers):
            raise ValueError("start_tls is for ldap:// servers; ldaps:// is already encrypted")
        return self

    def bind_password(self) -> str | None:
        return secret_value(self.password, self.password_file)

    def expanded_group_rules(self, school_codes: Iterable[str]) -> list[LdapGroupRule]:
        """The group rules with each template expanded for these school unit codes."""
        codes = list(school_codes)
        return [expanded for rule in self.group_rules for expanded in rule.expand(codes)]


class Ss12000AuthConfig(_Strict):
    """A static bearer token, or OAuth2 client credentials (the token is cached until it
    expires and renewed on 401)."""

    token: SecretStr | None = None
    token_file: Path | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    scope: str | None = None

    _token = field_validator("token", "client_secret")(bearer)

    @model_validator(mode="after")
    def _one_way(self) -> Ss12000AuthConfig:
        static = self.token is not None or self.token_file is not None
        oauth = self.token_url is not None
        if static == oauth:
            raise ValueError(
                "set either token (or token_file) or token_url with client credentials"
            )
        if oauth and (
            self.client_id is None
            or (self.client_secret is None) == (self.client_secret_file is None)
        ):
            raise ValueError(
                "token_url needs client_id and one of client_secret, client_secret_file"
            )
        return self

    def static_token(self) -> str | None:
        return secret_value(self.token, self.token_file)

    def secret(self) -> str:
        value = secret_value(self.client_secret, self.client_secret_file)
        assert value is not None  # the validator requires one of them
        return value


class Ss12000SourceConfig(_Strict):
    """An SS 12000:2020 API (Edlevo, IST...): persons, enrolments, duties, school units."""

    type: Literal["ss12000"]
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    base_url: str
    auth: Ss12000AuthConfig
    # Enrolments in these school types count (empty: all), e.g. GR, GRS, GY, GYS, VUX, SFI.
    school_types: list[str] = Field(default_factory=list)
    # Duties with these roles count (empty: all), e.g. Lärare, Rektor, Bibliotekarie.
    duty_roles: list[str] = Field(default_factory=list)
    student_email_type: str = "Skola elev"
    staff_email_type: str = "Skola personal"
    # username from eduPersonPrincipalNames, or none
    username: Literal["eppn", "none"] = "eppn"
    # civicNo as the join key with other sources (never sent, never stored).
    join_key: Literal["civicNo"] | None = None
    # Also read class groups (groupType Klass): a student's class at each school unit.
    classes: bool = False
    page_size: int = Field(default=500, ge=1, le=10000)
    timeout_seconds: float = Field(default=30.0, gt=0)
    verify_tls: bool = True
    ca_file: Path | None = None
    # Between full reads, ask only for what changed (meta.modified.after, /deletedEntities).
    incremental: bool = True
    # Checkpoints step back this far, so a change made during a read is never missed.
    checkpoint_overlap_seconds: float = Field(default=300.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")


SourceConfig = Annotated[
    CsvSourceConfig | LdapSourceConfig | Ss12000SourceConfig, Field(discriminator="type")
]
