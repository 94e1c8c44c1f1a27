"""`notify:`: who is told, by webhook or e-mail, when something needs an operator.

A webhook's URL carries its token, so it is a secret like the others: `url: ${VAR}` or
`url_file:`. An e-mail channel's password likewise (`password: ${VAR}` or `password_file:`).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.config.base import _Strict, read_secret_file, secret_value, unpadded

EventName = Literal[
    "held", "degraded", "recovered", "config_rejected", "source_failed", "source_recovered"
]
_ALL: list[EventName] = [
    "held",
    "degraded",
    "recovered",
    "config_rejected",
    "source_failed",
    "source_recovered",
]
EVENTS: tuple[str, ...] = tuple(_ALL)
CHANNEL_NAME = r"^[A-Za-z0-9_.-]+$"
# An address: something@domain, without spaces or header-breaking characters.
_ADDRESS = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+$")


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def url_problem(url: str) -> str | None:
    """Why a webhook URL cannot be used (never quoting it: it holds a token), or None."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an https:// URL"
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        return "must be https:// (plain http:// only to a loopback address)"
    return None


class ChannelConfig(_Strict):
    name: str = Field(pattern=CHANNEL_NAME)
    """Names this channel in the log (notify.sent, notify.failed)."""
    events: list[EventName] = Field(default_factory=lambda: list(_ALL), min_length=1)
    """Which events this channel gets (default: all of them): held, degraded, recovered,
    config_rejected, source_failed, source_recovered."""
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    """Seconds to wait for the answer; a timeout, a dropped connection, a 429 or 5xx (SMTP: a
    4xx) answer is tried again twice."""
    ca_file: Path | None = None
    """A CA bundle to verify the server with, if it is not signed by a public CA."""

    def gets(self, event: str) -> bool:
        return event == "test" or event in self.events


class WebhookConfig(ChannelConfig):
    """An incoming webhook (Slack, Mattermost, Teams...): a JSON POST with a `text` field."""

    url: SecretStr | None = None
    """The webhook URL, from the environment (it carries the hook's token): https:// (plain
    http:// only to a loopback address)."""
    url_file: Path | None = None
    """...or from a file (systemd LoadCredential, a Kubernetes secret). Set one of the two."""

    @field_validator("url")
    @classmethod
    def _usable_url(cls, value: SecretStr | None) -> SecretStr | None:
        problem = url_problem(value.get_secret_value()) if value is not None else None
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _one_url(self) -> WebhookConfig:
        if (self.url is None) == (self.url_file is None):
            raise ValueError("set either url or url_file")
        return self

    def secret_url(self) -> str:
        if self.url_file is not None:
            return read_secret_file(self.url_file).get_secret_value()
        assert self.url is not None  # the validator requires one of them
        return self.url.get_secret_value().strip()


class EmailConfig(ChannelConfig):
    """SMTP: STARTTLS (the default), implicit TLS, or - to a loopback relay only - none."""

    host: str = Field(min_length=1)
    """The SMTP server's host name."""
    port: int | None = Field(default=None, ge=1, le=65535)
    """Default 587 (starttls), 465 (tls), 25 (none)."""
    security: Literal["starttls", "tls", "none"] = "starttls"
    """starttls: the server must offer STARTTLS (refused otherwise); tls: TLS from the start
    (SMTPS); none: no encryption, only allowed to a loopback host (a local relay)."""
    sender: str = Field(alias="from")
    """The sender's address."""
    to: list[str] = Field(min_length=1)
    """The recipients (a list)."""
    username: str | None = None
    """SMTP AUTH, only over TLS: the account. Leave username and password out for a relay
    without AUTH."""
    password: SecretStr | None = None
    """The account's password, from the environment..."""
    password_file: Path | None = None
    """...or from a file."""

    _password = field_validator("password")(unpadded)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not _ADDRESS.match(value):
            raise ValueError("must be an e-mail address")
        return value

    @field_validator("to")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        wrong = [i for i, address in enumerate(value) if not _ADDRESS.match(address)]
        if wrong:
            raise ValueError(f"entry {wrong[0]} is not an e-mail address")
        return value

    @model_validator(mode="after")
    def _safe(self) -> EmailConfig:
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError("security: none is only allowed to a loopback host (a local relay)")
        if self.password is not None and self.password_file is not None:
            raise ValueError("set either password or password_file, not both")
        has_password = self.password is not None or self.password_file is not None
        if has_password != (self.username is not None):
            raise ValueError("username and a password (password or password_file) go together")
        return self

    @property
    def smtp_port(self) -> int:
        if self.port is not None:
            return self.port
        return {"starttls": 587, "tls": 465, "none": 25}[self.security]

    def secret_password(self) -> str | None:
        return secret_value(self.password, self.password_file)


class NotifyConfig(_Strict):
    """Off unless a channel is listed."""

    webhooks: list[WebhookConfig] = Field(default_factory=list)
    """Incoming webhooks (Slack, Mattermost, Teams...): a JSON POST whose `text` field they show,
    with the structured fields beside it (event, target, source, counts, reasons, run_id, host,
    time). The URL carries the hook's token, so it is a secret."""
    email: list[EmailConfig] = Field(default_factory=list)
    """E-mail over SMTP, subject like "[connector] held back: target ilt"."""
    min_interval_seconds: float = Field(default=3600.0, ge=0)
    """The same event for the same target or source is sent at most once in this many seconds
    (a held plan is told when it appears, not at every cycle it stays held). A recovery is
    always told after its trouble was."""
    max_per_hour: int = Field(default=20, ge=1)
    """At most this many messages in any hour, all events and targets together."""
    source_failed_after: int = Field(default=3, ge=1)
    """source_failed is told when a source failed this many cycles in a row."""

    @model_validator(mode="after")
    def _unique_names(self) -> NotifyConfig:
        names = [c.name for c in self.channels()]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"channel names must be unique; repeated: {', '.join(repeated)}")
        return self

    def channels(self) -> list[WebhookConfig | EmailConfig]:
        return [*self.webhooks, *self.email]

    def files(self) -> list[tuple[str, Path | None]]:
        """(key, file) of every file the channels name, for the loader to check."""
        found: list[tuple[str, Path | None]] = []
        for i, hook in enumerate(self.webhooks):
            found += [(f"notify.webhooks[{i}].url_file", hook.url_file)]
            found += [(f"notify.webhooks[{i}].ca_file", hook.ca_file)]
        for i, mail in enumerate(self.email):
            found += [(f"notify.email[{i}].password_file", mail.password_file)]
            found += [(f"notify.email[{i}].ca_file", mail.ca_file)]
        return found
