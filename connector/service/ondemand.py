"""What commands ask of the running daemon, served by its worker thread between cycles.

`connector sync --only PERSON` beside a daemon leaves a request in the state file
(state/requests.py) and sends SIGUSR1; `connector approve` records an approval and does the
same. The daemon's wake job (and, without a signal, its next scheduled cycle) serves the
requests here - each a cycle of one person, as `sync --only` runs it - and stores the summary the
command prints. Only the worker thread calls this: it is the one that touches the state file.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
from pathlib import Path

import structlog

from connector.config import Config
from connector.cycle.result import EXIT_FAILED, CycleResult, exit_code_of
from connector.cycle.run import Options, run_cycle
from connector.reports.render import render_summary
from connector.state.requests import Request
from connector.state.store import StateStore
from connector.targets import Target

log = structlog.get_logger(__name__)

WAKE_SIGNAL = signal.SIGUSR1
send_signal = os.kill  # (the tests take the permission away here)


def serve_requests(
    config: Config, targets: list[Target], state: StateStore, stop: threading.Event
) -> None:
    """Every pending request, one after the other; a failing one fails alone."""
    requests = state.requests()
    requests.forget_stale()
    for request in requests.take():
        if stop.is_set():
            requests.finish(request.id, EXIT_FAILED, "The daemon is stopping; nothing was done.")
            continue
        try:
            code, text = _serve(config, targets, state, request, stop)
        except Exception as exc:  # one request's bug must not stop the daemon
            log.exception("request.failed", request_id=request.id, error=type(exc).__name__)
            code, text = EXIT_FAILED, f"The daemon failed to serve it ({type(exc).__name__})."
        requests.finish(request.id, code, text)
        log.info("request.served", request_id=request.id, kind="sync_only", exit_code=code)


def _serve(
    config: Config,
    targets: list[Target],
    state: StateStore,
    request: Request,
    stop: threading.Event,
) -> tuple[int, str]:
    unknown = sorted(set(request.targets) - {t.name for t in targets})
    if unknown:
        return EXIT_FAILED, f"The running daemon has no target named {', '.join(unknown)}."
    chosen = [t for t in targets if not request.targets or t.name in request.targets]
    options = Options(only=request.query, allow_deprovision=request.allow_deprovision, stop=stop)
    results = run_cycle(config, chosen, state, options)
    return exit_code_of(results), render_summaries(results)


def render_summaries(results: list[CycleResult]) -> str:
    if len(results) == 1:
        return render_summary(results[0])
    return "\n\n".join(f"== Target {r.target}\n{render_summary(r)}" for r in results)


def wake(state: StateStore) -> tuple[bool, str]:
    """Signal the daemon that holds this state: (woken, why not). Only a process that is
    `connector ... run` is signalled: a pid left from an earlier daemon may be anyone's now."""
    pid = state.daemon_pid()
    if not pid or not state.lock_is_held_elsewhere():
        return False, "no daemon is running"
    host = state.daemon_host()
    if host and host != socket.gethostname():
        return False, f"the daemon leads on another host ({host})"
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False, f"process {pid} cannot be seen (is the daemon in another namespace?)"
    if b"run" not in command or not any(b"connector" in part for part in command):
        return False, "the process holding the state file is not a `connector run` daemon"
    try:
        send_signal(int(pid), WAKE_SIGNAL)
    except PermissionError:
        return False, f"not permitted to signal the daemon (pid {pid}; another user)"
    except ProcessLookupError:
        return False, f"the daemon (pid {pid}) is gone"
    return True, ""
