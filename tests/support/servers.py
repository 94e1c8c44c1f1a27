"""A server a test needs but cannot start: a skip on a laptop, a failure when CI=true, so CI can
never pass by skipping."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

from connector.demo.localscim import LocalScimServer
from connector.errors import ConnectorError


def missing_server(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: a missing server is a failure, not a skip)")
    pytest.skip(reason)


def started(server: LocalScimServer) -> LocalScimServer:
    """The scim2-server started, or the test skipped (failed in CI) when it cannot be."""
    try:
        return server.start()
    except ConnectorError as exc:
        missing_server(f"scim2-server is not available: {exc}")
