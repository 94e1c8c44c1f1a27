"""`connector demo`: a real sync of the sample data in config/demo/ into a local SCIM server.

The demo syncs twice, to show that the second cycle has nothing to do, and then prints the
users and groups as the server holds them - and, from the same reading of the sources, the CSV
file Inläsningstjänst would receive (a file target delivering into a local folder).
"""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any

import click
import httpx

from connector.cli.common import close_all
from connector.config import FileTargetConfig, load_config
from connector.cycle.result import CycleResult
from connector.cycle.run import Options, run_cycle
from connector.demo.localscim import LocalScimServer
from connector.reports.render import render_summary, table
from connector.service.logs import configure_logging
from connector.state.store import StateStore
from connector.targets import build_target
from connector.targets.scim.client import ScimClient

REPO = Path(__file__).resolve().parents[2]
DEMO_CONFIG = REPO / "config" / "demo" / "connector.yaml"
ILT_FILE_MAPPING = REPO / "mappings" / "ilt-file.yaml"


def run_demo(config_path: Path = DEMO_CONFIG) -> int:
    config = load_config(config_path)
    configure_logging("json", "warning")  # the summaries below tell the story; logs only on trouble
    token = secrets.token_urlsafe(24)
    with (
        LocalScimServer(token) as server,
        tempfile.TemporaryDirectory(prefix="connector-demo-") as tmp,
    ):
        # The sample's SCIM vendor is this local server; ILT's file goes into a local folder.
        local = config.targets[0].model_copy(update={"base_url": server.base_url, "token": None})
        outbox = Path(tmp) / "outbox"
        outbox.mkdir()
        ilt = FileTargetConfig.model_validate(
            {
                "name": "ilt-file",
                "kind": "file",
                "mapping": ILT_FILE_MAPPING,
                "delivery": {"method": "local", "directory": outbox},
            }
        )
        config = config.model_copy(
            update={
                "targets": [local, ilt],
                "state": config.state.model_copy(update={"path": Path(tmp) / "state.db"}),
            }
        )
        click.echo(f"Local SCIM server: {server.base_url}\n")
        state = StateStore.open(config.state)
        targets = [
            build_target(local, lambda _: ScimClient(server.base_url, token)),
            build_target(ilt),
        ]
        exit_code = 0
        try:
            state.acquire_lock()
            for title in ("First sync", "Second sync (nothing should change)"):
                click.echo(f"== {title} ==")
                scim, file = run_cycle(config, targets, state, Options(command="demo"))
                click.echo(render_summary(scim) + "\n")
                click.echo(f"file for Inläsningstjänst: {render_applied(file)}\n")
                exit_code = max(exit_code, scim.exit_code, file.exit_code)
        finally:
            close_all(targets)
            state.close()
        click.echo(show_server(server.base_url, token))
        click.echo(show_file(outbox / ilt.format.file_name))
    return exit_code


def render_applied(result: CycleResult) -> str:
    applied = result.applied.counts if result.applied else {}
    if not applied:
        return "unchanged, not sent again" if result.exit_code == 0 else result.outcome
    return ", ".join(f"{what.replace('_', ' ')} {count}" for what, count in sorted(applied.items()))


def show_file(path: Path) -> str:
    """The delivered file, as the vendor would receive it."""
    text = path.read_bytes().decode("utf-8")
    lines = text.splitlines()
    return "\n".join(
        [
            "",
            f"== The file Inläsningstjänst would receive: {path.name}, {len(lines) - 1} rows ==",
            "(rendered by mappings/ilt-file.yaml; delivered here into a local folder, in",
            " production by SFTP or FTPS)",
            "",
            *lines,
        ]
    )


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
