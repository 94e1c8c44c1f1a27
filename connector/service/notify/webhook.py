"""A webhook: one JSON POST per message. Its URL holds a token, so no error names it."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx

from connector.config.notify import WebhookConfig
from connector.service.notify.base import ChannelBase, DeliveryError, tls_context
from connector.service.notify.message import Message

_URL = re.compile(r"\w+://\S+")


class WebhookChannel(ChannelBase):
    kind = "webhook"
    config: WebhookConfig

    def __init__(self, config: WebhookConfig) -> None:
        super().__init__(config)

    def where(self) -> str:
        """The scheme and host the messages go to (what `check` shows; not the token)."""
        parts = urlsplit(self.config.secret_url())
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"

    def send(self, message: Message) -> None:
        try:
            url = self.config.secret_url()
        except OSError as exc:
            reason = f"url_file cannot be read ({exc.strerror})"
            raise DeliveryError(reason, transient=False) from None
        verify = tls_context(self.config.ca_file)
        try:
            with httpx.Client(
                verify=verify, timeout=self.config.timeout_seconds, follow_redirects=False
            ) as client:
                response = client.post(url, json=message.payload())
        except httpx.TimeoutException:
            raise DeliveryError("timed out", transient=True) from None
        except httpx.HTTPError as exc:
            raise DeliveryError(scrubbed(exc, url), transient=True) from None
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryError(f"HTTP {response.status_code}", transient=True)
        if not response.is_success:
            raise DeliveryError(f"HTTP {response.status_code}", transient=False)


def scrubbed(exc: Exception, url: str) -> str:
    """An error as text, without the URL or any part of its path (the token)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    parts = urlsplit(url)
    for secret in (url, parts.path, parts.query):
        if len(secret) > 1:
            text = text.replace(secret, "...")
    return _URL.sub("...", text)
