"""`connector demo`: a real sync of the sample data in config/demo/ into a local SCIM server.

The demo syncs twice, to show that the second cycle has nothing to do, and then prints the
users and groups as the server holds them.
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any

import click
import httpx

from connector.config import load_config
from connector.cycle.run import Options, run_cycle
from connector.demo.localscim import LocalScimServer
from connector.reports.render import render_summary, table
from connector.service.logs import configure_logging
from connector.state.store import StateStore
from connector.targets import build_target
from connector.targets.scim.client import ScimClient

DEMO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "demo" / "connector.yaml"


def run_demo(config_path: Path = DEMO_CONFIG) -> int:
    config = load_config(config_path)
    configure_logging("json", "warning")  # the summaries below tell the story; logs only on trouble
    token = secrets.token_urlsafe(24)
    with (
        LocalScimServer(token) as server,
        tempfile.TemporaryDirectory(prefix="connector-demo-") as tmp,
    ):
        # The sample's one vendor is this local server.
        local = config.targets[0].model_copy(update={"base_url": server.base_url, "token": None})
        config = config.model_copy(
            update={
                "targets": [local],
                "state": config.state.model_copy(update={"path": Path(tmp) / "state.db"}),
            }
        )
        click.echo(f"Local SCIM server: {server.base_url}\n")
        state = StateStore.open(config.state.path)
        target = build_target(local, lambda _: ScimClient(server.base_url, token))
        exit_code = 0
        try:
            state.acquire_lock()
            for title in ("First sync", "Second sync (nothing should change)"):
                click.echo(f"== {title} ==")
                (result,) = run_cycle(config, [target], state, Options(command="demo"))
                click.echo(render_summary(result) + "\n")
                exit_code = max(exit_code, result.exit_code)
        finally:
            target.close()
            state.close()
        click.echo(show_server(server.base_url, token))
    return exit_code


def _list_all(base_url: str, token: str, resource_type: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{base_url}/{resource_type}",
        params={"count": 1000},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    response.raise_for_status()
    return list(response.json().get("Resources") or [])


def show_server(base_url: str, token: str) -> str:
    """The server's users and groups, read back over SCIM."""
    users = sorted(_list_all(base_url, token, "Users"), key=lambda u: u.get("userName", ""))
    groups = sorted(_list_all(base_url, token, "Groups"), key=lambda g: g.get("displayName", ""))
    names = {u["id"]: u.get("userName", "?") for u in users}
    user_rows = [
        (
            u.get("userName", ""),
            (u.get("name") or {}).get("formatted", ""),
            u.get("userType", ""),
            "yes" if u.get("active") else "no",
        )
        for u in users
    ]
    lines = [f"== What arrived at the SCIM server: {len(users)} users, {len(groups)} groups ==", ""]
    lines.append(table(("USERNAME", "NAME", "TYPE", "ACTIVE"), user_rows))
    for group in groups:
        members = sorted(names.get(m.get("value"), "?") for m in group.get("members") or [])
        lines.append("")
        lines.append(
            f"Group {group.get('displayName')} (school unit {group.get('externalId')}): {len(members)} members"
        )
        lines.extend(f"  - {m}" for m in members)
    return "\n".join(lines)
