"""Where the connector sends: the vendors (targets), each with its own mapping and limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.config.auth import OAuth2Config
from connector.config.base import _Strict, bearer, secret_value
from connector.config.builtin import MappingPath, builtin_mapping
from connector.config.policy import SafetyConfig
from connector.config.tls import TlsClientConfig

# A target's name keys its part of the state file: keep it when editing the config.
TARGET_NAME = r"^[A-Za-z0-9_.-]+$"
# The one target of a config written with `vendor:` (and its part of the state file).
DEFAULT_TARGET = "default"


class VendorConfig(_Strict):
    """A SCIM 2.0 vendor's API."""

    base_url: str
    """The SCIM base URL the vendor gave you (the part before /Users and /Groups)."""
    token: SecretStr | None = None
    """The bearer token (or token_file)."""
    token_file: Path | None = None
    """A file holding the bearer token (systemd LoadCredential, a Kubernetes secret)."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Seconds to wait for one HTTP request before it counts as failed (and is retried)."""
    verify_tls: bool = True
    """Verify the vendor's TLS certificate. Leave this on; turning it off logs a warning at
    start."""
    ca_file: Path | None = None
    """A CA bundle to verify the vendor with, if it is not signed by a public CA."""
    oauth2: OAuth2Config | None = None
    """OAuth2 client credentials instead of token/token_file."""
    tls: TlsClientConfig = Field(default_factory=TlsClientConfig)
    """Mutual TLS (a client certificate) and the server's key pinned, from the config or from a
    federation's signed metadata (EGIL vendors in Skolfederation)."""
    concurrency: int = Field(default=4, ge=1, le=64)
    """How many requests may be in flight at once."""
    member_chunk_size: int = Field(default=100, ge=1, le=1000)
    """At most this many members are added or removed in one PATCH of a group."""
    max_retries: int = Field(default=4, ge=0, le=20)
    """How often a request that failed for a temporary reason (429, 5xx, timeout, a dropped
    connection) is retried: Retry-After is honoured, otherwise exponential backoff with
    jitter. Other 4xx answers are not retried."""
    rate_limit: float = Field(default=0.0, ge=0)
    """At most this many requests per second (0: no limit), if the vendor asks for one."""
    bulk: bool = False
    """SCIM Bulk: send creates, updates, deactivations, deletions and membership changes many
    to a request. Only used if the vendor's /ServiceProviderConfig says it supports Bulk;
    batches stay within its maxOperations and maxPayloadSize, and within
    bulk_max_operations."""
    bulk_max_operations: int = Field(default=100, ge=1, le=10_000)
    """At most this many operations in one SCIM Bulk request."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    _token = field_validator("token")(bearer)

    @model_validator(mode="after")
    def _one_token_source(self) -> VendorConfig:
        if self.token is not None and self.token_file is not None:
            raise ValueError("set either token or token_file, not both")
        if self.oauth2 is not None and (self.token is not None or self.token_file is not None):
            raise ValueError("set either a token (token, token_file) or oauth2, not both")
        return self

    def bearer_token(self) -> str | None:
        return secret_value(self.token, self.token_file)


class ScimTargetConfig(VendorConfig):
    """A SCIM 2.0 vendor: its connection, its own mapping and its own safety limits (the
    top-level `safety:` with this target's overrides)."""

    kind: Literal["scim"] = "scim"
    """scim: a SCIM 2.0 API (the default; may be left out); or file: a CSV file delivered."""
    name: str = Field(pattern=TARGET_NAME)
    """The target's name (letters, digits, . _ -): it keys the target's records in the state
    file, so choose it once and keep it."""
    mapping: MappingPath
    """How people and schools become its Users and Groups: a profile that comes with the
    connector (builtin:default; builtin:ilt for usernames set once, generated usernames and
    the mobile opt-in; they are mappings/*.yaml in the repository), or the path of a mapping
    file of your own (start from a copy of one of those)."""
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    """This target's own limits: any key of the top-level `safety:`, overriding it for this
    target."""


class SftpDeliveryConfig(_Strict):
    """SFTP with an SSH key; the server's host key must be in `known_hosts_file` (an unknown
    or changed host key is refused, never accepted)."""

    method: Literal["sftp"]
    """sftp: SFTP with an SSH key."""
    host: str = Field(min_length=1)
    """The server's host name."""
    port: int = Field(default=22, ge=1, le=65535)
    """The server's port."""
    username: str = Field(min_length=1)
    """The user to log in as."""
    private_key_file: Path
    """The SSH private key."""
    private_key_passphrase_file: Path | None = None
    """For an encrypted key: the passphrase, in a file of its own."""
    known_hosts_file: Path
    """The server's host key, in OpenSSH known_hosts form."""
    directory: str = "."
    """The folder on the server to put the file in."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Seconds to wait for the server before the delivery attempt fails."""

    def files(self) -> list[tuple[str, Path | None]]:
        return [
            ("private_key_file", self.private_key_file),
            ("private_key_passphrase_file", self.private_key_passphrase_file),
            ("known_hosts_file", self.known_hosts_file),
        ]


class FtpsDeliveryConfig(_Strict):
    """FTPS: explicit TLS (AUTH TLS on port 21) on the control and the data channel, passive
    mode, the server's certificate verified (against `ca_file`, or the system's CAs)."""

    method: Literal["ftps"]
    """ftps: FTP with explicit TLS."""
    host: str = Field(min_length=1)
    """The server's host name."""
    port: int = Field(default=21, ge=1, le=65535)
    """The server's port."""
    username: str = Field(min_length=1)
    """The user to log in as."""
    password: SecretStr | None = None
    """The password, e.g. ${FTPS_PASSWORD}; or password_file."""
    password_file: Path | None = None
    """A file holding the password."""
    directory: str = "."
    """The folder on the server to put the file in."""
    ca_file: Path | None = None
    """A CA bundle to verify the server with, if it is not signed by a public CA."""
    verify_tls: bool = True
    """Verify the server's TLS certificate. Leave this on."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Seconds to wait for the server before the delivery attempt fails."""

    @model_validator(mode="after")
    def _one_password(self) -> FtpsDeliveryConfig:
        if (self.password is None) == (self.password_file is None):
            raise ValueError("set either password or password_file")
        return self

    def secret(self) -> str:
        value = secret_value(self.password, self.password_file)
        assert value is not None  # the validator requires one of them
        return value

    def files(self) -> list[tuple[str, Path | None]]:
        return [("password_file", self.password_file), ("ca_file", self.ca_file)]


class LocalDeliveryConfig(_Strict):
    """A folder on this machine, for the municipality's own transfer job."""

    method: Literal["local"]
    """local: a folder on this machine."""
    directory: Path
    """The folder to put the file in."""

    def files(self) -> list[tuple[str, Path | None]]:
        return []


DeliveryConfig = Annotated[
    SftpDeliveryConfig | FtpsDeliveryConfig | LocalDeliveryConfig, Field(discriminator="method")
]


class FileFormatConfig(_Strict):
    """How the file is written; agree on it with the vendor."""

    file_name: str = Field(default="users.csv", pattern=r"^[^/\\\x00]+$")
    """The file's name at the vendor."""
    delimiter: str = Field(default=";", min_length=1, max_length=1)
    """One character between the columns."""
    encoding: Literal["utf-8", "utf-8-bom", "windows-1252"] = "utf-8"
    """utf-8 | utf-8-bom (UTF-8 with a byte order mark: what Excel wants to see) |
    windows-1252."""
    line_ending: Literal["crlf", "lf"] = "crlf"
    """crlf | lf."""
    quoting: Literal["minimal", "all"] = "minimal"
    """minimal (only where needed) | all (every value quoted)."""
    rows: Literal["per_school", "joined"] = "per_school"
    """A person at several schools: one row per school (per_school), or one row with the
    per-school columns joined by `joined_separator` (joined)."""
    joined_separator: str = Field(default=",", min_length=1, max_length=3)
    """What joins the per-school values with rows: joined."""


class ArchiveConfig(_Strict):
    """Each delivered file kept here (mode 0600) for audit, removed after `retention_days`."""

    directory: Path
    """The folder the delivered files are kept in."""
    retention_days: int = Field(default=90, ge=1)
    """Days to keep each delivered file."""


class FileTargetConfig(_Strict):
    """A vendor fed by a CSV file (Inläsningstjänst): rendered by its own file mapping,
    planned and guarded like a SCIM vendor (a row missing from the file deletes the account),
    and delivered by SFTP, FTPS or into a local folder."""

    kind: Literal["file"]
    """file: a CSV file delivered (Inläsningstjänst)."""
    name: str = Field(pattern=TARGET_NAME)
    """The target's name (letters, digits, . _ -): it keys the target's records in the state
    file, so choose it once and keep it."""
    mapping: MappingPath
    """The file mapping (builtin:ilt-file, or the path of a file of your own): which columns the
    file has and what goes in them."""
    delivery: DeliveryConfig
    """How the file reaches the vendor: method sftp, ftps or local."""
    format: FileFormatConfig = Field(default_factory=FileFormatConfig)
    """How the file is written (its name, delimiter, encoding, rows); agree on it with the
    vendor."""
    archive: ArchiveConfig | None = None
    """Keep each delivered file here (mode 0600) for audit."""
    max_retries: int = Field(default=3, ge=0, le=20)
    """Attempts per delivery before the cycle gives up (the next cycle sends it again)."""
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    """This target's own limits: any key of the top-level `safety:`, overriding it for this
    target."""

    # A file has no membership chunks; the planner asks every target for one.
    member_chunk_size: ClassVar[int] = 100


# What an Employment's `employmentRole` may be (SS 12000:2018, as EGIL uses it).
EmploymentRole = Literal[
    "Rektor", "Lärare", "Förskollärare", "Övrig pedagogisk personal", "Annan personal"
]


class EgilOrganisationConfig(_Strict):
    """The municipality, sent as EGIL's one Organisation (every school unit points at it)."""

    display_name: str = Field(min_length=1)
    """Its name, e.g. "Exempels kommun"."""
    municipality_code: str = Field(pattern=r"^[0-9]{4}$")
    """Its four-digit municipality code (kommunkod), e.g. "1234"; also each school unit's
    municipalityCode."""


ENDPOINT_NAME = r"^[A-Za-z][A-Za-z0-9_.-]*$"


class EgilEndpointsConfig(_Strict):
    """Where each kind of EGIL object is sent: the path after `base_url` (EgilSCIM's
    `<type>-scim-url-endpoint`). The defaults are windermere's, Sambruk's reference server:
    students and teachers are both Users at /Users."""

    organisations: str = Field(default="Organisations", pattern=ENDPOINT_NAME)
    """The Organisation's endpoint."""
    school_unit_groups: str = Field(default="SchoolUnitGroups", pattern=ENDPOINT_NAME)
    """The SchoolUnitGroups' endpoint."""
    school_units: str = Field(default="SchoolUnits", pattern=ENDPOINT_NAME)
    """The SchoolUnits' endpoint."""
    students: str = Field(default="Users", pattern=ENDPOINT_NAME)
    """The students' endpoint (Users; Students at a server that keeps them apart)."""
    teachers: str = Field(default="Users", pattern=ENDPOINT_NAME)
    """The teachers' and other staff's endpoint (Users; Teachers at a server that keeps
    them apart)."""
    employments: str = Field(default="Employments", pattern=ENDPOINT_NAME)
    """The Employments' endpoint."""
    student_groups: str = Field(default="StudentGroups", pattern=ENDPOINT_NAME)
    """The StudentGroups' (classes and teaching groups) endpoint."""
    activities: str = Field(default="Activities", pattern=ENDPOINT_NAME)
    """The Activities' endpoint."""

    @model_validator(mode="after")
    def _users_apart_from_the_rest(self) -> EgilEndpointsConfig:
        others = [
            self.organisations,
            self.school_unit_groups,
            self.school_units,
            self.employments,
            self.student_groups,
            self.activities,
        ]
        if len(set(others)) < len(others) or {self.students, self.teachers} & set(others):
            raise ValueError(
                "only students and teachers may share an endpoint; every other kind of "
                "object needs its own"
            )
        return self


class EgilTargetConfig(VendorConfig):
    """A vendor that takes EGIL, Sambruk's SCIM profile of SS 12000:2018: the organisation,
    school units, students and teachers with their enrolments, employments, classes and
    teaching groups, and activities, each at its own endpoint, with lower-case UUID ids. Planned
    and guarded like a SCIM vendor; each object is sent whole (POST, PUT, DELETE)."""

    kind: Literal["egil"]
    """egil: a vendor that takes EGIL (SS 12000:2018 over SCIM)."""
    name: str = Field(pattern=TARGET_NAME)
    """The target's name (letters, digits, . _ -): it keys the target's records in the state
    file, so choose it once and keep it."""
    mapping: MappingPath = Field(default_factory=lambda: builtin_mapping("egil"))
    """How a person's names, userName and e-mail are written (builtin:egil, the default, or a
    mapping file of your own in the same form); the EGIL objects themselves are built by the
    connector."""
    organisation: EgilOrganisationConfig
    """The municipality as EGIL's Organisation."""
    school_unit_groups: dict[str, str] = Field(default_factory=dict)
    """School unit code -> the name of the SchoolUnitGroup it belongs to (e.g. a division
    such as "Gymnasiet"); leave out for no SchoolUnitGroups."""
    employment_roles: dict[str, EmploymentRole] = Field(default_factory=dict)
    """A staff member's duty role in the sources -> their Employment's employmentRole
    (Rektor, Lärare, Förskollärare, Övrig pedagogisk personal or Annan personal), compared
    without regard to case."""
    default_employment_role: EmploymentRole = "Annan personal"
    """The employmentRole of a duty role not in `employment_roles`."""
    teacher_roles: list[str] | None = None
    """Staff sent as teachers: only those with one of these duty roles; leave out to send all
    staff in scope (as EGIL clients do: a teacher is how EGIL has its staff)."""
    endpoints: EgilEndpointsConfig = Field(default_factory=EgilEndpointsConfig)
    """Where each kind of object is sent, if the server's endpoints are not windermere's
    (students and teachers both at /Users)."""
    api_key: SecretStr | None = None
    """An API key sent as the X-API-Key header (e.g. ${EGIL_API_KEY}), for servers that take
    one instead of a bearer token; or api_key_file."""
    api_key_file: Path | None = None
    """A file holding the API key."""
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    """This target's own limits: any key of the top-level `safety:`, overriding it for this
    target."""

    _api_key = field_validator("api_key")(bearer)

    @model_validator(mode="after")
    def _one_key_source(self) -> EgilTargetConfig:
        if self.api_key is not None and self.api_key_file is not None:
            raise ValueError("set either api_key or api_key_file, not both")
        for code in self.school_unit_groups:
            if not re.fullmatch(r"[0-9]{8}", code):
                raise ValueError(f"school_unit_groups: {code!r} is not an 8-digit school unit code")
        return self

    def api_key_value(self) -> str | None:
        return secret_value(self.api_key, self.api_key_file)


TargetConfig = Annotated[
    ScimTargetConfig | FileTargetConfig | EgilTargetConfig, Field(discriminator="kind")
]
