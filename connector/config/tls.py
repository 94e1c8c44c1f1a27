"""`tls:` of an HTTP target: mutual TLS (a client certificate), the server's key pinned, and
the pins read from a federation's signed metadata (Skolfederation's, for EGIL vendors)."""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from connector.config.base import _Strict


class FederationConfig(_Strict):
    """The federation's signed metadata (FedTLS, as Skolfederation publishes it): the vendor's
    server pins are read from it, after its signature is verified against the federation's
    keys. When it cannot be verified (a wrong signature, expired, unreachable with no valid
    copy cached), nothing is sent."""

    metadata_url: str = Field(pattern=r"^https://\S+$")
    """Where the federation publishes its metadata (https)."""
    jwks_file: Path
    """The federation's public signing keys (a JWKS file), to verify the metadata with."""
    entity_id: str = Field(min_length=1)
    """The vendor's entity id in the metadata; its servers' pins are used."""
    refresh_seconds: float = Field(default=3600.0, ge=60)
    """How often the metadata is fetched again (a verified copy is used in between)."""
    cache_file: Path | None = None
    """Where the last verified metadata is kept (0600), used while the URL cannot be reached
    and until the document expires."""
    ca_file: Path | None = None
    """A CA bundle to verify the metadata's web server with, if not a public CA."""


class TlsClientConfig(_Strict):
    """Mutual TLS and key pinning for this target (both optional)."""

    client_cert_file: Path | None = None
    """The connector's client certificate (PEM) for mutual TLS, e.g. the one the federation
    issued."""
    client_key_file: Path | None = None
    """Its private key (PEM): a secret, from a file (systemd credential, Kubernetes secret)."""
    server_pins: list[str] = Field(default_factory=list)
    """The server's key pinned: base64 SHA-256 of its SubjectPublicKeyInfo (`sha256//…` as
    EgilSCIM's pinnedpubkey is taken too). A server whose key matches none is sent nothing."""
    federation: FederationConfig | None = None
    """Read the server's pins from the federation's signed metadata instead of server_pins."""

    @field_validator("server_pins")
    @classmethod
    def _pins(cls, value: list[str]) -> list[str]:
        for i, pin in enumerate(value):
            try:
                digest = base64.b64decode(pin.strip().removeprefix("sha256//"), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"entry {i} is not base64") from None
            if len(digest) != 32:
                raise ValueError(f"entry {i} is not a SHA-256 digest (32 bytes)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> TlsClientConfig:
        if (self.client_cert_file is None) != (self.client_key_file is None):
            raise ValueError("client_cert_file and client_key_file go together")
        if self.server_pins and self.federation is not None:
            raise ValueError("set either server_pins or federation, not both")
        return self

    def normalised_pins(self) -> list[str]:
        return [pin.strip().removeprefix("sha256//") for pin in self.server_pins]

    def files(self, where: str) -> list[tuple[str, Path | None]]:
        found = [
            (f"{where}.tls.client_cert_file", self.client_cert_file),
            (f"{where}.tls.client_key_file", self.client_key_file),
        ]
        if self.federation is not None:
            found += [
                (f"{where}.tls.federation.jwks_file", self.federation.jwks_file),
                (f"{where}.tls.federation.ca_file", self.federation.ca_file),
            ]
        return found
