"""How an HTTP target (SCIM, EGIL) connects, from its config, in one place: timeouts, retries,
pacing, TLS (verification, mutual TLS, pins) and authentication beyond a static token."""

from __future__ import annotations

from typing import Any

import structlog

from connector.config import VendorConfig
from connector.targets.auth import oauth2_auth
from connector.targets.tls import tls_settings

log = structlog.get_logger(__name__)


def connection_options(config: VendorConfig, name: str) -> dict[str, Any]:
    """The transport's keyword arguments for this target (warning once if TLS is unverified)."""
    if not config.verify_tls:
        log.warning(
            "tls.verification_disabled",
            target=name,
            consequence="the vendor's certificate is not checked",
        )
    return {
        "timeout": config.timeout_seconds,
        "verify_tls": config.verify_tls,
        "ca_file": config.ca_file,
        "max_retries": config.max_retries,
        "rate_limit": config.rate_limit,
        "tls": tls_settings(config.tls, config.base_url, name),
        "auth": oauth2_auth(config),
    }
