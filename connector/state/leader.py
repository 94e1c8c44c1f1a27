"""Which of several `connector run` replicas on one PostgreSQL state applies: the one holding
the leader lock, a session-level advisory lock on a connection of its own.

The others wait, trying the lock every `RETRY_SECONDS`; PostgreSQL frees it the moment the
leader's connection ends (a clean stop, a crash, a kill -9: the socket closes), so one of them
takes over within seconds. A leader that loses its lock connection (the database restarted, a
network cut) must stop applying at once, or two might apply together: a watchdog asks the
connection every `CHECK_SECONDS`, with a short timeout, and on any failure calls `on_lost`
(the daemon stops and exits, and its supervisor starts it again as a follower). The
connection's keepalives (state/postgres.py) make the server drop a silent leader's lock later
than the leader notices it has lost it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable

import psycopg
import structlog

from connector.config import StateConfig
from connector.errors import StateError
from connector.state.postgres import PostgresConnection, lock_holder, open_connection, try_lock

log = structlog.get_logger(__name__)

RETRY_SECONDS = 1.0
CHECK_SECONDS = 1.0
CHECK_TIMEOUT_MS = 3000


class Leadership:
    def __init__(self, state: StateConfig) -> None:
        self.state = state
        self.identity = f"{socket.gethostname()}:{os.getpid()}"
        self._connection: PostgresConnection | None = None
        self._lost = threading.Event()
        self._released = threading.Event()
        self.leading = False

    def wait(self, stop: threading.Event) -> bool:
        """Until this process leads (True), or `stop` is set first (False)."""
        said_waiting = False
        while not stop.is_set():
            try:
                if self._try():
                    log.info("leader.acquired", replica=self.identity)
                    return True
            except StateError as exc:
                log.warning("leader.unreachable", error=str(exc), retry_seconds=RETRY_SECONDS)
            if not said_waiting:
                log.info("leader.waiting", replica=self.identity, leader=self._leader())
                said_waiting = True
            stop.wait(RETRY_SECONDS)
        return False

    def _try(self) -> bool:
        if self._connection is None:
            self._connection = PostgresConnection(
                open_connection(self.state, application=f"connector {self.identity}")
            )
        try:
            self.leading = try_lock(self._connection, self._connection.leader_key)
        except psycopg.Error:
            self._drop()
            raise StateError("the leader lock could not be asked for") from None
        return self.leading

    def _leader(self) -> str | None:
        """The leading replica's name, as its lock connection calls itself."""
        if self._connection is None:
            return None
        try:
            pid = lock_holder(self._connection, self._connection.leader_key)
            row = self._connection.raw.execute(
                "SELECT application_name FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
        except psycopg.Error:
            return None
        return str(row[0]).removeprefix("connector ") if row else None

    def watch(self, on_lost: Callable[[], None]) -> None:
        """From now on, call `on_lost` (once) if the lock is lost."""
        thread = threading.Thread(target=self._watch, args=(on_lost,), name="leader", daemon=True)
        thread.start()

    def _watch(self, on_lost: Callable[[], None]) -> None:
        connection = self._connection
        assert connection is not None
        while not self._released.wait(CHECK_SECONDS):
            try:
                connection.raw.execute(f"SET statement_timeout = {CHECK_TIMEOUT_MS}")
                connection.raw.execute("SELECT 1")
            except psycopg.Error as exc:
                if self._released.is_set():
                    return
                self.leading = False
                self._lost.set()
                log.error("leader.lost", replica=self.identity, error=type(exc).__name__)
                on_lost()
                return

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def release(self) -> None:
        """Give the lead up (closing the connection frees the lock)."""
        self._released.set()
        if self.leading:
            log.info("leader.released", replica=self.identity)
        self.leading = False
        self._drop()

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(psycopg.Error):
                connection.close()
