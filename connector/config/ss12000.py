"""An SS 12000:2020 API as a source (Edlevo, IST...): where it is and how to authenticate."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.config.base import _Strict, bearer, secret_value


class Ss12000AuthConfig(_Strict):
    """A static bearer token, or OAuth2 client credentials (the token is cached until it
    expires and renewed on 401)."""

    token: SecretStr | None = None
    """A static bearer token, e.g. ${SS12000_TOKEN}."""
    token_file: Path | None = None
    """A file holding the static bearer token."""
    token_url: str | None = None
    """OAuth2 client credentials: the token endpoint."""
    client_id: str | None = None
    """OAuth2 client credentials: the client id."""
    client_secret: SecretStr | None = None
    """OAuth2 client credentials: the client secret, e.g. ${SS12000_SECRET}."""
    client_secret_file: Path | None = None
    """A file holding the OAuth2 client secret."""
    scope: str | None = None
    """OAuth2 client credentials: the scope to ask for."""

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
    """ss12000: an SS 12000:2020 API."""
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """A short name used in logs (letters, digits, . _ -)."""
    base_url: str
    """The API's base URL (the part before /persons)."""
    auth: Ss12000AuthConfig
    """A static token (token or token_file), or OAuth2 client credentials (token_url,
    client_id, client_secret or client_secret_file, scope)."""
    school_types: list[str] = Field(default_factory=list)
    """Enrolments in these school types count (empty: all), e.g. GR, GRS, GY, GYS, VUX, SFI."""
    duty_roles: list[str] = Field(default_factory=list)
    """Duties with these roles count (empty: all), e.g. Lärare, Rektor, Bibliotekarie."""
    student_email_type: str = "Skola elev"
    """Which of a student's e-mail addresses to use (by its type)."""
    staff_email_type: str = "Skola personal"
    """Which of a staff member's e-mail addresses to use (by its type)."""
    username: Literal["eppn", "none"] = "eppn"
    """eppn (eduPersonPrincipalNames) | none."""
    join_key: Literal["civicNo"] | None = None
    """civicNo as the join key with other sources (never sent, never stored)."""
    classes: bool = False
    """Also read class groups (groupType Klass): a student's class at each school unit."""
    study_groups: bool = False
    """Also read teaching groups (groupType Undervisning: the students in them) and activities
    (which teachers teach which groups, Klass or Undervisning), for an EGIL target's
    StudentGroups and Activities. A student's class comes from `classes`."""
    page_size: int = Field(default=500, ge=1, le=10000)
    """Objects per page when reading."""
    timeout_seconds: float = Field(default=30.0, gt=0)
    """Seconds to wait for one request before it counts as failed."""
    verify_tls: bool = True
    """Verify the API's TLS certificate. Leave this on."""
    ca_file: Path | None = None
    """A CA bundle to verify the API with, if it is not signed by a public CA."""
    incremental: bool = True
    """Between full reads (reconcile.full_every_hours), ask only for what changed since the
    last read (meta.modified.after, /deletedEntities)."""
    checkpoint_overlap_seconds: float = Field(default=300.0, ge=0)
    """Checkpoints step back this far, so a change made during a read is never missed."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")
