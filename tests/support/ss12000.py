"""An SS 12000 source: the connector's config for the fake server (tests/fakes/ss12000_server.py),
and a workspace that syncs from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.fakes.ss12000_server import SS12000Server
from tests.support.workspace import Workspace


def ss12000_source(server: SS12000Server, **overrides: Any) -> dict[str, Any]:
    """A source on the fake server by OAuth client credentials, its secret from the environment
    (TEST_SS12000_SECRET), reading two pages or more of everything."""
    config: dict[str, Any] = {
        "name": "sis",
        "type": "ss12000",
        "base_url": server.base_url,
        "auth": {
            "token_url": server.token_url,
            "client_id": server.client_id,
            "client_secret": "${TEST_SS12000_SECRET}",
        },
        "school_types": ["GR", "GY"],
        "duty_roles": ["Lärare", "Rektor"],
        "page_size": 2,  # several pages for everything
    }
    config.update(overrides)
    return config


def ss12000_workspace(
    tmp_path: Path, scim_url: str, server: SS12000Server, **overrides: Any
) -> Workspace:
    """A workspace whose only source is the fake server, with the secret its config reads."""
    workspace = Workspace(tmp_path, scim_url)
    workspace.extra_sources = [ss12000_source(server, **overrides)]
    workspace.environment["TEST_SS12000_SECRET"] = server.client_secret
    return workspace
