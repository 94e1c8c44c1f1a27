"""The command line: check, plan, sync, demo.

Exit codes: 0 success, 1 failure, 2 bad config or usage, 3 finished but something was held
back by a safety rule.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from connector.config import Config, load_config
from connector.cycle.run import plan_only, run_sync
from connector.errors import ConfigError, ConnectorError, SourceError
from connector.mapping.profile import Mapping, load_mapping
from connector.people.externalid import ExternalIdMaker
from connector.people.model import SourceRead
from connector.reports.render import render_plan, render_summary
from connector.service.logs import configure_logging
from connector.service.memory import tune_for_large_cycles
from connector.sources import build_sources
from connector.sources.health import likely_cause, marking_digests, read_problem
from connector.sources.ldap_directory import DirectoryCheck, LdapDirectorySource
from connector.state.store import StateStore
from connector.targets.scim.client import ScimClient, ScimError
from connector.targets.scim.reconcile import implausible

F = TypeVar("F", bound=Callable[..., Any])


def _plain_errors(command: F) -> F:
    """Turn the connector's own errors into a message and an exit code, not a traceback."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ConnectorError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper  # type: ignore[return-value]


def load(config_path: Path) -> tuple[Config, Mapping]:
    config = load_config(config_path)
    configure_logging(config.logging.format, config.logging.level)
    return config, load_mapping(config.mapping)


