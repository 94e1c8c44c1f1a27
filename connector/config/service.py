"""How the connector runs: the daemon, health and metrics, logs, the state file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from connector.config.base import _Strict


class DaemonConfig(_Strict):
    """`connector run`: an incremental cycle every interval, a full reconcile on a schedule."""

    interval_seconds: float = Field(default=300.0, ge=1)
    # Crontab syntax (minute hour day month weekday), in `timezone`.
    full_reconcile_cron: str = "0 2 * * *"
    timezone: str = "Europe/Stockholm"
    # Reload when the config or mapping file changes (checked while no cycle runs).
    watch_files: bool = True
    # On SIGTERM: how long to wait for the request in flight before giving up.
    shutdown_timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("full_reconcile_cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value)
        except ValueError as exc:
            raise ValueError(f"not a crontab expression ({exc})") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class HealthConfig(_Strict):
    """/healthz, /readyz and /metrics over HTTP. Off unless `listen` is set."""

    listen: str | None = Field(default=None, pattern=r"^[^:\s]+:\d{1,5}$")  # host:port
    # /readyz fails when the last successful cycle is older than this.
    ready_max_age_seconds: float = Field(default=1800.0, gt=0)


class LoggingConfig(_Strict):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class StateConfig(_Strict):
    path: Path
    # Days the history of changes (`connector history`) is kept; older rows are deleted.
    history_days: int = Field(400, ge=1)
