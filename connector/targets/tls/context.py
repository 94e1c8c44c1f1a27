"""The TLS context of a target's HTTP client, and what the config asks of it."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from connector.config.tls import TlsClientConfig


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """Beyond verifying the server: a client certificate, and the server's key pinned."""

    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    # The pins the server's key must match, asked at each new connection (federation
    # metadata is refreshed); None: not pinned.
    pins: Callable[[], frozenset[str]] | None = None


def client_context(
    verify_tls: bool, ca_file: Path | None, settings: TlsSettings | None = None
) -> ssl.SSLContext | bool:
    """The system's trust store, or the CA file given; TLS 1.2 at least; the client
    certificate where one is configured (mutual TLS)."""
    needs_context = verify_tls or (settings is not None and settings.client_cert_file)
    if not needs_context:
        return False
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if settings is not None and settings.client_cert_file is not None:
        context.load_cert_chain(settings.client_cert_file, settings.client_key_file)
    return context


def tls_settings(config: TlsClientConfig, base_url: str, target: str) -> TlsSettings | None:
    """What a target's `tls:` asks for, or None when it asks for nothing beyond verifying."""
    pins: Callable[[], frozenset[str]] | None = None
    if config.federation is not None:
        from connector.targets.tls.federation import FederationPins

        pins = FederationPins(config.federation, base_url, target).pins
    elif config.server_pins:
        fixed = frozenset(config.normalised_pins())
        pins = lambda: fixed  # noqa: E731
    if pins is None and config.client_cert_file is None:
        return None
    return TlsSettings(config.client_cert_file, config.client_key_file, pins)


def proven_by_connecting(config: TlsClientConfig) -> str:
    """What a connection that got through proved (reaching the server means the handshake
    and any pin passed), for `connector check`."""
    said = ["client certificate sent" if config.client_cert_file else "no client certificate"]
    if config.federation is not None:
        said.append(
            f"server key matched a pin of {config.federation.entity_id} in the verified "
            "federation metadata"
        )
    elif config.server_pins:
        said.append("server key matched the pin")
    return "TLS: " + "; ".join(said)
