"""Where the connector reads: roster CSV files, the directory (LDAP/AD), SS 12000 APIs."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.config.base import _Strict, secret_value, unpadded
from connector.config.ss12000 import Ss12000SourceConfig
from connector.config.study_groups import LdapStudyGroupsConfig
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


def regular_expression(value: str | None) -> str | None:
    """A field validator: the value compiles as a Python regular expression."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
    return value


class CsvColumns(_Strict):
    """Which column (by header name) holds each field. Unused fields stay unset."""

    key: str
    """Required: a stable id for the person in this system."""
    given_name: str | None = None
    """The given name (förnamn)."""
    family_name: str | None = None
    """The family name (efternamn)."""
    email: str | None = None
    """The e-mail address."""
    username: str | None = None
    """The username at the vendor, if the file has one."""
    school_unit_code: str
    """Required: the 8-digit skolenhetskod (school unit code)."""
    school_name: str | None = None
    """The school's name."""
    school_type: str | None = None
    """The school type (skolform): GR, GRS, GY, GYS, VUX, SFI..."""
    school_year: str | None = None
    """The school year (årskurs)."""
    class_name: str | None = None
    """The class (klass)."""
    role: str | None = None
    """For staff files: the duty role (Lärare, Rektor...)."""
    mobile: str | None = None
    """A mobile number, E.164 or Swedish (070-...); an invalid one skips the row. Sent only
    where a mapping opts in (mobile_opt_in)."""
    join_key: str | None = None
    """A value present in another source too (a student id, a personnummer) that joins this
    person with their entry there (see `join:`). Never sent to the vendor."""
    groups: str | None = None
    """Teaching groups (undervisningsgrupper) at the row's school unit, several in one cell
    split by group_separator ("MA7B,EN7B"): for students the groups they are in, for staff the
    groups they teach. A name matching class_pattern is a class (Klass) instead. With several
    placements, each row's groups belong to that row's school unit."""
    classes: str | None = None
    """Classes (klasser) at the row's school unit, split by group_separator: for staff the
    classes they teach (for students their class is class_name; this adds others)."""

    @model_validator(mode="after")
    def _no_personnummer_in_mapped_fields(self) -> CsvColumns:
        refuse_personnummer_fields(self, NOT_MAPPED_FIELDS)
        return self


class _MarkingConfig(_Strict):
    """Where a source keeps the protected-identity marking and which values mean 'not
    protected'. Fail closed: any other value, an empty one or a missing one means protected."""

    not_protected_values: list[str] = Field(default_factory=list)
    """The values that mean "not protected", compared ignoring case and surrounding spaces."""
    assume_not_protected: bool = False
    """Only for a source that does not carry the marking at all, such as a staff list taken
    from HR: its people count as not protected, and every run logs a warning saying so."""
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
    """The column holding the marking. An empty cell or any value not listed in
    not_protected_values means protected."""
    _where: ClassVar[str] = "column"


class CsvSourceConfig(_Strict):
    """A student information system's roster export (Adela, Procapita/Edlevo, IST Extens...):
    one row per placement; a person at two schools appears on two rows."""

    type: Literal["csv"]
    """csv: a roster CSV file."""
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """A short name used in logs (letters, digits, . _ -)."""
    path: Path
    """The CSV file."""
    kind: Kind
    """student | staff: what the people in this source are."""
    delimiter: str = Field(default=";", min_length=1, max_length=1)
    """One character: ; or , or a tab ("\\t")."""
    encoding: Literal["utf-8", "windows-1252", "auto"] = "utf-8"
    """utf-8 (with or without BOM) | windows-1252 | auto (a header with letters beyond ASCII
    decides; otherwise utf-8 unless most lines with such letters are not valid UTF-8). Rows
    the encoding cannot read, and values that look like UTF-8 read as Windows-1252 ("Ã¥"),
    are reported by line and skipped."""
    columns: CsvColumns
    """The header name of the column holding each field. Leave a field out if the file lacks
    it."""
    protected_identity: ProtectedIdentityConfig
    """Protected identity (skyddad identitet). Fail closed: a person is treated as protected
    (never sent anywhere) unless this column holds one of the values below. An empty cell or
    any other value means protected. A file without this column, or with it empty in every
    row, fails the source: nothing is sent or taken away for anyone in it."""
    required: list[CsvRequired] = Field(
        default_factory=lambda: list[CsvRequired](["given_name", "family_name", "school_unit_code"])
    )
    """Fields that must be non-empty; a row missing one is reported (file and line) and
    skipped."""
    group_separator: str = Field(default=",", min_length=1, max_length=5)
    """What separates the group names in the columns groups and classes (default ",")."""
    class_pattern: str | None = None
    """A regular expression: a name in the groups column that it matches as a whole (e.g.
    "[0-9][A-Z]" for 7B) is a class (Klass), not a teaching group (Undervisning)."""

    _class_pattern = field_validator("class_pattern")(regular_expression)


