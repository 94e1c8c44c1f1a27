"""A real PostgreSQL for the tests: a temporary cluster of its own (initdb into a folder, a
free loopback port and a socket in that folder), one per test session, a database per test.

No system service is touched. PostgreSQL refuses to run as root: as root (CI, this machine)
the cluster is made and run as the unprivileged `postgres` user Debian's package creates (or
`nobody`), in a folder that user owns; otherwise as whoever runs the tests. Connections are
password-authenticated (scram-sha-256) over TCP, as a real deployment's would be.

    cluster = PostgresCluster(folder).start()
    url = cluster.create_database("t1")  # postgresql://connector@127.0.0.1:PORT/t1
    ...
    cluster.stop()
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import psycopg

from connector.demo.localscim import free_port

USER = "connector"
PASSWORD = "connector-test-pg-password-9d2f"
# Debian's packages put the server's programs in a folder per major version.
SEARCH = (
    *sorted(map(str, Path("/usr/lib/postgresql").glob("*/bin")), reverse=True),
    "/usr/local/bin",
)


def postgres_bin_dir() -> Path | None:
    """The folder with initdb, pg_ctl and postgres, or None when PostgreSQL is not installed."""
    for folder in SEARCH:
        if (Path(folder) / "initdb").is_file() and (Path(folder) / "postgres").is_file():
            return Path(folder)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _run_as() -> str | None:
    """The user to run PostgreSQL as, when we are root; None when we are not."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise RuntimeError("running as root, and neither a postgres nor a nobody user exists")


class PostgresCluster:
    def __init__(self, folder: Path, bin_dir: Path) -> None:
        self.folder = folder
        self.bin_dir = bin_dir
        self.data = folder / "data"
        self.log = folder / "postgres.log"
        self.port = free_port()
        self.user = _run_as()

    def _command(self, *argv: str) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if self.user else list(argv)

    def _run(self, *argv: str) -> None:
        done = subprocess.run(
            self._command(*argv), capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")

    def start(self) -> PostgresCluster:
        self.folder.mkdir(parents=True, exist_ok=True)
        password_file = self.folder / "pwfile"
        password_file.write_text(PASSWORD + "\n")
        if self.user:
            entry = pwd.getpwnam(self.user)
            for path in (self.folder, password_file):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={password_file}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port} "
            f"-c unix_socket_directories={self.folder} -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(self.admin_url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start: {self.log_tail()}") from None
                time.sleep(0.2)

    def url(self, database: str) -> str:
        """Without the password: the connector gets it from `state.password` or the file."""
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{database}"

    def admin_url(self, database: str) -> str:
        return f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_url("postgres"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-3000:]
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
