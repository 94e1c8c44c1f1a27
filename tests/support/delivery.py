"""Delivery configs pointing at the test servers (tests/fakes/sshd.py, tests/fakes/ftps.py),
and what a delivery left in a folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from connector.config.targets import FtpsDeliveryConfig, LocalDeliveryConfig, SftpDeliveryConfig
from tests.fakes.ftps import FtpsServer
from tests.fakes.sshd import Sshd


def sftp_config(sshd: Sshd, directory: Path, **changes: Any) -> SftpDeliveryConfig:
    """SFTP to `sshd` as the test user with its client key, its host key pinned."""
    fields: dict[str, Any] = {
        "method": "sftp",
        "host": "127.0.0.1",
        "port": sshd.port,
        "username": sshd.user,
        "private_key_file": sshd.client_key,
        "known_hosts_file": sshd.known_hosts,
        "directory": str(directory),
        "timeout_seconds": 5.0,
    }
    return SftpDeliveryConfig(**(fields | changes))


def ftps_config(server: FtpsServer, directory: str = ".", **changes: Any) -> FtpsDeliveryConfig:
    """FTPS to `server` as its user, trusting its CA."""
    fields: dict[str, Any] = {
        "method": "ftps",
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.user,
        "password": server.password,
        "ca_file": server.ca_file,
        "directory": directory,
        "timeout_seconds": 5.0,
    }
    return FtpsDeliveryConfig(**(fields | changes))


def local_config(directory: Path) -> LocalDeliveryConfig:
    return LocalDeliveryConfig(method="local", directory=directory)


def entries(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def temporary_entries(folder: Path) -> list[str]:
    """Names a delivery writes before renaming (hidden `.NAME.TOKEN.part` files)."""
    return [name for name in entries(folder) if name.endswith(".part")]
