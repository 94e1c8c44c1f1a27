"""Read-only commands: status, explain, report duplicates and rekeys - and the demo."""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from connector.cli.common import (
    close_all,
    config_path,
    load,
    plain_errors,
    target_option,
    targets_of,
)
from connector.config import (
    Config,
    StateConfig,
    load_config,
    load_state_settings,
    load_yaml,
    validation_problems,
)
from connector.config.loader import _expand_env, _resolve_paths
from connector.cycle.run import desire
from connector.cycle.sources import Sources, read_all
from connector.errors import ConfigError
from connector.planning.objects import Known
from connector.reports.duplicates import find_duplicates
from connector.reports.render import table
from connector.state.store import StateStore
from connector.targets.base import Target
from connector.targets.scim.reconcile import Observation as ScimObservation


@click.command()
@click.option("--runs", default=10, show_default=True, help="How many recent runs to show.")
@click.pass_context
@plain_errors
def status(ctx: click.Context, runs: int) -> None:
    """The last runs from the state file, what is held back, and when the next run is due."""
    from connector.reports.status import render_status

    # Read-only: the state file, the time zone and nothing secret (no tokens in the env).
    path = config_path(ctx)
    try:
        config = load_config(path, secrets=False)
        state, daemon = config.state, config.daemon
    except ConfigError as invalid:
        # A daemon that rejected this file runs on: the state file still tells its story.
        state, daemon = load_state_settings(path)
        click.echo(f"warning: {invalid}\n", err=True)
    click.echo(render_status(state, runs, daemon.timezone))


@click.command()
@click.argument("person")
@target_option()
@click.pass_context
@plain_errors
def explain(ctx: click.Context, person: str, target_names: tuple[str, ...]) -> None:
    """Tell whether PERSON (source key, e-mail, username, or a ref from the log) is in scope,
    why (not), and as what."""
    from connector.reports.explain import explain as explain_person

    config = load(ctx)
    targets = targets_of(config, target_names)
    try:
        explanation = explain_person(config, targets, person)
    finally:
        close_all(targets)
    click.echo("\n".join(explanation.lines).strip())
    sys.exit(0 if explanation.found else 1)


@click.command()
@click.argument("query", metavar="PERSON|REF")
@click.option("--target", "target_names", multiple=True, metavar="NAME", help="Only this target.")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
    help="Only changes from this local date (or time) on.",
)
@click.option("--json", "as_json", is_flag=True, help="As JSON.")
@click.pass_context
@plain_errors
def history(
    ctx: click.Context,
    query: str,
    target_names: tuple[str, ...],
    since: datetime | None,
    as_json: bool,
) -> None:
    """What the connector did to PERSON (userName or e-mail) or REF (12+ characters of an
    externalId, as the logs give it) at each target, in time order, with runs and approvals.
    Reads the state file only: needs no secrets, and works beside a running daemon."""
    from connector.reports import history as report_history

    path = config_path(ctx)
    state_where, days = state_settings(path)
    state = StateStore.open_readonly(state_where)
    if state is None:
        raise click.ClickException(f"there is no state yet ({state_where.where})")
    try:
        keyed, key_problem = _keyed(path)
        found = report_history.find(state.history, query, keyed)
        if found.ambiguous:
            click.echo(report_history.render_ambiguous(query, found.objects))
            sys.exit(report_history.AMBIGUOUS)
        objects = [o for o in found.objects if not target_names or o.target in target_names]
        if not objects:
            click.echo(report_history.render_not_found(query, key_problem))
            sys.exit(report_history.NOT_FOUND)
        after = since.astimezone(UTC) if since else None
        entries = state.history.entries(((o.target, o.external_id) for o in objects), after)
    finally:
        state.close()
    if as_json:
        click.echo(report_history.render_json(query, objects, entries))
    else:
        click.echo(report_history.render_history(objects, entries, days))


def state_settings(path: Path) -> tuple[StateConfig, int]:
    """`state:` and `state.history_days` from the config file, reading nothing else it
    names: no other secret (no token, no key) is needed for it."""
    state, _daemon = load_state_settings(path)
    return state, state.history_days