def make_client(config: Config) -> ScimClient:
    vendor = config.vendor
    try:
        token = vendor.bearer_token()
    except OSError as exc:
        raise ConfigError(
            str(config.source_file), [f"vendor.token_file: cannot be read ({exc.strerror})"]
        ) from None
    if not vendor.verify_tls:
        import structlog

        structlog.get_logger(__name__).warning(
            "tls.verification_disabled", consequence="the vendor's certificate is not checked"
        )
    return ScimClient(
        vendor.base_url,
        token,
        timeout=vendor.timeout_seconds,
        verify_tls=vendor.verify_tls,
        ca_file=vendor.ca_file,
        max_retries=vendor.max_retries,
        rate_limit=vendor.rate_limit,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="CONNECTOR_CONFIG",
    help="The YAML configuration file (or $CONNECTOR_CONFIG).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """Keep a municipality's students and staff in step with a vendor's SCIM 2.0 API."""
    tune_for_large_cycles()
    ctx.obj = config_path


def _config_path(ctx: click.Context) -> Path:
    if ctx.obj is None:
        raise click.UsageError("--config FILE is required for this command")
    return ctx.obj


@main.command()
@click.pass_context
@_plain_errors
def check(ctx: click.Context) -> None:
    """Validate config and mapping, then test each source and the vendor connection."""
    config_path = _config_path(ctx)
    config, mapping = load(config_path)
    click.echo(f"ok    config {config_path}")
    click.echo(f"ok    mapping {mapping.path} ({len(mapping.user_templates)} user attributes)")
    problems = 0
    for source in build_sources(config):
        try:
            if isinstance(source, LdapDirectorySource):
                found = source.inspect()
                problems += _print_directory_check(source, found)
                if found.missing_bases:
                    continue  # its read would only fail on the same base
            read = source.read()
        except SourceError as exc:
            click.echo(f"FAIL  source {source.name}: {exc.reason}")
            problems += 1
            continue
        problems += _check_read(config, read)
    try:
        with make_client(config) as client:
            features = client.features()
            client.search("Users", 'userName eq "connector-check"')
            listed = {what: client.count(what) for what in ("Users", "Groups")}
        bulk = "no"
        if features.bulk:
            used = "used" if config.vendor.bulk else "not used: vendor.bulk is off"
            bulk = f"yes (max {features.bulk_max_operations or '?'} operations; {used})"
        click.echo(
            f"ok    vendor {config.vendor.base_url}: PATCH {'yes' if features.patch else 'no'}, "
            f"Bulk {bulk}, filter {'yes' if features.filter else 'no'}, "
            f"ETag {'yes' if features.etag else 'no'}"
        )
        linked = _linked_counts(config)
        for (what, count), links in zip(listed.items(), linked, strict=True):
            problem = implausible(
                what.lower(), links, count, max(0, links - count), config.safety.max_deletions
            )
            if problem:
                click.echo(f"FAIL  vendor {config.vendor.base_url}: {problem}")
                problems += 1
            else:
                click.echo(
                    f"        {count} {what.lower()} listed ({links} linked in the state file)"
                )
    except ScimError as exc:
        hint = {401: " (is the token right?)", 403: " (does the token have access?)"}.get(
            exc.status or 0, ""
        )
        click.echo(f"FAIL  vendor {config.vendor.base_url}: {exc}{hint}")
        problems += 1
    if problems:
        sys.exit(1)


def _print_directory_check(source: LdapDirectorySource, found: DirectoryCheck) -> int:
    """Print what `check` found in a directory; how many base DNs and groups are missing."""
    who = source.config.bind_dn or "anonymous"
    click.echo(f"ok    source {source.name}: bind as {who} at {found.server}")
    not_there = "does not exist (or the bind account may not see it)"
    for base in found.missing_bases:
        click.echo(
            f"FAIL  source {source.name}: the base DN {base!r} at {found.server} {not_there}"
        )
    for base, entries in found.entries_by_base.items():
        click.echo(f"        {base}: {entries} entries match the filter")
    missing_groups = 0
    for group in found.groups:
        rule = group.rule
        if group.members is None:
            missing_groups += 1
            click.echo(
                f"FAIL  source {source.name}: group rule for school unit {rule.school_unit_code}: "
                f"the group {rule.group!r} at {found.server} {not_there}"
            )
        else:
            click.echo(
                f"        group {rule.group} (school unit {rule.school_unit_code}): "
                f"{group.members} member{'' if group.members == 1 else 's'}"
            )
    return len(found.missing_bases) + missing_groups


# `check` lists at most this many skipped records of a source, then how many more there are.
SHOWN_SKIPPED = 20


def _check_read(config: Config, read: SourceRead) -> int:
    """Print what `check` makes of a source's read, judged as `sync` would; 1 if it fails."""
    problem = read_problem(read, config.safety.max_skipped_percent)
    protected = sum(1 for p in read.persons if p.protected)
    click.echo(
        f"{'FAIL' if problem else 'ok  '}  source {read.source}: {read.rows_read} records, "
        f"{len(read.persons)} persons ({protected} protected, left out), "
        f"{len(read.issues)} records skipped"
    )
    if problem:
        click.echo(f"        {problem}")
    for issue in read.issues[:SHOWN_SKIPPED]:
        click.echo(f"        skipped {issue.location}: {issue.reason}")
    if len(read.issues) > SHOWN_SKIPPED:
        click.echo(f"        ... and {len(read.issues) - SHOWN_SKIPPED} more")
    for reason in read.suspect:
        click.echo(f"        warning: {reason}: a sync holds deactivations and removals")
    cause = likely_cause(read)
    if cause:
        click.echo(f"        hint: {cause}")
    state = StateStore.open_readonly(config.state.path)
    seen = state.marking_digests(read.source) if state else set()
    if state:
        state.close()
    digests = marking_digests(read, ExternalIdMaker(config.external_id))
    new = sum(rows for digest, rows in digests.items() if digest not in seen)
    if new:
        click.echo(
            f"        note: {new} records carry a protected-identity marking value this "
            "source never wrote before; they count as protected"
        )
    return 1 if problem else 0


def _linked_counts(config: Config) -> tuple[int, int]:
    state = StateStore.open_readonly(config.state.path)
    if state is None:
        return 0, 0
    try:
        return state.linked_counts()
    finally:
        state.close()


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--full",
    is_flag=True,
    help="Compare with the vendor's real state (read-only) to show drift repairs.",
)
@click.pass_context
@_plain_errors
def plan(ctx: click.Context, as_json: bool, full: bool) -> None:
    """Print the operations a sync would perform. Changes nothing anywhere."""
    config, mapping = load(_config_path(ctx))
    if full:
        with make_client(config) as client:
            result = plan_only(config, mapping, client)
    else:
        result = plan_only(config, mapping)
    if as_json:
        document = {
            "run_id": result.run_id,
            "operations": [op.as_dict() for op in result.plan.operations],
            "counts": result.plan.counts(),
            "excluded": dict(result.desired.excluded),
            "skipped_records": [
                {"source": i.source, "location": i.location, "reason": i.reason}
                for i in result.issues
            ],
            "source_failures": [
                {"source": f.source, "reason": f.reason} for f in result.source_failures
            ],
            "held_back": result.held_back,
            "hold_reasons": result.hold_reasons,
        }
        # Indented for a person at a terminal; compact for a program (at 100,000 persons the
        # plan is 67 MB, and indenting it takes Python's slow pure-Python encoder).
        indent = 2 if sys.stdout.isatty() else None
        click.echo(json.dumps(document, ensure_ascii=False, indent=indent))
    else:
        click.echo(render_plan(result))
    sys.exit(result.exit_code)


