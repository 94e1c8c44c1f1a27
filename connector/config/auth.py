"""`oauth2:` of an HTTP target: OAuth2 client credentials instead of a static bearer token."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.config.base import _Strict, bearer, secret_value


class OAuth2Config(_Strict):
    """OAuth2 client credentials: a token fetched from the vendor's token endpoint, cached until
    shortly before it expires and renewed after a 401."""

    token_url: str = Field(pattern=r"^https?://\S+$")
    """The token endpoint."""
    client_id: str = Field(min_length=1)
    """The client id the vendor gave you."""
    client_secret: SecretStr | None = None
    """The client secret, e.g. ${VENDOR_CLIENT_SECRET}; or client_secret_file."""
    client_secret_file: Path | None = None
    """A file holding the client secret."""
    scope: str | None = None
    """The scope to ask for, if the vendor wants one."""

    _secret = field_validator("client_secret")(bearer)

    @model_validator(mode="after")
    def _one_secret(self) -> OAuth2Config:
        if (self.client_secret is None) == (self.client_secret_file is None):
            raise ValueError("set one of client_secret, client_secret_file")
        return self

    def secret(self) -> str:
        value = secret_value(self.client_secret, self.client_secret_file)
        assert value is not None  # the validator requires one of them
        return value
