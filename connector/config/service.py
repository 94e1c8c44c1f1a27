"""How the connector runs: the daemon, health and metrics, logs, the state file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from connector.config.base import _Strict, secret_value


class DaemonConfig(_Strict):
    """`connector run`: an incremental cycle every interval, a full reconcile on a schedule."""

    interval_seconds: float = Field(default=30.0, ge=1)
    """An incremental cycle this often (seconds). A cycle that overruns delays the next. A
    cycle in which nothing changed costs almost nothing (no parsing of an unchanged file, no
    planning), so a short interval is cheap and a change reaches the vendor soon."""
    full_plan_every_minutes: float = Field(default=15.0, ge=0)
    """Even when no source changed, plan everything at least this often (minutes), so the
    time-based rules (a leaver's grace period, deletion after lifecycle.delete_after) take
    effect; 0: plan everything every cycle."""
    full_reconcile_cron: str = "0 2 * * *"
    """The full reconcile with the vendor's real state, in crontab syntax (minute hour day
    month weekday), in `timezone`."""
    timezone: str = "Europe/Stockholm"
    """The time zone of full_reconcile_cron (an IANA name)."""
    watch_files: bool = True
    """Reload when this file or the mapping file changes (SIGHUP always reloads)."""
    shutdown_timeout_seconds: float = Field(default=30.0, gt=0)
    """On SIGTERM, how long to wait for the request in flight before giving up (exit 1)."""

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

    listen: str | None = Field(default=None, pattern=r"^[^:\s]+:\d{1,5}$")
    """host:port for /healthz, /readyz, /metrics and the status page at / (read-only HTML: last
    runs, what is held back, failing objects, sources); unset (null) means off."""
    ready_max_age_seconds: float = Field(default=1800.0, gt=0)
    """/readyz fails when the last successful cycle is older than this."""
    show_names: bool = False
    """The status page names objects by opaque refs only; true: it also shows the userName and
    displayName the state file holds for held-back and failing objects (personal data: only
    where everyone who can reach the page may see them)."""


class LoggingConfig(_Strict):
    """How the connector logs: the events and their fields are in docs/log-events.md."""

    format: Literal["auto", "json", "console"] = "auto"
    """json: one JSON object per line (for journald, Kubernetes, log shippers); console:
    readable text; auto: console on a terminal, json otherwise."""
    level: Literal["debug", "info", "warning", "error"] = "info"
    """debug | info | warning | error."""
    progress_seconds: float = Field(default=5.0, gt=0)
    """While a cycle applies its plan (or lists the vendor in a full reconcile): a
    `sync.progress` event (done, planned, rate, eta) this often, in seconds."""


class StateConfig(_Strict):
    """Where the connector keeps its state: a SQLite file (`path`), or PostgreSQL (`url`)."""

    path: Path | None = None
    """The SQLite file holding which vendor id belongs to whom and what was last sent. Back it
    up; only one connector process may use it at a time. Created with mode 0600 (and made 0600
    if it is not). Its folder must exist. Set either path or url."""
    url: str | None = None
    """PostgreSQL instead of a file, for replicas (high availability) or a database team's
    backups: `postgresql://USER@HOST:PORT/DATABASE?sslmode=verify-full` (any libpq URL). The
    password does not belong in it: use `password` (as `${NAME}`), `password_file`, or libpq's
    own PGPASSWORD / PGPASSFILE. Several `connector run` replicas may share it: one leads and
    applies, the others wait and take over within seconds when it dies."""
    password: SecretStr | None = None
    """The PostgreSQL password (with `url`), written as `${NAME}` from the environment."""
    password_file: Path | None = None
    """A file holding the PostgreSQL password (a Kubernetes or systemd secret), read at each
    connection, so a rotated password is picked up."""
    history_days: int = Field(400, ge=1)
    """Days the history of changes is kept (`connector history`: what was done to whom, when, in
    which run, approved by whom; names of attributes only, never values). Older rows are
    deleted once per cycle."""

    @model_validator(mode="after")
    def _one_place(self) -> StateConfig:
        if self.path is None and self.url is None:
            raise ValueError("set path (the SQLite file) or url (PostgreSQL)")
        if self.path is not None and self.url is not None:
            raise ValueError("set either path (a SQLite file) or url (PostgreSQL), not both")
        if self.url is None and (self.password is not None or self.password_file is not None):
            raise ValueError("password and password_file go with url (PostgreSQL)")
        if self.password is not None and self.password_file is not None:
            raise ValueError("set either password or password_file, not both")
        if self.url is not None:
            _check_postgres_url(self.url)
        return self

    def password_value(self) -> str | None:
        return secret_value(self.password, self.password_file)

    @property
    def where(self) -> str:
        """For messages: the file, or the database's URL (which never holds a password)."""
        return str(self.path) if self.path is not None else str(self.url)


def _check_postgres_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("url must start with postgresql:// (the state in PostgreSQL)")
    if parts.password is not None or "password=" in parts.query:
        # The URL is shown in messages and status; a secret must never be.
        raise ValueError(
            "url must not hold the password: use password (as ${NAME}), password_file, or "
            "PGPASSWORD"
        )