@main.command()
@click.option(
    "--full",
    is_flag=True,
    help="Reconcile with the vendor's real state now (repairs drift), whatever the schedule says.",
)
@click.option(
    "--allow-deprovision",
    is_flag=True,
    help="For this run only, let deactivations, deletions and membership removals through the "
    "safety rules (thresholds, unhealthy sources, the rollover window).",
)
@click.option(
    "--only",
    "only",
    metavar="PERSON",
    help="Sync just this person now (source key, e-mail or username): their account and "
    "memberships, nobody else's.",
)
@click.pass_context
@_plain_errors
def sync(ctx: click.Context, full: bool, allow_deprovision: bool, only: str | None) -> None:
    """Run one cycle: read, plan, apply, record; print a summary."""
    config, mapping = load(_config_path(ctx))
    state = StateStore.open(config.state.path)
    try:
        state.acquire_lock()
        with make_client(config) as client:
            result = run_sync(
                config,
                mapping,
                state,
                client,
                full=True if full else None,
                allow_deprovision=allow_deprovision,
                only=only,
            )
    finally:
        state.close()
    click.echo(render_summary(result))
    sys.exit(result.exit_code)


@main.command()
@click.pass_context
@_plain_errors
def run(ctx: click.Context) -> None:
    """Run as a service: a cycle every interval, a full reconcile on schedule, until SIGTERM."""
    from connector.service.daemon import Daemon

    config_path = _config_path(ctx)
    config = load_config(config_path)
    configure_logging(config.logging.format, config.logging.level, stream=sys.stdout)
    mapping = load_mapping(config.mapping)
    sys.exit(Daemon(config_path, config, mapping, make_client).run())


@main.command()
@click.option("--runs", default=10, show_default=True, help="How many recent runs to show.")
@click.pass_context
@_plain_errors
def status(ctx: click.Context, runs: int) -> None:
    """The last runs from the state file, what is held back, and when the next run is due."""
    from connector.reports.status import render_status

    config = load_config(_config_path(ctx))
    click.echo(render_status(config.state.path, runs))


@main.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_context
@_plain_errors
def approve(ctx: click.Context, yes: bool) -> None:
    """Show what the last cycle held back, and after confirmation let it run, once."""
    from connector.planning.guard import approval_keys
    from connector.planning.plan import Operation, Plan
    from connector.reports.render import render_held

    config, mapping = load(_config_path(ctx))
    state = StateStore.open(config.state.path)
    try:
        state.acquire_lock()
        held = state.held_plan()
        if not held or not held.get("operations"):
            click.echo("Nothing is held back.")
            return
        plan = Plan([Operation.from_dict(op) for op in held["operations"]])
        click.echo(f"Held back by run {held['run_id']} at {held['held_at']}:")
        for reason in held.get("reasons", []):
            click.echo(f"  {reason}")
        click.echo("")
        click.echo(render_held(plan, state.load_known()))
        if not yes and not click.confirm("Apply these now (once)?", default=False):
            click.echo("Nothing was changed.")
            return
        with make_client(config) as client:
            result = run_sync(
                config, mapping, state, client, command="approve", approved=approval_keys(plan)
            )
    finally:
        state.close()
    click.echo(render_summary(result))
    sys.exit(result.exit_code)


@main.command()
@click.argument("person")
@click.pass_context
@_plain_errors
def explain(ctx: click.Context, person: str) -> None:
    """Tell whether PERSON (source key, e-mail or username) is in scope, why (not), and as what."""
    from connector.reports.explain import explain as explain_person

    config, mapping = load(_config_path(ctx))
    explanation = explain_person(config, mapping, person)
    click.echo("\n".join(explanation.lines).strip())
    sys.exit(0 if explanation.found else 1)


@main.group()
def report() -> None:
    """Read-only reports."""


@report.command("duplicates")
@click.pass_context
@_plain_errors
def report_duplicates(ctx: click.Context) -> None:
    """List vendor accounts that look like the same person as one the connector owns or wants."""
    from connector.cycle.run import desired_state, observe
    from connector.planning.objects import Known
    from connector.reports.duplicates import find_duplicates
    from connector.reports.render import table

    config, mapping = load(_config_path(ctx))
    _, failures, desired = desired_state(config, mapping)
    state = StateStore.open_readonly(config.state.path)
    known = state.load_known() if state else Known()
    if state:
        state.close()
    with make_client(config) as client:
        observation = observe(config, client, known, desired)
    pairs = find_duplicates(observation.vendor_users, observation.vendor_groups, known, desired)
    if not pairs:
        click.echo("No vendor account looks like a duplicate of one the connector owns or wants.")
    else:
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
        click.echo("Vendor accounts the connector does not own that look like one of its own:")
        click.echo(table(("VENDOR ID", "ITS USERNAME", "LOOKS LIKE OURS", "OUR ID", "WHY"), rows))
        click.echo(
            f"\n{len(pairs)} possible duplicate(s). The connector never changes or deletes accounts it does not own."
        )
    for failure in failures:
        click.echo(
            f"warning: source {failure.source} failed ({failure.reason}); the report may be incomplete"
        )


@main.command()
@_plain_errors
def demo() -> None:
    """Start a local SCIM server, sync the built-in sample data into it, show what arrived."""
    from connector.demo.run import run_demo

    sys.exit(run_demo())


if __name__ == "__main__":
    main()