class LdapAttributes(_Strict):
    """Which LDAP attribute gives each field of a person."""

    key: str
    """The stable key: entryUUID (OpenLDAP), objectGUID (Active Directory), employeeID..."""
    given_name: str | None = "givenName"
    """The given name."""
    family_name: str | None = "sn"
    """The family name."""
    email: str | None = "mail"
    """The e-mail address."""
    username: str | None = None
    """The username at the vendor (userPrincipalName, uid...)."""
    school_unit_codes: str | None = None
    """A (multi-valued) attribute holding school unit codes: one placement per value."""
    role: str | None = None
    """The duty role of the person's placements (title...)."""
    mobile: str | None = None
    """A mobile number (e.g. mobile); sent only where a mapping opts in."""
    join_key: str | None = None
    """A value present in another source too (a student id) that joins this person with their
    entry there (see `join:`). Never sent to the vendor."""

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
    """The group's DN; with {school_unit_code} in it, a template: one group per school unit
    under `schools:`."""
    school_unit_code: str | None = Field(default=None, pattern=r"^\d{8}$")
    """The school unit (8 digits) a member is placed at; required unless the group is a
    template."""
    role: str | None = None
    """The duty role of that placement (Lärare, Rektor...)."""

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
    """The attribute holding the marking. A missing or empty one, or any value not listed in
    not_protected_values, means protected."""
    _where: ClassVar[str] = "attribute"


class LdapSourceConfig(_Strict):
    """The municipal directory (Active Directory or OpenLDAP)."""

    type: Literal["ldap"]
    """ldap: a directory (Active Directory or OpenLDAP)."""
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """A short name used in logs (letters, digits, . _ -)."""
    kind: Kind
    """student | staff: what the people in this source are."""
    servers: list[str] = Field(min_length=1)
    """Tried in order until one answers. ldaps:// (TLS from the start) or ldap:// (+
    start_tls)."""
    start_tls: bool = False
    """Upgrade an ldap:// connection to TLS (StartTLS)."""
    verify_tls: bool = True
    """Verify the directory's TLS certificate: leave on; a CA file if the directory's CA is
    private."""
    ca_file: Path | None = None
    """A CA bundle to verify the directory with, if it is not signed by a public CA."""
    bind_dn: str | None = None
    """The DN to bind as (a service account); unset: an anonymous bind."""
    password: SecretStr | None = None
    """The bind password (or password_file)."""
    password_file: Path | None = None
    """A file holding the bind password (systemd LoadCredential, a Kubernetes secret)."""
    base_dns: list[str] = Field(min_length=1)
    """One or more subtrees to read."""
    filter: str = "(objectClass=person)"
    """The LDAP search filter for the people to read."""
    page_size: int = Field(default=500, ge=1, le=100000)
    """Paged search: directories larger than the server's size limit are read whole."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Seconds to wait for the directory before the read fails."""
    active_directory: bool = False
    """objectGUID read as a UUID, disabled accounts (userAccountControl) counted as not
    present, large multi-valued attributes fetched in ranges."""
    attributes: LdapAttributes
    """Which attribute gives each field. Leave out what the directory does not hold."""
    group_rules: list[LdapGroupRule] = Field(default_factory=list)
    """Placements from group membership (memberOf): being in `group` means a placement at the
    school unit, with the role given."""
    study_groups: LdapStudyGroupsConfig | None = None
    """Classes and teaching groups (for an EGIL target's StudentGroups and Activities): group
    entries found by a search whose names a pattern reads, members by DN, as EgilSCIM does."""
    default_role: str | None = Field(default=None, min_length=1)
    """The duty role of a placement when neither its group rule nor attributes.role gives
    one."""
    protected_identity: LdapProtectedIdentityConfig
    """Protected identity (skyddad identitet): an attribute and the values that mean "not
    protected" (fail closed), or assume_not_protected for a directory that carries no
    marking."""
    required: list[LdapRequired] = Field(
        default_factory=lambda: list[LdapRequired](["given_name", "family_name"])
    )
    """Attributes that must be present, or the entry is reported (by DN) and skipped."""

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


SourceConfig = Annotated[
    CsvSourceConfig | LdapSourceConfig | Ss12000SourceConfig, Field(discriminator="type")
]
