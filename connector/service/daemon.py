"""`connector run`: the long-running process.

APScheduler runs an incremental cycle every interval and a full reconcile on a cron schedule,
both on one worker thread, so cycles never overlap; after each cycle the next one is set an
interval later, so a cycle that overruns delays the next instead of stacking. The main thread
only waits for signals: SIGTERM/SIGINT stop new requests, let those in flight finish (a cycle
cut short ends `interrupted`) and exit 0; SIGHUP, or a changed config or mapping file, reloads
them between cycles. An invalid new config is rejected and the daemon keeps running on the old
one. SIGUSR1 (sent by `approve` and `sync --only` beside it) serves what they asked at once
(service/ondemand.py); each cycle applies the approvals recorded meanwhile
(cycle/approvals.py). The state file is touched by the worker thread, or by the main thread
while it holds the cycle lock (a reload, a rejection), never by both at once. Under systemd
(`service/systemd.py`) the main loop also feeds the watchdog.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from zoneinfo import ZoneInfo

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from connector.config import Config
from connector.cycle.approvals import settle_approvals, take_approvals
from connector.cycle.quiet import CycleMemory
from connector.cycle.run import Options, run_cycle
from connector.errors import ConfigError, ListenError
from connector.progress import Progress
from connector.service.health import HealthServer
from connector.service.memory import collect_after_cycle
from connector.service.metrics import Metrics
from connector.service.notify import Notifier
from connector.service.ondemand import WAKE_SIGNAL, serve_requests
from connector.service.reload import fingerprint, mapping_digests, reload, watched_files
from connector.service.systemd import SystemdNotifier, cycle_hung
from connector.state.leader import Leadership
from connector.state.store import StateStore
from connector.targets import Target, build_targets

log = structlog.get_logger(__name__)

FILE_CHECK_SECONDS = 2.0
# The exit code when the lead was lost (EX_TEMPFAIL): restart me, I will wait as a standby.
EXIT_LOST_LEAD = 75
# When every target is degraded, cycles slow down: the interval doubles each cycle, up to this.
SLOWEST_INTERVAL_SECONDS = 3600.0


class Daemon:
    def __init__(self, config_path: Path, config: Config) -> None:
        self.config_path = config_path
        self.config = config
        self.targets: list[Target] = build_targets(config)
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self.wake_event = threading.Event()  # SIGUSR1: a command asks for something now
        self._wakes = 0
        self.cycle_lock = threading.Lock()
        self.metrics = Metrics()
        self.notifier = Notifier(config.notify)
        self.state = StateStore.open(config.state)
        # PostgreSQL: replicas elect a leader in run(); a SQLite file is one process's alone.
        self.leadership = Leadership(config.state) if config.state.url else None
        if self.leadership is None:
            self.state.acquire_lock()
        self.exit_code = 0
        self._files = fingerprint(*watched_files(config_path, config))
        self._mapping_digests = mapping_digests(config)
        self._scheduler: BackgroundScheduler | None = None
        self._slowdown = 1
        self.systemd = SystemdNotifier()
        self._cycle_started: float | None = None  # monotonic, while a cycle runs
        # What the last cycle saw, so a cycle in which nothing changed can be quiet.
        self.memory = CycleMemory(timedelta(minutes=config.daemon.full_plan_every_minutes))

    # -- the worker thread -----------------------------------------------------------------

    def _cycle(self, full: bool | None) -> None:
        with self.cycle_lock:
            if self.stop_event.is_set():
                return
            config, targets = self.config, self.targets
            self._cycle_started = time.monotonic()
            self.systemd.status("cycle running" + (" (full reconcile)" if full else ""))
            try:
                serve_requests(config, targets, self.state, self.stop_event)
                taken = take_approvals(self.state, [t.name for t in targets])
                options = Options(
                    command="run",
                    full=full,
                    stop=self.stop_event,
                    approved=taken.approved,
                    approval_ids=taken.approval_ids,
                    # The same tracker logs sync.progress and feeds the live gauges of /metrics.
                    progress=Progress(config.logging.progress_seconds, [self.metrics]),
                    memory=self.memory,
                )
                self.metrics.cycle_began()
                results = run_cycle(config, targets, self.state, options)
                settle_approvals(self.state, taken, results)
                self.metrics.observe(results, [s.name for s in config.sources])
                self.notifier.observe(results, [s.name for s in config.sources])
                # Only when every target is degraded: one vendor down must not slow the others
                # (its requests are cut off after a few failures in a row each cycle).
                degraded = bool(results) and all(result.degraded for result in results)
                self._slowdown = min(self._slowdown * 2, 1 << 10) if degraded else 1
            except Exception:
                # One broken cycle must not end the daemon; the next cycle tries again.
                log.exception("sync.crashed")
                self.metrics.failed_cycle()
            finally:
                self.metrics.running.set(0)
                self._cycle_started = None
                collect_after_cycle()
                self._schedule_next()

    def _wake(self) -> None:
        """SIGUSR1: serve the requests (`sync --only`) now, and run a cycle now if an approval
        waits; otherwise the schedule stays as it is."""
        with self.cycle_lock:
            if self.stop_event.is_set():
                return
            try:
                serve_requests(self.config, self.targets, self.state, self.stop_event)
                due = bool(self.state.pending_approvals())
            except Exception:
                log.exception("sync.crashed")
                due = False
        if due:
            self._cycle(None)

    def _schedule_next(self) -> None:
        if self.stop_event.is_set() or self._scheduler is None:
            return
        interval = self.config.daemon.interval_seconds
        # Degraded vendors get slower cycles (doubling, at most hourly) instead of a hammering.
        seconds = min(interval * self._slowdown, max(interval, SLOWEST_INTERVAL_SECONDS))
        when = datetime.now(UTC) + timedelta(seconds=seconds)
        self._scheduler.modify_job("cycle", next_run_time=when)
        self.state.set_next_run(when.isoformat(timespec="seconds"))
        self.systemd.status(self._idle_status(when))

    def _idle_status(self, when: datetime) -> str:
        local = when.astimezone(ZoneInfo(self.config.daemon.timezone))
        return f"idle; next cycle at {local:%H:%M} ({self.config.daemon.timezone})"

    def healthy(self) -> bool:
        """For the watchdog: no cycle hung (running far longer than any real one)."""
        return not cycle_hung(self._cycle_started)

    # -- the main thread -------------------------------------------------------------------

    def run(self) -> int:
        health = self._start_health()
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, WAKE_SIGNAL)
        }
        if not self._lead():
            return self._shutdown(health)
        daemon = self.config.daemon
        zone = ZoneInfo(daemon.timezone)
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=zone,
        )
        self._scheduler.add_job(
            self._cycle,
            IntervalTrigger(seconds=daemon.interval_seconds, timezone=zone),
            id="cycle",
            kwargs={"full": None},
            next_run_time=datetime.now(zone),
        )
        self._scheduler.add_job(
            self._cycle,
            CronTrigger.from_crontab(daemon.full_reconcile_cron, timezone=zone),
            id="full",
            kwargs={"full": True},
        )
        self.state.set_daemon_pid(os.getpid())
        self.state.set_config_rejected(None)  # the file on disk is the one running
        self._scheduler.start()
        log.info(
            "daemon.started",
            pid=os.getpid(),
            interval_seconds=daemon.interval_seconds,
            full_reconcile_cron=daemon.full_reconcile_cron,
            health=health.address if health else None,
        )
        self.systemd.ready("started; first cycle running")
        next_file_check = time.monotonic() + FILE_CHECK_SECONDS
        try:
            while not self.stop_event.wait(0.2):
                self.systemd.keepalive(self.healthy())
                if daemon.watch_files and time.monotonic() >= next_file_check:
                    next_file_check = time.monotonic() + FILE_CHECK_SECONDS
                    if fingerprint(*watched_files(self.config_path, self.config)) != self._files:
                        self.reload_event.set()
                if self.reload_event.is_set() and self.cycle_lock.acquire(blocking=False):
                    try:
                        self.reload_event.clear()
                        self._reload()
                    finally:
                        self.cycle_lock.release()
                self._queue_wake()
                daemon = self.config.daemon
            return self._shutdown(health)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _lead(self) -> bool:
        """With replicas (PostgreSQL): wait, as a standby, until this one leads; then watch the
        lead, and stop at once if it is lost. False when stopped while waiting."""
        if self.leadership is None:
            return True
        self.metrics.standby = True
        self.metrics.leader.set(0)
        self.systemd.ready("standby: waiting to lead")
        if not self.leadership.wait(self.stop_event):
            return False
        self.leadership.watch(self._lost_lead)
        self.metrics.standby = False
        self.metrics.leader.set(1)
        return True

    def _lost_lead(self) -> None:
        """Another replica may lead now: apply nothing more; exit so a supervisor restarts
        this one as a standby."""
        self.metrics.leader.set(0)
        self.exit_code = EXIT_LOST_LEAD
        self.stop_event.set()

    def _start_health(self) -> HealthServer | None:
        """/healthz, /readyz, /metrics and the status page at /, if `health.listen` is set."""
        config = self.config.health
        if not config.listen:
            return None
        try:
            health = HealthServer(
                config.listen,
                self.metrics,
                config.ready_max_age_seconds,
                state_path=self.config.state,
                show_names=config.show_names,
            )
        except ListenError:
            self.state.close()  # nothing started yet: the error line says it all
            raise
        health.start()
        return health

    def _queue_wake(self) -> None:
        """After SIGUSR1: `_wake` on the worker thread, after the cycle in flight (each its own
        job id, so a wake during a wake is queued rather than skipped as a second instance)."""
        if not self.wake_event.is_set():
            return
        self.wake_event.clear()
        assert self._scheduler is not None
        self._wakes += 1
        self._scheduler.add_job(self._wake, id=f"wake-{self._wakes}")
        log.info("daemon.woken", signal="SIGUSR1")

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload_event.set()
        elif signum == WAKE_SIGNAL:
            self.wake_event.set()
        else:
            self.stop_event.set()

    def _shutdown(self, health: HealthServer | None) -> int:
        log.info("daemon.stopping", reason="lost the lead" if self.exit_code else "signal")
        self.systemd.stopping()
        if self._scheduler is None:  # stopped while a standby: nothing ran, nothing to record
            return self._close_standby(health)
        self._scheduler.pause()
        # The cycle in flight sees stop_event, finishes its current requests and records them.
        finished = self.cycle_lock.acquire(timeout=self.config.daemon.shutdown_timeout_seconds)
        self._scheduler.shutdown(wait=False)
        if health:
            health.stop()
        self.notifier.close()
        if not finished:
            log.error(
                "daemon.stop_timeout", waited_seconds=self.config.daemon.shutdown_timeout_seconds
            )
            return 1
        try:
            if not self.exit_code:  # a lost lead: the state is another replica's now
                self.state.set_next_run(None)
                self.state.set_daemon_pid(None)
                self.state.checkpoint()
        finally:
            self._close()
            self.cycle_lock.release()
        log.info("daemon.stopped", exit_code=self.exit_code)
        return self.exit_code

    def _close_standby(self, health: HealthServer | None) -> int:
        if health:
            health.stop()
        self.notifier.close()
        self._close()
        log.info("daemon.stopped", exit_code=self.exit_code)
        return self.exit_code

    def _close(self) -> None:
        self.state.close()
        if self.leadership is not None:
            self.leadership.release()
        for target in self.targets:
            target.close()

    def _reload(self) -> None:
        self._files = fingerprint(*watched_files(self.config_path, self.config))
        try:
            reloaded = reload(self.config_path, self.config, self._mapping_digests)
        except ConfigError as exc:
            self._reject_config(exc)
            return
        config = reloaded.config
        for target in self.targets:
            target.close()
        self.targets = reloaded.targets
        # A new config (mapping, scope, sources) may want other things: plan everything.
        self.memory = CycleMemory(timedelta(minutes=config.daemon.full_plan_every_minutes))
        self._reschedule(config)
        self.notifier.reconfigure(config.notify)
        if config.health != self.config.health:
            log.warning("config.restart_needed", keys=["health"])
        self.config = config
        self._files = fingerprint(*watched_files(self.config_path, config))
        self._mapping_digests = mapping_digests(config)
        self.metrics.config_reload(applied=True)
        self.state.set_config_rejected(None)
        log.info(
            "config.reloaded",
            changed=reloaded.changed,
            mapping=", ".join(str(t.mapping) for t in config.targets),
            mapping_changed=bool(reloaded.mappings_changed),
            mappings_changed=reloaded.mappings_changed,
        )

    def _reject_config(self, error: ConfigError) -> None:
        """A new config refused: the daemon goes on with the running one, and says so (the
        problems name keys and rules, never a secret's value). Main thread, cycle lock held."""
        log.error(
            "config.rejected",
            file=error.file,
            problems=error.problems,
            keeps="the running configuration",
        )
        self.metrics.config_reload(applied=False)
        at = datetime.now(UTC).isoformat(timespec="seconds")
        self.state.set_config_rejected(at, "; ".join(error.problems))
        self.notifier.config_rejected(error.problems)

    def _reschedule(self, config: Config) -> None:
        assert self._scheduler is not None
        zone = ZoneInfo(config.daemon.timezone)
        if config.daemon.interval_seconds != self.config.daemon.interval_seconds:
            self._scheduler.reschedule_job(
                "cycle",
                trigger=IntervalTrigger(seconds=config.daemon.interval_seconds, timezone=zone),
            )
        if (config.daemon.full_reconcile_cron, config.daemon.timezone) != (
            self.config.daemon.full_reconcile_cron,
            self.config.daemon.timezone,
        ):
            self._scheduler.reschedule_job(
                "full",
                trigger=CronTrigger.from_crontab(config.daemon.full_reconcile_cron, timezone=zone),
            )
