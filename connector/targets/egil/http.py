"""The HTTP client of an EGIL target, built in this one place: the SCIM transport (retries on
429/5xx honouring Retry-After, the rate limit, TLS 1.2+, the answer checks) with a bearer
token or an `X-API-Key` header, verified against the system's CAs or `ca_file`.

(The shared `auth:`/`tls:` handling - mutual TLS, key pinning, OAuth2 - replaces this.)
"""

from __future__ import annotations

import structlog

from connector.config import EgilTargetConfig
from connector.targets.auth import oauth2_auth
from connector.targets.scim.transport import Transport
from connector.targets.tls import tls_settings

log = structlog.get_logger(__name__)

API_KEY_HEADER = "X-API-Key"


class EgilTransport(Transport):
    """The SCIM transport, with the API key header where one is configured."""

    def __init__(self, config: EgilTargetConfig) -> None:
        super().__init__(
            config.base_url,
            config.bearer_token(),
            timeout=config.timeout_seconds,
            verify_tls=config.verify_tls,
            ca_file=config.ca_file,
            max_retries=config.max_retries,
            rate_limit=config.rate_limit,
            tls=tls_settings(config.tls, config.base_url, config.name),
            auth=oauth2_auth(config),
        )
        api_key = config.api_key_value()
        if api_key:
            self._http.headers[API_KEY_HEADER] = api_key


def make_egil_transport(config: EgilTargetConfig) -> Transport:
    if not config.verify_tls:
        log.warning(
            "tls.verification_disabled",
            target=config.name,
            consequence="the vendor's certificate is not checked",
        )
    return EgilTransport(config)
