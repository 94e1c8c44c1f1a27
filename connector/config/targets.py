"""Where the connector sends: the vendors (targets), each with its own mapping and limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.config.base import _Strict, bearer, secret_value
from connector.config.builtin import MappingPath
from connector.config.policy import SafetyConfig

# A target's name keys its part of the state file: keep it when editing the config.
TARGET_NAME = r"^[A-Za-z0-9_.-]+$"
# The one target of a config written with `vendor:` (and its part of the state file).
DEFAULT_TARGET = "default"


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

    _token = field_validator("token")(bearer)

    @model_validator(mode="after")
    def _one_token_source(self) -> VendorConfig:
        if self.token is not None and self.token_file is not None:
            raise ValueError("set either token or token_file, not both")
        return self

    def bearer_token(self) -> str | None:
        return secret_value(self.token, self.token_file)


class ScimTargetConfig(VendorConfig):
    """A SCIM 2.0 vendor: its connection, its own mapping and its own safety limits (the
    top-level `safety:` with this target's overrides)."""

    kind: Literal["scim"] = "scim"
    name: str = Field(pattern=TARGET_NAME)
    mapping: MappingPath
    safety: SafetyConfig = Field(default_factory=SafetyConfig)


class SftpDeliveryConfig(_Strict):
    """SFTP with an SSH key; the server's host key must be in `known_hosts_file` (an unknown
    or changed host key is refused, never accepted)."""

    method: Literal["sftp"]
    host: str = Field(min_length=1)
    port: int = Field(default=22, ge=1, le=65535)
    username: str = Field(min_length=1)
    private_key_file: Path
    # For an encrypted key: the passphrase, in a file of its own.
    private_key_passphrase_file: Path | None = None
    known_hosts_file: Path
    directory: str = "."
    timeout_seconds: float = Field(default=30.0, gt=0)

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
    host: str = Field(min_length=1)
    port: int = Field(default=21, ge=1, le=65535)
    username: str = Field(min_length=1)
    password: SecretStr | None = None
    password_file: Path | None = None
    directory: str = "."
    ca_file: Path | None = None
    verify_tls: bool = True
    timeout_seconds: float = Field(default=30.0, gt=0)

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
    directory: Path

    def files(self) -> list[tuple[str, Path | None]]:
        return []


DeliveryConfig = Annotated[
    SftpDeliveryConfig | FtpsDeliveryConfig | LocalDeliveryConfig, Field(discriminator="method")
]


class FileFormatConfig(_Strict):
    """How the file is written; agree on it with the vendor."""

    file_name: str = Field(default="users.csv", pattern=r"^[^/\\\x00]+$")
    delimiter: str = Field(default=";", min_length=1, max_length=1)
    # utf-8-bom: UTF-8 with a byte order mark (what Excel wants to see).
    encoding: Literal["utf-8", "utf-8-bom", "windows-1252"] = "utf-8"
    line_ending: Literal["crlf", "lf"] = "crlf"
    quoting: Literal["minimal", "all"] = "minimal"
    # A person at several schools: one row per school, or one row with the per-school
    # columns joined by `joined_separator`.
    rows: Literal["per_school", "joined"] = "per_school"
    joined_separator: str = Field(default=",", min_length=1, max_length=3)


class ArchiveConfig(_Strict):
    """Each delivered file kept here (mode 0600) for audit, removed after `retention_days`."""

    directory: Path
    retention_days: int = Field(default=90, ge=1)


class FileTargetConfig(_Strict):
    """A vendor fed by a CSV file (Inläsningstjänst): rendered by its own file mapping,
    planned and guarded like a SCIM vendor (a row missing from the file deletes the account),
    and delivered by SFTP, FTPS or into a local folder."""

    kind: Literal["file"]
    name: str = Field(pattern=TARGET_NAME)
    mapping: MappingPath
    delivery: DeliveryConfig
    format: FileFormatConfig = Field(default_factory=FileFormatConfig)
    archive: ArchiveConfig | None = None
    # Attempts per delivery before the cycle gives up (the next cycle sends it again).
    max_retries: int = Field(default=3, ge=0, le=20)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)

    # A file has no membership chunks; the planner asks every target for one.
    member_chunk_size: ClassVar[int] = 100


TargetConfig = Annotated[ScimTargetConfig | FileTargetConfig, Field(discriminator="kind")]
