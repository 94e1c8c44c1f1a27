"""Commands beside a running daemon: `approve` records an approval, `sync --only` leaves a
request, and both wake the daemon (SIGUSR1) - the daemon holds the state file's lock and does
the work; the command only writes a short transaction into the file.

The file is SQLite in WAL mode: readers never wait, and a writer waits (busy_timeout, 5 s) for
the daemon's write transaction, which is never held while the daemon waits on a vendor (see
state/database.py `_Batch`). Should the daemon still keep it longer (a checkpoint of a huge
WAL), the write is tried again until `PATIENCE_SECONDS`, then the command says so.
"""

from __future__ import annotations

import getpass
import os
import sqlite3
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import click
import structlog

from connector.errors import StateLockedError
from connector.planning.guard import approval_keys
from connector.planning.held import HeldPlan
from connector.service.ondemand import wake
from connector.state.approvals import Approval
from connector.state.requests import RequestResult, Requests
from connector.state.store import StateStore

log = structlog.get_logger(__name__)

T = TypeVar("T")
PATIENCE_SECONDS = 60.0
POLL_SECONDS = 0.2


def operator(by: str | None) -> str:
    """Who approves: `--by`, else the user who ran sudo, else the OS user."""
    if by:
        return by
    if os.geteuid() == 0 and os.environ.get("SUDO_USER"):
        return os.environ["SUDO_USER"]
    return getpass.getuser()


def patiently(action: Callable[[], T]) -> T:
    """A write beside the daemon: tried again while the file is busy, up to PATIENCE_SECONDS."""
    deadline = time.monotonic() + PATIENCE_SECONDS
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise
            if time.monotonic() >= deadline:
                raise StateLockedError(
                    f"the running daemon kept the state file busy for {PATIENCE_SECONDS:g} s; "
                    "nothing was recorded, try again"
                ) from None


def covered_by(pending: list[Approval], held: HeldPlan) -> Approval | None:
    """A pending approval that already covers every step of this held plan."""
    keys = approval_keys(held.plan)
    for approval in pending:
        if keys <= approval.keys:
            return approval
    return None


def record_approvals(state: StateStore, held: dict[str, HeldPlan], by: str) -> dict[str, str]:
    """One pending approval per target (none where one already covers it); target -> id."""
    ids = {}
    for name, one in held.items():
        tstate = state.target(name)
        earlier = covered_by(tstate.pending_approvals(), one)
        if earlier is not None:
            click.echo(
                f"Target {name}: already approved by {earlier.requested_by} at "
                f"{earlier.requested_at} (approval {earlier.id})."
            )
            ids[name] = earlier.id
            continue
        keys = approval_keys(one.plan)
        approval = patiently(partial(tstate.record_approval, one.run_id, keys, by))
        log.info(
            "approval.recorded",
            approval_id=approval.id,
            target=name,
            held_run_id=one.run_id,
            operations=len(keys),
        )
        ids[name] = approval.id
    return ids


def approve_beside_daemon(state: StateStore, held: dict[str, HeldPlan], by: str) -> None:
    """Record the approvals and wake the daemon, which applies them in its next cycle."""
    ids = record_approvals(state, held, by)
    for name, ident in ids.items():
        click.echo(f"Approved by {by}: approval {ident} for target {name}.")
    woken, why = wake(state)
    if woken:
        click.echo(
            "The daemon was woken and applies it now; `connector status` shows when it is done."
        )
        return
    when = state.next_run()
    click.echo(
        f"Could not wake the daemon ({why}): it applies the approval in its next cycle"
        + (f", due at {when}" if when else "")
        + " (`connector status` shows it)."
    )


def sync_beside_daemon(
    state: StateStore,
    only: str,
    targets: tuple[str, ...],
    allow_deprovision: bool,
    timeout: float,
) -> int:
    """`sync --only` served by the running daemon: its summary printed here; the exit code."""
    requests = state.requests()
    ident = patiently(lambda: requests.add_sync_only(only, targets, allow_deprovision))
    woken, why = wake(state)
    if not woken:
        when = state.next_run()
        click.echo(
            f"Could not wake the daemon ({why}); it serves the request at its next cycle"
            + (f", due at {when}" if when else "")
            + f". Waiting up to {timeout:g} s.",
            err=True,
        )
    try:
        result = _wait(requests, ident, timeout)
    except BaseException:  # interrupted: withdraw it, if the daemon has not taken it yet
        patiently(lambda: requests.withdraw(ident))
        raise
    if result is not None:
        patiently(lambda: requests.delete(ident))
        click.echo(result.text or "")
        return result.exit_code if result.exit_code is not None else 1
    if patiently(lambda: requests.withdraw(ident)):
        click.echo(
            f"error: the daemon did not take the request within {timeout:g} s (is it busy "
            "with a long cycle?); the request was withdrawn and nothing was changed by it.",
            err=True,
        )
    else:
        click.echo(
            f"error: the daemon took the request but did not finish it within {timeout:g} s; "
            "its log (`request.served`) and `connector status` show the outcome.",
            err=True,
        )
    return 1


def _wait(requests: Requests, ident: str, timeout: float) -> RequestResult | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = requests.result(ident)
        if result is not None and result.status == "done":
            return result
        time.sleep(POLL_SECONDS)
    return None
