"""Delivery by SFTP (paramiko), with an SSH key, to a server whose host key is pinned.

Only `known_hosts_file` is read (never the system's or the user's known_hosts), and a host key
that is not in it, or differs from the one in it, is refused: the error says which, shows the
SHA256 fingerprint the server offered, and names the known_hosts file. For a port other than
22 the known_hosts entry is written `[host]:port`.

The upload goes to a hidden temporary name in the target folder, its size is checked with
`stat`, and it is renamed over the real name (`posix-rename@openssh.com`, which replaces; a
server without it gets remove-then-rename). On a failure the temporary file is removed when the
connection still allows it; the real name is never written to directly.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import paramiko
from tenacity.wait import wait_base

from connector.config.targets import SftpDeliveryConfig
from connector.targets.file.delivery import (
    PROBE_CONTENT,
    DeliveryError,
    RetryingDelivery,
    is_temporary_of,
    probe_name,
    remote_place,
    temporary_name,
)


class _UnknownHostKey(paramiko.SSHException):
    def __init__(self, host: str, key: paramiko.PKey) -> None:
        self.host = host
        self.key = key
        super().__init__(f"unknown host key for {host}")


class _RefuseUnknown(paramiko.MissingHostKeyPolicy):
    def missing_host_key(
        self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey
    ) -> None:
        raise _UnknownHostKey(hostname, key)


class SftpDelivery(RetryingDelivery):
    def __init__(
        self, config: SftpDeliveryConfig, *, max_retries: int, wait: wait_base | None = None
    ) -> None:
        self.config = config
        directory, label = remote_place(
            "sftp", config.username, config.host, config.port, config.directory
        )
        super().__init__(label, max_retries=max_retries, wait=wait)
        self.directory = directory

    # -- one connection ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self) -> Iterator[paramiko.SFTPClient]:
        """A logged-in SFTP session; every failure a `DeliveryError` (transient or not)."""
        client = paramiko.SSHClient()
        try:
            with self._translated("connecting"):
                key = self._private_key()
                self._load_known_hosts(client)
                client.set_missing_host_key_policy(_RefuseUnknown())
                timeout = self.config.timeout_seconds
                client.connect(
                    self.config.host,
                    port=self.config.port,
                    username=self.config.username,
                    pkey=key,
                    timeout=timeout,
                    banner_timeout=timeout,
                    auth_timeout=timeout,
                    channel_timeout=timeout,
                    allow_agent=False,
                    look_for_keys=False,
                )
                sftp = client.open_sftp()
                sftp.get_channel().settimeout(timeout)  # type: ignore[union-attr]
            try:
                yield sftp
            finally:
                # On a cut connection closing raises too; the error that matters is raised.
                with contextlib.suppress(Exception):
                    sftp.close()
        finally:
            client.close()

    def _load_known_hosts(self, client: paramiko.SSHClient) -> None:
        try:
            client.load_host_keys(str(self.config.known_hosts_file))
        except OSError as exc:
            raise DeliveryError(
                self.label,
                f"cannot read known_hosts_file {self.config.known_hosts_file}: {_short(exc)}",
            ) from None

    def _private_key(self) -> paramiko.PKey:
        passphrase = None
        try:
            if self.config.private_key_passphrase_file is not None:
                passphrase = _read_secret(self.config.private_key_passphrase_file)
        except OSError as exc:
            raise DeliveryError(
                self.label,
                f"cannot read private_key_passphrase_file "
                f"{self.config.private_key_passphrase_file}: {_short(exc)}",
            ) from None
        try:
            # Positional: paramiko 3.x calls it `passphrase`, 5.x `password`; cryptography
            # (which decrypts) wants bytes, whatever the annotation says.
            secret = passphrase.encode() if passphrase is not None else None
            return paramiko.PKey.from_path(self.config.private_key_file, secret)  # type: ignore[arg-type]
        except (OSError, paramiko.SSHException, ValueError) as exc:
            raise DeliveryError(
                self.label,
                f"cannot load the private key {self.config.private_key_file}: {type(exc).__name__}",
            ) from None

    def _error(self, doing: str, exc: Exception) -> DeliveryError:
        known_hosts = self.config.known_hosts_file
        if isinstance(exc, _UnknownHostKey):
            return DeliveryError(
                self.label,
                f"host key refused: the server's key is unknown ({exc.key.get_name()} "
                f"{exc.key.fingerprint}); no entry for {exc.host} in {known_hosts}",
            )
        if isinstance(exc, paramiko.BadHostKeyException):
            return DeliveryError(
                self.label,
                f"host key refused: the server's key has CHANGED (it offered "
                f"{exc.key.get_name()} {exc.key.fingerprint}, {known_hosts} has "
                f"{exc.expected_key.get_name()} {exc.expected_key.fingerprint})",
            )
        if isinstance(exc, paramiko.AuthenticationException):
            return DeliveryError(
                self.label,
                f"login refused for {self.config.username} with the key "
                f"{self.config.private_key_file}",
            )
        if isinstance(exc, PermissionError | FileNotFoundError):
            return DeliveryError(self.label, f"{doing}: {exc.strerror or exc}")
        # A cut or refused connection, a timeout, a dropped session: worth another try.
        transient = isinstance(exc, OSError | EOFError | socket.timeout | paramiko.SSHException)
        reason = str(exc) or f"the connection was lost ({type(exc).__name__})"
        return DeliveryError(self.label, f"{doing}: {reason}", transient=transient)

    # -- upload -----------------------------------------------------------------------------

    def _path(self, name: str) -> str:
        return posixpath.join(self.directory, name)

    def _upload_once(self, file_name: str, content: bytes) -> None:
        with self._session() as sftp:
            temporary = self._path(temporary_name(file_name, secrets.token_hex(6)))
            try:
                with self._translated(f"uploading {file_name}"):
                    sftp.putfo(io.BytesIO(content), temporary, confirm=False)
                    size = sftp.stat(temporary).st_size
                    if size != len(content):
                        raise DeliveryError(
                            self.label,
                            f"{file_name}: {size} of {len(content)} bytes arrived",
                            transient=True,
                        )
                    self._rename(sftp, temporary, self._path(file_name))
            except BaseException:
                with contextlib.suppress(Exception):
                    sftp.remove(temporary)
                raise
            with contextlib.suppress(Exception):
                self._remove_leftovers(sftp, file_name)

    @staticmethod
    def _rename(sftp: paramiko.SFTPClient, source: str, target: str) -> None:
        try:
            sftp.posix_rename(source, target)
        except OSError as exc:
            said = str(exc).lower()
            if exc.errno is not None or not ("unsupported" in said or "not supported" in said):
                raise
            # No posix-rename extension: a plain SFTP rename refuses to replace.
            with contextlib.suppress(FileNotFoundError):
                sftp.remove(target)
            sftp.rename(source, target)

    def _remove_leftovers(self, sftp: paramiko.SFTPClient, file_name: str) -> None:
        for entry in sftp.listdir(self.directory):
            if is_temporary_of(entry, file_name):
                sftp.remove(self._path(entry))

    # -- check ------------------------------------------------------------------------------

    def check(self) -> list[tuple[str, str]]:
        lines: list[tuple[str, str]] = []
        try:
            with self._session() as sftp:
                lines.append(("ok", f"{self.label}: connected, host key verified, logged in"))
                with self._translated("listing the folder"):
                    entries = sftp.listdir(self.directory)
                lines.append(("", f"{len(entries)} entries in {self.directory}"))
                lines.append(self._probe(sftp))
        except DeliveryError as exc:
            lines.append(("FAIL", str(exc)))
        return lines

    def _probe(self, sftp: paramiko.SFTPClient) -> tuple[str, str]:
        probe = self._path(probe_name(secrets.token_hex(6)))
        try:
            sftp.putfo(io.BytesIO(PROBE_CONTENT), probe, confirm=False)
        except Exception as exc:
            return ("FAIL", f"{self.label}: cannot write into the folder: {_short(exc)}")
        finally:
            with contextlib.suppress(Exception):
                sftp.remove(probe)
        return ("ok", f"{self.label}: writing works (a probe file written and removed)")


def _short(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _read_secret(path: Path) -> str:
    return path.read_text(encoding="utf-8").strip()