def _section(path: Path, key: str) -> dict[str, Any]:
    raw = load_yaml(path)
    section = raw.get(key) if isinstance(raw, dict) else None
    return section if isinstance(section, dict) else {}


def _keyed(path: Path) -> tuple[Callable[[str], frozenset[str]] | None, str | None]:
    """Turning a source key into its externalIds needs `external_id` with its secret key, and
    nothing else of the config: (how, or why not)."""
    from connector.config import ExternalIdConfig
    from connector.people.externalid import ExternalIdMaker
    from connector.people.lookup import keyed_external_ids

    problems: list[str] = []
    section = _expand_env(_section(path, "external_id"), "external_id", problems)
    if problems:
        return None, "; ".join(problems)
    try:
        config = ExternalIdConfig.model_validate(_resolve_paths(section, path.parent.resolve()))
        ids = ExternalIdMaker(config)
    except ValidationError as exc:
        return None, "; ".join(f"external_id: {p}" for p in validation_problems(exc))
    except OSError as exc:
        return None, f"external_id.key_file: {exc.strerror}"
    return (lambda key: keyed_external_ids(key, ids)), None


@click.group()
def report() -> None:
    """Read-only reports."""


@report.command("duplicates")
@target_option()
@click.pass_context
@plain_errors
def report_duplicates(ctx: click.Context, target_names: tuple[str, ...]) -> None:
    """List vendor accounts that look like the same person as one the connector owns or wants."""
    config = load(ctx)
    sources = read_all(config)
    targets = targets_of(config, target_names)
    try:
        for target in targets:
            if len(targets) > 1:
                click.echo(f"== Target {target.name}")
            click.echo(duplicates_of(config, target, sources))
    finally:
        close_all(targets)
    for failure in sources.failures:
        click.echo(
            f"warning: source {failure.source} failed ({failure.reason}); "
            "the report may be incomplete"
        )


def duplicates_of(config: Config, target: Target, sources: Sources) -> str:
    state = StateStore.open_readonly(config.state)
    try:
        tstate = state.target(target.name) if state else None
        desired = desire(config, target, sources, tstate, dry_run=True)
        known = tstate.load_known() if tstate else Known()
    finally:
        if state:
            state.close()
    observation = target.observe(known, desired)
    if not isinstance(observation, ScimObservation):
        return f"Target {target.name} cannot list its accounts for this report."
    pairs = find_duplicates(observation.vendor_users, observation.vendor_groups, known, desired)
    if not pairs:
        return "No vendor account looks like a duplicate of one the connector owns or wants."
    rows = [
        (
            p.vendor_id,
            p.vendor_user_name,
            p.owned_user_name,
            p.owned_vendor_id or "(not yet created)",
            p.why,
        )
        for p in pairs
    ]
    return (
        "Vendor accounts the connector does not own that look like one of its own:\n"
        + table(("VENDOR ID", "ITS USERNAME", "LOOKS LIKE OURS", "OUR ID", "WHY"), rows)
        + f"\n\n{len(pairs)} possible duplicate(s). "
        "The connector never changes or deletes accounts it does not own."
    )


@report.command("rekeys")
@target_option()
@click.pass_context
@plain_errors
def report_rekeys(ctx: click.Context, target_names: tuple[str, ...]) -> None:
    """List accounts that could move to their person's new source key (re-keying)."""
    from connector.cycle.rekeying import examine
    from connector.reports.rekeys import render_rekeys

    config = load(ctx)
    sources = read_all(config)
    targets = targets_of(config, target_names)
    state = StateStore.open_readonly(config.state)
    try:
        for target in targets:
            if len(targets) > 1:
                click.echo(f"== Target {target.name}")
            desired = desire(config, target, sources)
            known = state.target(target.name).load_known() if state else Known()
            protected, findings = examine(desired, known, sources.scoped)
            click.echo(render_rekeys(findings, len(protected), config.lifecycle.rekey))
    finally:
        close_all(targets)
        if state:
            state.close()
    for failure in sources.failures:
        click.echo(f"warning: source {failure.source} failed ({failure.reason})")


@click.command()
@plain_errors
def demo() -> None:
    """Start a local SCIM server, sync the built-in sample data into it, show what arrived."""
    from connector.demo.run import run_demo

    sys.exit(run_demo())
