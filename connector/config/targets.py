"""Where the connector sends: the vendors (targets), each with its own mapping and limits."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.config.base import _Strict, bearer, secret_value
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
    mapping: Path
    safety: SafetyConfig = Field(default_factory=SafetyConfig)


# One kind today (`kind: scim`, the default); more kinds become a union discriminated by it.
TargetConfig = ScimTargetConfig
