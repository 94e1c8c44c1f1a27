"""The server's public key pinned: SHA-256 of its SubjectPublicKeyInfo, base64 (the form
Skolfederation's metadata and curl's `--pinnedpubkey sha256//…` use).

The check runs in the TLS handshake's own step (a network backend of httpcore), so a server
whose key does not match receives nothing - not even the request line.
"""

from __future__ import annotations

import base64
import hashlib
import ssl
from collections.abc import Callable, Iterable
from typing import Any

import httpcore
import httpx
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat


class PinMismatchError(ssl.SSLError):
    """The server's key is not one of the pinned ones. An SSLError, so the transport treats it
    as a failed handshake: never retried, the vendor as a whole refused."""

    def __init__(self, found: str, expected: Iterable[str]) -> None:
        self.reason = (
            f"the server's key pin {found} is not the pinned {', '.join(sorted(expected))}"
        )
        super().__init__(self.reason)


def spki_pin(certificate_der: bytes) -> str:
    """base64(SHA-256(SubjectPublicKeyInfo)) of a DER certificate."""
    public_key = x509.load_der_x509_certificate(certificate_der).public_key()
    spki = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode("ascii")


def normalised_pin(pin: str) -> str:
    """`sha256//abc=` (curl, EgilSCIM's `pinnedpubkey`) or `abc=`: the digest alone."""
    return pin.strip().removeprefix("sha256//")


class _PinnedStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, pins: Callable[[], frozenset[str]]):
        self._stream = stream
        self._pins = pins

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, timeout)

    def close(self) -> None:
        self._stream.close()

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        try:  # first: metadata that cannot be verified means no handshake at all
            expected = self._pins()
        except ssl.SSLError as exc:
            self._stream.close()
            raise httpcore.ConnectError(str(exc)) from exc
        tls = self._stream.start_tls(ssl_context, server_hostname, timeout)
        ssl_object = tls.get_extra_info("ssl_object")
        certificate = ssl_object.getpeercert(True) if ssl_object else None
        found = spki_pin(certificate) if certificate else "(no certificate)"
        if found not in expected:
            tls.close()
            # Raised while handling the mismatch, so it stays the error's context (httpcore
            # re-raises its errors `from None`, which drops a cause but keeps the context).
            try:
                raise PinMismatchError(found, expected)
            except PinMismatchError as mismatch:
                raise httpcore.ConnectError(mismatch.reason) from mismatch
        return tls


class _PinningBackend(httpcore.SyncBackend):
    def __init__(self, pins: Callable[[], frozenset[str]]) -> None:
        self._pins = pins

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = super().connect_tcp(host, port, timeout, local_address, socket_options)
        return _PinnedStream(stream, self._pins)


def pinned_transport(
    context: ssl.SSLContext, pins: Callable[[], frozenset[str]], limits: httpx.Limits
) -> httpx.HTTPTransport:
    """httpx's transport, whose every TLS connection must show one of `pins()`."""
    transport = httpx.HTTPTransport(verify=context, limits=limits)
    transport._pool._network_backend = _PinningBackend(pins)
    return transport
