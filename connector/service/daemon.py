"""`connector run`: the long-running process.

APScheduler runs an incremental cycle every interval and a full reconcile on a cron schedule,
both on one worker thread, so cycles never overlap; after each cycle the next one is set an
interval later, so a cycle that overruns delays the next instead of stacking. The main thread
only waits for signals: SIGTERM/SIGINT stop new requests, let the one in flight finish and
exit 0; SIGHUP, or a changed config or mapping file, reloads them between cycles. An invalid
new config is rejected and the daemon keeps running on the old one. Only the worker thread
touches the state file.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import BaseModel

from connector.config import Config, load_config
from connector.cycle.run import run_sync
from connector.errors import ConfigError
from connector.mapping.profile import Mapping, load_mapping
from connector.service.health import HealthServer
from connector.service.memory import collect_after_cycle
from connector.service.metrics import Metrics
from connector.state.store import StateStore
from connector.targets.scim.client import ScimClient

log = structlog.get_logger(__name__)

NEXT_RUN = "daemon.next_run"
DAEMON_PID = "daemon.pid"
FILE_CHECK_SECONDS = 2.0


def _fingerprint(*paths: Path) -> tuple[tuple[float, int], ...]:
    stamps = []
    for path in paths:
        try:
            info = path.stat()
            stamps.append((info.st_mtime, info.st_size))
        except OSError:
            stamps.append((0.0, -1))
    return tuple(stamps)


def _digest(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two configs (names only: a changed
    secret shows as its key, never its value)."""
    if isinstance(old, BaseModel) and type(old) is type(new):
        keys = []
        for name, info in type(old).model_fields.items():
            if info.exclude:
                continue  # not from the file (where it came from)
            keys += changed_keys(
                getattr(old, name), getattr(new, name), f"{prefix}.{name}" if prefix else name
            )
        return keys
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            k
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for k in changed_keys(a, b, f"{prefix}[{i}]")
        ]
    return [] if old == new else [prefix]


class Daemon:
    def __init__(
        self,
        config_path: Path,
        config: Config,
        mapping: Mapping,
        build_client: Callable[[Config], ScimClient],
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.mapping = mapping
        self._build_client = build_client
        self.client = build_client(config)
        self.stop_event = threading.Event()
        self.reload_event = threading.Event()
        self.cycle_lock = threading.Lock()
        self.metrics = Metrics()
        self.state = StateStore.open(config.state.path)
        self.state.acquire_lock()
        self._files = _fingerprint(config_path, mapping.path)
        self._mapping_digest = _digest(mapping.path)
        self._scheduler: BackgroundScheduler | None = None
        self._slowdown = 1

    # -- the worker thread -----------------------------------------------------------------

    def _cycle(self, full: bool | None) -> None:
        with self.cycle_lock:
            if self.stop_event.is_set():
                return
            config, mapping, client = self.config, self.mapping, self.client
            try:
                result = run_sync(
                    config,
                    mapping,
                    self.state,
                    client,
                    command="run",
                    full=full,
                    stop=self.stop_event,
                )
                self.metrics.observe(result, [s.name for s in config.sources])
            except Exception:
                # One broken cycle must not end the daemon; the next cycle tries again.
                log.exception("sync.crashed")
                self.metrics.failed_cycle()
            finally:
                collect_after_cycle()
                self._schedule_next()

    def _schedule_next(self) -> None:
        if self.stop_event.is_set() or self._scheduler is None:
            return
        interval = self.config.daemon.interval_seconds
        # A degraded vendor gets slower cycles (doubling, at most hourly) instead of a hammering.
        seconds = min(interval * self._slowdown, max(interval, 3600.0))
        when = datetime.now(UTC) + timedelta(seconds=seconds)
        self._scheduler.modify_job("cycle", next_run_time=when)
        self.state.set_meta(NEXT_RUN, when.isoformat(timespec="seconds"))

    # -- the main thread -------------------------------------------------------------------

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        health = None
        if self.config.health.listen:
            health = HealthServer(
                self.config.health.listen, self.metrics, self.config.health.ready_max_age_seconds
            )
            health.start()
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
        self.state.set_meta(DAEMON_PID, str(os.getpid()))
        self._scheduler.start()
        log.info(
            "daemon.started",
            pid=os.getpid(),
            interval_seconds=daemon.interval_seconds,
            full_reconcile_cron=daemon.full_reconcile_cron,
            health=health.address if health else None,
        )
        next_file_check = time.monotonic() + FILE_CHECK_SECONDS
        try:
            while not self.stop_event.wait(0.2):
                if daemon.watch_files and time.monotonic() >= next_file_check:
                    next_file_check = time.monotonic() + FILE_CHECK_SECONDS
                    if _fingerprint(self.config_path, self.mapping.path) != self._files:
                        self.reload_event.set()
                if self.reload_event.is_set() and self.cycle_lock.acquire(blocking=False):
                    try:
                        self.reload_event.clear()
                        self._reload()
                    finally:
                        self.cycle_lock.release()
                daemon = self.config.daemon
            return self._shutdown(health)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            self.reload_event.set()
        else:
            self.stop_event.set()

    def _shutdown(self, health: HealthServer | None) -> int:
        log.info("daemon.stopping", reason="signal")
        assert self._scheduler is not None
        self._scheduler.pause()
        # The cycle in flight sees stop_event, finishes its current requests and records them.
        finished = self.cycle_lock.acquire(timeout=self.config.daemon.shutdown_timeout_seconds)
        self._scheduler.shutdown(wait=False)
        if health:
            health.stop()
        if not finished:
            log.error(
                "daemon.stop_timeout", waited_seconds=self.config.daemon.shutdown_timeout_seconds
            )
            return 1
        try:
            self.state.set_meta(NEXT_RUN, "")
            self.state.checkpoint()
        finally:
            self.state.close()
            self.client.close()
            self.cycle_lock.release()
        log.info("daemon.stopped")
        return 0

    def _reload(self) -> None:
        self._files = _fingerprint(self.config_path, self.mapping.path)
        try:
            config = load_config(self.config_path)
            mapping = load_mapping(config.mapping)
        except ConfigError as exc:
            log.error(
                "config.rejected",
                file=exc.file,
                problems=exc.problems,
                keeps="the running configuration",
            )
            return
        if config.state.path != self.config.state.path:
            log.error(
                "config.rejected",
                problems=["state.path: cannot change while running; restart instead"],
            )
            return
        changed = changed_keys(self.config, config)
        mapping_changed = _digest(mapping.path) != self._mapping_digest
        if config.vendor != self.config.vendor:
            self.client.close()
            self.client = self._build_client(config)
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
        if config.health != self.config.health:
            log.warning("config.restart_needed", keys=["health"])
        self.config, self.mapping = config, mapping
        self._mapping_digest = _digest(mapping.path)
        log.info(
            "config.reloaded",
            changed=changed,
            mapping=str(mapping.path),
            mapping_changed=mapping_changed,
        )
