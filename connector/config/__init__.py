"""The YAML configuration as typed models.

`${NAME}` anywhere in a string value is replaced by the environment variable NAME; secrets can
instead come from a file (`token_file:`, `key_file:`), which is how systemd credentials and
Kubernetes secrets arrive. Relative paths are resolved against the config file's folder, so a
config and its data can move together. Every problem is reported with the key it concerns.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from connector.errors import ConfigError
from connector.people.model import Kind

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class _Strict(BaseModel):
    # A misspelt key is an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid", frozen=True)


def _read_secret_file(path: Path) -> SecretStr:
    return SecretStr(path.read_text(encoding="utf-8").strip())


_BEARER_TOKEN = re.compile(r"[\x21-\x7e]+")
BEARER_RULE = "must be printable ASCII without spaces or line breaks (a bearer token)"


def _bearer(value: SecretStr | None) -> SecretStr | None:
    """A token goes into an HTTP header: anything else fails there, far from its cause."""
    if value is not None and not _BEARER_TOKEN.fullmatch(value.get_secret_value()):
        raise ValueError(BEARER_RULE)
    return value


def _unpadded(value: SecretStr | None) -> SecretStr | None:
    """Spaces or a line break around a key or password are a copy-and-paste accident."""
    if value is not None and value.get_secret_value() != value.get_secret_value().strip():
        raise ValueError("has spaces or line breaks around it")
    return value


class VendorConfig(_Strict):
    base_url: str = Field(description="SCIM base URL, e.g. https://scim.vendor.example/v2")
    token: SecretStr | None = None
    token_file: Path | None = None
    timeout_seconds: float = Field(default=30.0, gt=0)
    verify_tls: bool = True
    ca_file: Path | None = None
    concurrency: int = Field(default=4, ge=1, le=64)
    member_chunk_size: int = Field(default=100, ge=1, le=1000)
    max_retries: int = Field(default=4, ge=0, le=20)
    # Requests per second at most (0: no limit). Protects the vendor.
    rate_limit: float = Field(default=0.0, ge=0)
    # SCIM Bulk (RFC 7644 section 3.7), used only if the vendor also advertises it: creates,
    # updates, deactivations, deletions and membership changes go in batches of at most
    # this many operations (and the vendor's own maxOperations and maxPayloadSize).
    bulk: bool = False
    bulk_max_operations: int = Field(default=100, ge=1, le=10_000)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    _token = field_validator("token")(_bearer)

    @model_validator(mode="after")
    def _one_token_source(self) -> VendorConfig:
        if self.token is not None and self.token_file is not None:
            raise ValueError("set either token or token_file, not both")
        return self

    def bearer_token(self) -> str | None:
        if self.token_file is not None:
            return _read_secret_file(self.token_file).get_secret_value()
        return self.token.get_secret_value() if self.token is not None else None


class ExternalIdConfig(_Strict):
    """How the vendor's externalId is derived from a person's source key.

    `hmac` (the default) sends HMAC-SHA256(key, source key): stable, opaque, and impossible to
    turn back into a student id or personal identity number without the key. `source_key`
    sends the key as is and is refused for values that look like personal identity numbers.
    """

    mode: Literal["hmac", "source_key"] = "hmac"
    key: SecretStr | None = None
    key_file: Path | None = None

    _key = field_validator("key")(_unpadded)

    @model_validator(mode="after")
    def _key_for_hmac(self) -> ExternalIdConfig:
        if self.key is not None and self.key_file is not None:
            raise ValueError("set either key or key_file, not both")
        if self.mode == "hmac" and self.key is None and self.key_file is None:
            raise ValueError("mode hmac needs a secret key (key or key_file)")
        return self

    def secret(self) -> bytes:
        if self.key_file is not None:
            return _read_secret_file(self.key_file).get_secret_value().encode()
        assert self.key is not None
        return self.key.get_secret_value().encode()


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
    # A value present in another source too (a student id, a personnummer) that joins this
    # person with their entry there (see `join:`). Never sent to the vendor.
    join_key: str | None = None


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
    required: list[
        Literal["given_name", "family_name", "email", "username", "school_unit_code"]
    ] = Field(default_factory=lambda: ["given_name", "family_name", "school_unit_code"])


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
    join_key: str | None = None


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
    required: list[Literal["given_name", "family_name", "email", "username"]] = Field(
        default_factory=lambda: ["given_name", "family_name"]
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

    _password = field_validator("password")(_unpadded)

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
        if self.password_file is not None:
            return _read_secret_file(self.password_file).get_secret_value()
        return self.password.get_secret_value() if self.password is not None else None

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

    _token = field_validator("token", "client_secret")(_bearer)

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
        if self.token_file is not None:
            return _read_secret_file(self.token_file).get_secret_value()
        return self.token.get_secret_value() if self.token is not None else None

    def secret(self) -> str:
        if self.client_secret_file is not None:
            return _read_secret_file(self.client_secret_file).get_secret_value()
        assert self.client_secret is not None
        return self.client_secret.get_secret_value()


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

JoinField = Literal["given_name", "family_name", "email", "username"]


class JoinConfig(_Strict):
    """Merge the same person's entries in several sources by a shared join key.

    Names, e-mail and username come from the first listed source that has a value (override
    per field with `prefer`); placements are the union; protected if any source says so.
    """

    sources: list[str] = Field(min_length=2)
    prefer: dict[JoinField, list[str]] = Field(default_factory=dict)
    # A person found in only some of the joined sources: "use" them as they are, or "skip"
    # (and report). Per source name; a source not listed here skips.
    unmatched: dict[str, Literal["use", "skip"]] = Field(default_factory=dict)


class SchoolConfig(_Strict):
    code: str = Field(pattern=r"^\d{8}$")
    name: str = Field(min_length=1)
    school_types: list[str] = Field(default_factory=list)


class ScopeConfig(_Strict):
    """Which placements count. An empty list means 'all'."""

    school_types: list[str] = Field(default_factory=list)
    school_units: list[str] = Field(default_factory=list)
    staff_roles: list[str] = Field(default_factory=list)


_MONTH_DAY = r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class RolloverHoldConfig(_Strict):
    """A yearly window (MM-DD to MM-DD, inclusive, Swedish local time) around the school-year
    rollover in which deactivations and deletions caused by missing placements are held back."""

    start: str = Field(pattern=_MONTH_DAY)
    end: str = Field(pattern=_MONTH_DAY)


class LifecycleConfig(_Strict):
    # Delete an account the connector created this many days after it was deactivated.
    delete_after_days: int = Field(default=90, ge=0)
    # False: never delete anything; leavers stay deactivated.
    delete_accounts: bool = True
    # A person who became protected: delete the account the connector created, or only
    # deactivate it and remove all memberships. Linked (not created) accounts are deactivated.
    protected_policy: Literal["delete", "deactivate"] = "delete"
    # Delete a school's group (one the connector created) once nobody in scope is left in it.
    delete_empty_groups: bool = False
    rollover_hold: RolloverHoldConfig | None = None


class ReconcileConfig(_Strict):
    # A full reconcile reads the vendor's real state and repairs drift. It runs when the last
    # one is older than this many hours (0: every cycle), or on `sync --full`.
    full_every_hours: float = Field(default=24.0, ge=0)
    # Resources per page when listing the vendor's users and groups.
    page_size: int = Field(default=200, ge=1, le=10000)


class Limit(_Strict):
    """Trips when a cycle would exceed both the count and the percentage."""

    count: int = Field(ge=0)
    percent: float = Field(ge=0, le=100)


class SafetyConfig(_Strict):
    """Thresholds and source health, on by default.

    A tripped deprovisioning limit holds back all deprovisioning of the cycle (creates and
    updates still go); a tripped update limit holds back the updates; a jump in newly protected
    persons holds back everything about them. Each until `connector approve` (or, for
    deprovisioning, `sync --allow-deprovision`). Percentages are of what the connector manages
    (its users, or its memberships).
    """

    max_deactivations: Limit = Field(default_factory=lambda: Limit(count=50, percent=5))
    max_deletions: Limit = Field(default_factory=lambda: Limit(count=50, percent=5))
    max_membership_removals: Limit = Field(default_factory=lambda: Limit(count=200, percent=5))
    # Updates of accounts and groups in one cycle (a mapping edit can rewrite every account).
    max_updates: Limit = Field(default_factory=lambda: Limit(count=500, percent=10))
    # Persons with an account who are newly marked protected in one cycle. Below the limit
    # they are taken off the vendor at once; above it the marking itself is suspect (an export
    # that changed its values), so nothing is sent about them until approved.
    max_newly_protected: Limit = Field(default_factory=lambda: Limit(count=10, percent=2))
    # A source that returns fewer people than this share of its last good read is unhealthy:
    # no deprovisioning is derived from it in that cycle.
    min_source_percent: float = Field(default=80.0, ge=0, le=100)
    # A source with more than this share of its records skipped as unreadable (a wrong
    # encoding or delimiter, a broken export) fails: nothing is sent or taken away for the
    # people in it.
    max_skipped_percent: float = Field(default=50.0, ge=0, le=100)
    # Objects that keep failing at the vendor wait this long before the next try, doubling
    # with each failure, up to max_retry_delay_seconds.
    retry_delay_seconds: float = Field(default=60.0, ge=0)
    max_retry_delay_seconds: float = Field(default=6 * 3600.0, ge=0)
    # After this many cycles in a row in which the vendor failed, the connector is degraded:
    # it says so (status, metrics, /readyz) and slows its cycles down.
    degraded_after_cycles: int = Field(default=3, ge=1)


class DaemonConfig(_Strict):
    """`connector run`: an incremental cycle every interval, a full reconcile on a schedule."""

    interval_seconds: float = Field(default=300.0, ge=1)
    # Crontab syntax (minute hour day month weekday), in `timezone`.
    full_reconcile_cron: str = "0 2 * * *"
    timezone: str = "Europe/Stockholm"
    # Reload when the config or mapping file changes (checked while no cycle runs).
    watch_files: bool = True
    # On SIGTERM: how long to wait for the request in flight before giving up.
    shutdown_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("full_reconcile_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a crontab expression ({exc})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class HealthConfig(_Strict):
    """/healthz, /readyz and /metrics over HTTP. Off unless `listen` is set."""

    listen: str | None = Field(default=None, pattern=r"^[^:\s]+:\d{1,5}$")  # host:port
    # /readyz fails when the last successful cycle is older than this.
    ready_max_age_seconds: float = Field(default=1800.0, gt=0)


class LoggingConfig(_Strict):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class StateConfig(_Strict):
    path: Path


class Config(_Strict):
    vendor: VendorConfig
    state: StateConfig
    mapping: Path
    external_id: ExternalIdConfig
    sources: list[SourceConfig] = Field(min_length=1)
    schools: list[SchoolConfig] = Field(default_factory=list)
    scope: ScopeConfig = Field(default_factory=ScopeConfig)
    join: JoinConfig | None = None
    lifecycle: LifecycleConfig = Field(default_factory=LifecycleConfig)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    # Where the config came from; set by load_config, not by the file.
    source_file: Path = Field(default=Path("config.yaml"), exclude=True)

    @field_validator("sources")
    @classmethod
    def _unique_source_names(cls, sources: list[SourceConfig]) -> list[SourceConfig]:
        names = [s.name for s in sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"source names must be unique; repeated: {', '.join(duplicates)}")
        return sources

    @model_validator(mode="after")
    def _group_templates_have_schools(self) -> Config:
        if self.schools:
            return self
        templates = [
            f"sources[{i}].group_rules[{j}].group"
            for i, source in enumerate(self.sources)
            if isinstance(source, LdapSourceConfig)
            for j, rule in enumerate(source.group_rules)
            if rule.is_template
        ]
        if templates:
            raise ValueError(
                f"{', '.join(templates)}: a group template expands to one group per school unit "
                "listed under `schools:`, and `schools:` lists none"
            )
        return self

    def school_codes(self) -> list[str]:
        return [school.code for school in self.schools]

    @model_validator(mode="after")
    def _join_names_real_sources(self) -> Config:
        if self.join is None:
            return self
        by_name = {s.name: s for s in self.sources}
        named = set(self.join.sources) | set(self.join.unmatched)
        for names in self.join.prefer.values():
            named |= set(names)
        unknown = sorted(named - by_name.keys())
        if unknown:
            raise ValueError(f"join: unknown source(s) {', '.join(unknown)}")
        for name in self.join.sources:
            source = by_name[name]
            if isinstance(source, CsvSourceConfig):
                mapped = source.columns.join_key
            elif isinstance(source, LdapSourceConfig):
                mapped = source.attributes.join_key
            else:
                mapped = source.join_key
            if not mapped:
                raise ValueError(f"join: source {name} maps no join_key")
        return self


def _expand_env(value: Any, where: str, problems: list[str]) -> Any:
    """Replace ${NAME} in every string, recording unset variables as problems."""
    if isinstance(value, dict):
        return {
            k: _expand_env(v, f"{where}.{k}" if where else str(k), problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_expand_env(v, f"{where}[{i}]", problems) for i, v in enumerate(value)]
    if isinstance(value, str):

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in os.environ:
                problems.append(f"{where}: environment variable {name} is not set")
                return ""
            return os.environ[name]

        return _ENV_REF.sub(substitute, value)
    return value


_PATH_KEYS = {
    "path",
    "token_file",
    "key_file",
    "ca_file",
    "mapping",
    "password_file",
    "client_secret_file",
}


def _resolve_paths(value: Any, base: Path) -> Any:
    """Make relative file paths relative to the config file's folder."""
    if isinstance(value, dict):
        return {
            k: (
                str((base / v).resolve())
                if k in _PATH_KEYS and isinstance(v, str) and v and not Path(v).is_absolute()
                else _resolve_paths(v, base)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_resolve_paths(v, base) for v in value]
    return value


def format_location(loc: tuple[int | str, ...]) -> str:
    """('sources', 0, 'columns', 'key') -> 'sources[0].columns.key'."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in (
            "csv",
            "ldap",
            "ss12000",
        ):  # the discriminator tag pydantic inserts for unions
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def validation_problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{format_location(item['loc'])}: {message}" if item["loc"] else message)
    return problems


def load_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(path), ["the file does not exist"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot be read: {exc}"]) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(str(path), [f"{where}not valid YAML ({problem})"]) from None


def load_config(path: Path) -> Config:
    """Read, expand and validate a config file; raise ConfigError naming every problem."""
    path = Path(path)
    raw = load_yaml(path)
    if not isinstance(raw, dict):
        raise ConfigError(
            str(path), ["the file must hold a mapping of keys (vendor:, state:, ...)"]
        )
    problems: list[str] = []
    expanded = _expand_env(raw, "", problems)
    if problems:
        raise ConfigError(str(path), problems)
    resolved = _resolve_paths(expanded, path.parent.resolve())
    try:
        config = Config.model_validate({**resolved, "source_file": path})
    except ValidationError as exc:
        raise ConfigError(str(path), validation_problems(exc)) from None
    _check_secret_files(config, path)
    return config


def _check_secret_files(config: Config, path: Path) -> None:
    problems = []
    files = [
        ("vendor.token_file", config.vendor.token_file),
        ("external_id.key_file", config.external_id.key_file),
        ("vendor.ca_file", config.vendor.ca_file),
    ]
    bearer_files = {"vendor.token_file"}
    for i, source in enumerate(config.sources):
        if isinstance(source, LdapSourceConfig):
            files += [
                (f"sources[{i}].ca_file", source.ca_file),
                (f"sources[{i}].password_file", source.password_file),
            ]
        elif isinstance(source, Ss12000SourceConfig):
            for name in ("token_file", "client_secret_file"):
                files.append((f"sources[{i}].auth.{name}", getattr(source.auth, name)))
                bearer_files.add(f"sources[{i}].auth.{name}")
    for key, file in files:
        if file is not None and not file.is_file():
            problems.append(f"{key}: file {file} does not exist")
        elif file is not None and key in bearer_files:
            try:
                _bearer(_read_secret_file(file))
            except (OSError, UnicodeDecodeError):
                problems.append(f"{key}: file {file} cannot be read as UTF-8 text")
            except ValueError as exc:
                problems.append(f"{key}: the file's content {exc}")
    if not config.mapping.is_file():
        problems.append(f"mapping: file {config.mapping} does not exist")
    if not config.state.path.parent.is_dir():
        problems.append(f"state.path: folder {config.state.path.parent} does not exist")
    if problems:
        raise ConfigError(str(path), problems)
