"""Delivery into a folder on this machine (for the municipality's own transfer job).

The file is written under a hidden temporary name in the same folder with mode 0600 (whatever
the umask), flushed to disk, renamed over the real name (`os.replace`, atomic on one file
system), and the folder itself is flushed so the rename survives a power cut.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from tenacity.wait import wait_base

from connector.config.targets import LocalDeliveryConfig
from connector.targets.file.delivery import (
    PROBE_CONTENT,
    DeliveryError,
    RetryingDelivery,
    is_temporary_of,
    probe_name,
    temporary_name,
)

FILE_MODE = 0o600


def write_file_atomically(directory: Path, file_name: str, content: bytes) -> None:
    """`content` under `directory/file_name`, or (on an error, raised) the old file untouched."""
    temporary = directory / temporary_name(file_name, secrets.token_hex(6))
    try:
        _write_synced(temporary, content)
        if temporary.stat().st_size != len(content):
            raise OSError(f"wrote {temporary.stat().st_size} of {len(content)} bytes")
        os.replace(temporary, directory / file_name)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    _sync_directory(directory)


def _write_synced(path: Path, content: bytes) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _sync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class LocalDelivery(RetryingDelivery):
    def __init__(
        self, config: LocalDeliveryConfig, *, max_retries: int, wait: wait_base | None = None
    ) -> None:
        self.directory = Path(config.directory)
        super().__init__(f"file://{self.directory.resolve()}", max_retries=max_retries, wait=wait)

    def _upload_once(self, file_name: str, content: bytes) -> None:
        if not self.directory.is_dir():
            raise DeliveryError(self.label, "the folder does not exist")
        try:
            write_file_atomically(self.directory, file_name, content)
        except OSError as exc:
            # A full disk or a missing permission does not get better by trying again now.
            raise DeliveryError(self.label, f"could not write {file_name}: {_why(exc)}") from None
        self._remove_leftovers(file_name)

    def _remove_leftovers(self, file_name: str) -> None:
        for entry in self.directory.iterdir():
            if is_temporary_of(entry.name, file_name):
                with contextlib.suppress(OSError):
                    entry.unlink()

    def check(self) -> list[tuple[str, str]]:
        if not self.directory.is_dir():
            return [("FAIL", f"{self.label}: the folder does not exist")]
        entries = sum(1 for _ in self.directory.iterdir())
        lines = [
            ("ok", f"{self.label}: the folder exists"),
            ("", f"{entries} entries in {self.directory}"),
        ]
        probe = self.directory / probe_name(secrets.token_hex(6))
        try:
            _write_synced(probe, PROBE_CONTENT)
        except OSError as exc:
            lines.append(("FAIL", f"{self.label}: cannot write into the folder: {_why(exc)}"))
            return lines
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
        lines.append(("ok", f"{self.label}: writing works (a probe file written and removed)"))
        return lines


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)
