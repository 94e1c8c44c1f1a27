"""How an HTTP target authenticates beyond a static token: OAuth2 client credentials
(connector/oauth2.py), the token fetched with the same TLS settings as the target's requests."""

from __future__ import annotations

import ssl

import httpx

from connector.config import VendorConfig
from connector.oauth2 import BearerFromClientCredentials, ClientCredentials
from connector.targets.tls import client_context


def oauth2_auth(config: VendorConfig) -> httpx.Auth | None:
    """The auth of `oauth2:`, or None with a static token (sent as a header)."""
    oauth = config.oauth2
    if oauth is None:
        return None
    verify: ssl.SSLContext | bool = client_context(config.verify_tls, config.ca_file)
    http = httpx.Client(timeout=config.timeout_seconds, verify=verify)
    credentials = ClientCredentials(
        oauth.token_url, oauth.client_id, oauth.secret, oauth.scope, http
    )
    return BearerFromClientCredentials(credentials, http)
