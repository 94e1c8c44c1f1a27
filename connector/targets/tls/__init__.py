"""TLS of the targets' HTTP: the client certificate (mutual TLS), the server's key pinned -
from the config or from a federation's signed metadata - and TLS 1.2 at least.

`pins.py` checks the server's key in the handshake, before a byte of a request is written;
`federation.py` reads the pins from Skolfederation's (FedTLS) signed metadata, verified
against the federation's keys, and fails closed.
"""

from connector.targets.tls.context import (
    TlsSettings,
    client_context,
    proven_by_connecting,
    tls_settings,
)
from connector.targets.tls.pins import PinMismatchError, pinned_transport, spki_pin

__all__ = [
    "PinMismatchError",
    "TlsSettings",
    "client_context",
    "pinned_transport",
    "proven_by_connecting",
    "spki_pin",
    "tls_settings",
]
