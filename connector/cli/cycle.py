"""The commands that plan and sync: plan, sync, approve, and run (the service)."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO, cast

import click
import structlog

from connector.cli.beside import (
    approve_beside_daemon,
    operator,
    record_approvals,
    sync_beside_daemon,
)
from connector.cli.common import (
    check_target_names,
    close_all,
    config_path,
    finish,
    load,
    plain_errors,
    target_option,
    targets_of,
)
from connector.config import Config, load_config
from connector.cycle.approvals import Taken, settle_approvals
from connector.cycle.preview import preview
from connector.cycle.result import CycleResult, exit_code_of
from connector.cycle.run import Options, run_cycle
from connector.errors import StateLockedError
from connector.jsonout import dump_bytes
from connector.planning.guard import approval_keys
from connector.planning.held import HeldPlan
from connector.progress import Progress
from connector.reports.progressbar import LogLines, TerminalBar
from connector.reports.render import render_held, render_plan
from connector.service.logs import configure_logging
from connector.state.store import StateStore

log = structlog.get_logger(__name__)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option(
    "--full",
    is_flag=True,
    help="Compare with the vendor's real state (read-only) to show drift repairs.",
)
@click.option(
    "--show-rows",
    is_flag=True,
    help="For a file target: show each person's rows in full (names and all), not just counts.",
)
@target_option()
@click.pass_context
@plain_errors
def plan(
    ctx: click.Context, as_json: bool, full: bool, show_rows: bool, target_names: tuple[str, ...]
) -> None:
    """Print the operations a sync would perform. Changes nothing anywhere."""
    config = load(ctx)
    targets = targets_of(config, target_names)
    try:
        results = preview(config, targets, full=full)
    finally:
        close_all(targets)
    if as_json:
        documents = [plan_document(result) for result in results]
        document = documents[0] if len(documents) == 1 else {"targets": documents}
        # Indented for a person at a terminal; compact for a program (at 100,000 persons the
        # plan is tens of MB). Bytes: UTF-8 whatever the terminal's locale says.
        click.echo(dump_bytes(document, indent=sys.stdout.isatty()))
    elif len(results) == 1:
        click.echo(render_plan(results[0], show_rows=show_rows))
    else:
        shown = (f"== Target {r.target}\n{render_plan(r, show_rows=show_rows)}" for r in results)
        click.echo("\n\n".join(shown))
    sys.exit(exit_code_of(results))


def plan_document(result: CycleResult) -> dict[str, Any]:
    return {
        "run_id": result.run_id,
        "target": result.target,
        "operations": [op.as_dict() for op in result.plan.operations],
        "counts": result.plan.counts(),
        "excluded": result.scope.excluded,
        "skipped_records": [
            {"source": i.source, "location": i.location, "reason": i.reason} for i in result.issues
        ],
        "source_failures": [
            {"source": f.source, "reason": f.reason} for f in result.source_failures
        ],
        "held_back": result.held_back,
        "hold_reasons": result.hold_reasons,
    }


@click.command()
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
@click.option(
    "--timeout",
    default=300.0,
    show_default=True,
    metavar="SECONDS",
    help="With --only beside a running daemon: how long to wait for it to serve the request.",
)
@target_option()
@click.pass_context
@plain_errors
def sync(
    ctx: click.Context,
    full: bool,
    allow_deprovision: bool,
    only: str | None,
    timeout: float,
    target_names: tuple[str, ...],
) -> None:
    """Run one cycle: read, plan, apply, record; print a summary."""
    config = load(ctx)
    options = Options(full=True if full else None, allow_deprovision=allow_deprovision, only=only)
    state = StateStore.open(config.state)
    targets = []
    try:
        try:
            state.acquire_lock()
        except StateLockedError:
            if only is None:
                raise
            # A daemon runs: it serves this person between its cycles.
            check_target_names(config, target_names)
            sys.exit(sync_beside_daemon(state, only, target_names, allow_deprovision, timeout))
        targets = targets_of(config, target_names)
        with interruptible(config, options):
            results = run_cycle(config, targets, state, options)
    finally:
        close_all(targets)
        state.close()
    finish(results)


@click.command()
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--by",
    metavar="NAME",
    help="Who approves, for the record (default: the user who ran sudo, or the OS user).",
)
@target_option()
@click.pass_context
@plain_errors
def approve(ctx: click.Context, yes: bool, by: str | None, target_names: tuple[str, ...]) -> None:
    """Show what the last cycle held back, and after confirmation let it run, once.

    Beside a running daemon the approval is recorded and the daemon applies it in its next
    cycle (at once: it is woken with SIGUSR1)."""
    config = load(ctx)
    check_target_names(config, target_names)
    who = operator(by)
    state = StateStore.open(config.state)
    targets = []
    try:
        try:
            state.acquire_lock()
            beside = False
        except StateLockedError:
            beside = True
        held = show_held(config, state, target_names)
        if not held:
            return
        if not yes and not click.confirm("Apply these now (once)?", default=False):
            click.echo("Nothing was changed.")
            return
        if beside:
            approve_beside_daemon(state, held, who)
            return
        ids = record_approvals(state, held, who)
        approved = {name: approval_keys(one.plan) for name, one in held.items()}
        targets = targets_of(config, tuple(held))
        options = Options(command="approve", approved=approved, approval_ids=ids)
        with interruptible(config, options):
            results = run_cycle(config, targets, state, options)
        taken = Taken(approved, ids, {name: [ident] for name, ident in ids.items()})
        settle_approvals(state, taken, results)
    finally:
        close_all(targets)
        state.close()
    finish(results)


@contextmanager
def interruptible(config: Config, options: Options) -> Iterator[None]:
    """A cycle run from the command line. SIGINT (Ctrl-C) or SIGTERM stops it as it stops the
    daemon: the requests in flight finish and are recorded, nothing new starts, the run ends
    `interrupted` (exit 4) and the next cycle plans the rest; a second signal ends it at once.
    At a terminal, a progress bar on stderr."""
    options.stop = stop = threading.Event()
    bar = TerminalBar(sys.stderr) if sys.stderr.isatty() else None
    if bar is not None:
        lines = cast(TextIO, LogLines(sys.stderr))
        configure_logging(config.logging.format, config.logging.level, lines)
    options.progress = Progress(config.logging.progress_seconds, [bar] if bar else [])
    previous: dict[int, Any] = {}

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()
        for sig, handler in previous.items():
            signal.signal(sig, handler)  # a second signal: at once
        # Not logged here: the main thread may be inside the logger, holding its lock.
        threading.Thread(target=_say_stopping, args=(signum,), daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if bar is not None:
            bar.close()


def _say_stopping(signum: int) -> None:
    log.warning(
        "sync.stopping",
        signal=signal.Signals(signum).name,
        consequence="the requests in flight finish and are recorded; the rest waits for the "
        "next cycle (another signal stops at once)",
    )


def show_held(
    config: Config, state: StateStore, target_names: tuple[str, ...]
) -> dict[str, HeldPlan]:
    """Print what each target holds back; the held plans (none: says so)."""
    names = target_names or tuple(t.name for t in config.targets)
    held: dict[str, HeldPlan] = {}
    for name in names:
        one = state.target(name).held_plan()
        if one is not None and one.plan:
            held[name] = one
    if not held:
        click.echo("Nothing is held back.")
    for name, one in held.items():
        if len(config.targets) > 1:
            click.echo(f"== Target {name}")
        click.echo(f"Held back by run {one.run_id} at {one.held_at}:")
        for reason in one.reasons:
            click.echo(f"  {reason}")
        click.echo("")
        click.echo(render_held(one.plan, state.target(name).load_known()))
    return held


@click.command()
@click.pass_context
@plain_errors
def run(ctx: click.Context) -> None:
    """Run as a service: a cycle every interval, a full reconcile on schedule, until SIGTERM."""
    from connector.service.daemon import Daemon

    path = config_path(ctx)
    config = load_config(path)
    configure_logging(config.logging.format, config.logging.level, stream=sys.stdout)
    sys.exit(Daemon(path, config).run())
