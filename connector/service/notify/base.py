"""What every channel shares: how a delivery fails, and TLS verified as the rest of the
connector verifies it."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Protocol

from connector.config.notify import ChannelConfig
from connector.service.notify.message import Message


class DeliveryError(Exception):
    """A message not delivered. `reason` names no secret; `transient`: worth another try."""

    def __init__(self, reason: str, *, transient: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


class Channel(Protocol):
    kind: str  # webhook, email
    name: str
    events: tuple[str, ...]  # the events it gets (and "test")

    def gets(self, event: str) -> bool: ...

    def where(self) -> str:
        """Where it sends, for `check` (no secret)."""

    def send(self, message: Message) -> None:
        """Deliver, or raise DeliveryError."""


class ChannelBase:
    """What the channels share: their name and the events their config lets through."""

    kind = ""

    def __init__(self, config: ChannelConfig) -> None:
        self.config = config
        self.name = config.name
        self.events: tuple[str, ...] = tuple(config.events)

    def gets(self, event: str) -> bool:
        return self.config.gets(event)


def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The server's certificate verified (against `ca_file`, or the system's CAs), TLS 1.2+."""
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
