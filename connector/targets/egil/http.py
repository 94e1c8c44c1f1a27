"""The HTTP client of an EGIL target: the SCIM transport (retries on 429/5xx honouring
Retry-After, the rate limit, the answer checks) connected as every HTTP target is
(targets/connection.py: TLS 1.2+, mutual TLS, the server's key pinned, a bearer token or
OAuth2), with an `X-API-Key` header where one is configured."""

from __future__ import annotations

from connector.config import EgilTargetConfig
from connector.targets.connection import connection_options
from connector.targets.scim.transport import Transport

API_KEY_HEADER = "X-API-Key"


class EgilTransport(Transport):
    """The SCIM transport, with the API key header where one is configured."""

    def __init__(self, config: EgilTargetConfig) -> None:
        super().__init__(
            config.base_url, config.bearer_token(), **connection_options(config, config.name)
        )
        api_key = config.api_key_value()
        if api_key:
            self._http.headers[API_KEY_HEADER] = api_key


def make_egil_transport(config: EgilTargetConfig) -> Transport:
    return EgilTransport(config)
