"""Shared test fixtures: a real SCIM server on loopback, a workspace with config and rosters, a
real OpenLDAP slapd per test, and for the file deliveries a real OpenSSH sshd, an FTPS server
(pyftpdlib) and a TCP proxy that cuts connections.

A test whose server cannot be started skips on a laptop, but fails when CI=true, so CI can
never pass by skipping (tests/support/servers.py).
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connector.config import StateConfig
from connector.demo.localscim import LocalScimServer
from tests.fakes.ftps import FtpsServer
from tests.fakes.postgres import PASSWORD as PG_PASSWORD
from tests.fakes.postgres import PostgresCluster, postgres_bin_dir
from tests.fakes.slapd import Slapd, slapd_binary
from tests.fakes.sshd import SSHD, Sshd, sshd_binary
from tests.fakes.tcp_cut import TcpCutProxy
from tests.support.scim import SCIM_TOKEN, ScimPeek, no_patch_service_provider_config
from tests.support.servers import missing_server, started
from tests.support.workspace import Workspace


@pytest.fixture(scope="session")
def scim_server() -> Iterator[LocalScimServer]:
    server = started(LocalScimServer(SCIM_TOKEN, dynamic_tenants=True))
    yield server
    server.stop()


@pytest.fixture
def scim_url(scim_server: LocalScimServer) -> str:
    """A fresh, empty SCIM server for this test (a tenant of the shared process)."""
    return scim_server.tenant_url("t" + uuid.uuid4().hex[:12])


@pytest.fixture
def peek(scim_url: str) -> Iterator[ScimPeek]:
    with ScimPeek(scim_url) as client:
        yield client


@pytest.fixture
def workspace(tmp_path, scim_url: str) -> Workspace:
    return Workspace(tmp_path, scim_url)


@pytest.fixture(scope="session")
def no_patch_scim_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalScimServer]:
    """A SCIM server whose ServiceProviderConfig says it has no PATCH."""
    spc = no_patch_service_provider_config(tmp_path_factory.mktemp("spc") / "spc.json")
    server = started(LocalScimServer(SCIM_TOKEN, dynamic_tenants=True, service_provider_config=spc))
    yield server
    server.stop()


# --- a real OpenLDAP slapd per test (tests/fakes/slapd.py) ----------------------------------


@pytest.fixture
def slapd_factory(tmp_path) -> Iterator[Callable[..., Slapd]]:
    """Call with Slapd's keyword arguments to get a started slapd (each in its own folder);
    all are stopped after the test."""
    if slapd_binary() is None:
        missing_server("slapd is not installed (no /usr/sbin/slapd, none on PATH)")
    running: list[Slapd] = []

    def make(**options: Any) -> Slapd:
        server = Slapd(tmp_path / f"slapd-{len(running)}", **options)
        running.append(server)
        return server.start()

    yield make
    for server in running:
        server.stop()


@pytest.fixture
def slapd(slapd_factory: Callable[..., Slapd]) -> Slapd:
    """A started, empty slapd (suffix, service account); memberof overlay on."""
    return slapd_factory()


@pytest.fixture
def slapd_tls(slapd_factory: Callable[..., Slapd]) -> Slapd:
    """A started slapd with StartTLS on `url`, an `ldaps_url`, `ca_file` and `wrong_ca_file`."""
    return slapd_factory(tls=True)


@pytest.fixture
def slapd_ad(slapd_factory: Callable[..., Slapd]) -> Slapd:
    """A started slapd with msuser.schema (AD attributes) and no memberof overlay."""
    return slapd_factory(active_directory_schema=True)


# --- a real PostgreSQL: one temporary cluster per session, a database per test ---------------


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        missing_server("PostgreSQL is not installed (no initdb in /usr/lib/postgresql/*/bin)")
    # Not under pytest's tmp folder (0700, root's): under root the cluster runs as another
    # user, who must reach its folder.
    folder = Path(tempfile.mkdtemp(prefix="connector-pg-"))
    folder.chmod(0o755)
    cluster = PostgresCluster(folder / "cluster", bin_dir)
    try:
        cluster.start()
    except RuntimeError as exc:
        shutil.rmtree(folder, ignore_errors=True)
        missing_server(f"PostgreSQL could not be started: {exc}")
    yield cluster
    cluster.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_state(postgres_cluster: PostgresCluster) -> StateConfig:
    """`state:` in a fresh PostgreSQL database of this test's own."""
    url = postgres_cluster.create_database("t" + uuid.uuid4().hex[:12])
    return StateConfig.model_validate({"url": url, "password": PG_PASSWORD})


@pytest.fixture(params=["sqlite", "postgresql"])
def state_where(request: pytest.FixtureRequest, tmp_path) -> StateConfig:
    """The state in a SQLite file, and then in PostgreSQL: a test run against both."""
    if request.param == "sqlite":
        return StateConfig.model_validate({"path": tmp_path / "state.db"})
    state: StateConfig = request.getfixturevalue("postgres_state")
    return state


# --- file delivery: a real sshd, an FTPS server, a cutting TCP proxy (tests/fakes/) ---------


@pytest.fixture
def sshd_factory(tmp_path) -> Iterator[Callable[..., Sshd]]:
    """Call with Sshd's keyword arguments to get a started OpenSSH sshd (each in its own
    folder); all are stopped after the test."""
    if sshd_binary() is None:
        missing_server(f"sshd is not installed (no {SSHD}; apt-get install openssh-server)")
    running: list[Sshd] = []

    def make(**options: Any) -> Sshd:
        server = Sshd(tmp_path / f"sshd-{len(running)}", **options)
        running.append(server)
        return server.start()

    yield make
    for server in running:
        server.stop()


@pytest.fixture
def sshd(sshd_factory: Callable[..., Sshd]) -> Sshd:
    """A started sshd with SFTP, its host key pinned in `known_hosts`, a `client_key`."""
    return sshd_factory()


@pytest.fixture
def ftps_factory(tmp_path) -> Iterator[Callable[..., FtpsServer]]:
    """Call with FtpsServer's keyword arguments to get a started FTPS server."""
    running: list[FtpsServer] = []

    def make(**options: Any) -> FtpsServer:
        server = FtpsServer(tmp_path / f"ftps-{len(running)}", **options)
        running.append(server)
        return server.start()

    yield make
    for server in running:
        server.stop()


@pytest.fixture
def ftps_server(ftps_factory: Callable[..., FtpsServer]) -> FtpsServer:
    """A started FTPS server (TLS required on both channels) with `ca_file`, `home`."""
    return ftps_factory()


@pytest.fixture
def tcp_cut() -> Iterator[Callable[[int], TcpCutProxy]]:
    """Call with an upstream port on loopback to get a started cutting proxy in front of it."""
    running: list[TcpCutProxy] = []

    def make(upstream_port: int) -> TcpCutProxy:
        proxy = TcpCutProxy(upstream_port).start()
        running.append(proxy)
        return proxy

    yield make
    for proxy in running:
        proxy.stop()
