"""Delivery by FTPS: explicit TLS (AUTH TLS before the login), the data channel encrypted too
(PROT P), passive mode, the server's certificate and host name verified (against `ca_file`, or
the system's CAs).

Servers such as vsftpd and pyftpdlib want the data connection to resume the control
connection's TLS session (so nobody else can slip into the transfer): `_SessionReusingFtp`
does that. The upload goes to a hidden temporary name, its size is checked with SIZE, and it is
renamed over the real name (RNFR/RNTO; where the server refuses to replace a file, the old one
is deleted first). On a failure the temporary file is removed when the connection allows it.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import secrets
import socket
import ssl
from collections.abc import Iterator
from typing import Any

import structlog
from tenacity.wait import wait_base

from connector.config.targets import FtpsDeliveryConfig
from connector.targets.file.delivery import (
    PROBE_CONTENT,
    DeliveryError,
    RetryingDelivery,
    is_temporary_of,
    probe_name,
    remote_place,
    temporary_name,
)

log = structlog.get_logger(__name__)

# TLS errors that mean the connection went away, not that TLS cannot work.
_CUT = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLSyscallError)


class _SessionReusingFtp(ftplib.FTP_TLS):
    """FTP_TLS whose data connections resume the control connection's TLS session."""

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)  # noqa: S321 (inside TLS)
        if self._prot_p:  # type: ignore[attr-defined]
            assert isinstance(self.sock, ssl.SSLSocket)
            conn = self.context.wrap_socket(
                conn, server_hostname=self.host, session=self.sock.session
            )
        return conn, size


def tls_context(config: FtpsDeliveryConfig, label: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(config.ca_file) if config.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        log.warning(
            "tls.verification_disabled",
            delivery=label,
            consequence="the server's certificate is not checked: anyone in the path can "
            "read the password and the file",
        )
    return context


class FtpsDelivery(RetryingDelivery):
    def __init__(
        self, config: FtpsDeliveryConfig, *, max_retries: int, wait: wait_base | None = None
    ) -> None:
        self.config = config
        directory, label = remote_place(
            "ftps", config.username, config.host, config.port, config.directory
        )
        super().__init__(label, max_retries=max_retries, wait=wait)
        self.directory = directory
        self._context = tls_context(config, label)

    # -- one connection ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _session(self) -> Iterator[ftplib.FTP_TLS]:
        ftp = _SessionReusingFtp(context=self._context, timeout=self.config.timeout_seconds)
        try:
            with self._translated("connecting"):
                ftp.connect(self.config.host, self.config.port)
                ftp.auth()
                try:
                    ftp.login(self.config.username, self.config.secret())
                except ftplib.error_perm:
                    raise DeliveryError(
                        self.label, f"login refused for {self.config.username}"
                    ) from None
                ftp.prot_p()
                ftp.set_pasv(True)
                ftp.voidcmd("TYPE I")
                if self.directory != ".":
                    ftp.cwd(self.directory)
            yield ftp
            with contextlib.suppress(Exception):
                ftp.quit()
        finally:
            ftp.close()

    def _error(self, doing: str, exc: Exception) -> DeliveryError:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return DeliveryError(
                self.label,
                f"TLS certificate refused: {exc.verify_message or exc.reason} "
                f"(verified against {self.config.ca_file or 'the system CAs'})",
            )
        if isinstance(exc, ssl.SSLError) and not isinstance(exc, _CUT):
            # A handshake that fails (no common protocol or cipher) fails again.
            return DeliveryError(self.label, f"{doing}: TLS failed: {exc.reason or exc}")
        if isinstance(exc, ftplib.error_perm):
            return DeliveryError(self.label, f"{doing}: refused by the server: {_reply(exc)}")
        # A cut or refused connection, a timeout, a 4xx (try later), a garbled reply.
        transient = isinstance(exc, OSError | EOFError | ftplib.Error)
        reason = (
            _reply(exc)
            if isinstance(exc, ftplib.Error)
            else str(exc) or f"the connection was lost ({type(exc).__name__})"
        )
        return DeliveryError(self.label, f"{doing}: {reason}", transient=transient)

    # -- upload -----------------------------------------------------------------------------

    def _upload_once(self, file_name: str, content: bytes) -> None:
        with self._session() as ftp:
            temporary = temporary_name(file_name, secrets.token_hex(6))
            try:
                with self._translated(f"uploading {file_name}"):
                    ftp.storbinary(f"STOR {temporary}", io.BytesIO(content))
                    size = ftp.size(temporary)
                    if size != len(content):
                        raise DeliveryError(
                            self.label,
                            f"{file_name}: {size} of {len(content)} bytes arrived",
                            transient=True,
                        )
                    self._rename(ftp, temporary, file_name)
            except BaseException:
                with contextlib.suppress(Exception):
                    ftp.delete(temporary)
                raise
            with contextlib.suppress(Exception):
                for entry in _listing(ftp):
                    if is_temporary_of(entry, file_name):
                        ftp.delete(entry)

    @staticmethod
    def _rename(ftp: ftplib.FTP_TLS, source: str, target: str) -> None:
        try:
            ftp.rename(source, target)
        except ftplib.error_perm:
            # Some servers refuse to rename over an existing file.
            ftp.delete(target)
            ftp.rename(source, target)

    # -- check ------------------------------------------------------------------------------

    def check(self) -> list[tuple[str, str]]:
        lines: list[tuple[str, str]] = []
        try:
            with self._session() as ftp:
                lines.append(("ok", f"{self.label}: connected, certificate verified, logged in"))
                with self._translated("listing the folder"):
                    entries = _listing(ftp)
                lines.append(("", f"{len(entries)} entries in {self.directory}"))
                lines.append(self._probe(ftp))
        except DeliveryError as exc:
            lines.append(("FAIL", str(exc)))
        return lines

    def _probe(self, ftp: ftplib.FTP_TLS) -> tuple[str, str]:
        probe = probe_name(secrets.token_hex(6))
        try:
            ftp.storbinary(f"STOR {probe}", io.BytesIO(PROBE_CONTENT))
        except Exception as exc:
            return ("FAIL", f"{self.label}: cannot write into the folder: {_reply(exc)}")
        finally:
            with contextlib.suppress(Exception):
                ftp.delete(probe)
        return ("ok", f"{self.label}: writing works (a probe file written and removed)")


def _listing(ftp: ftplib.FTP_TLS) -> list[str]:
    """The folder's names; some servers answer an empty folder with 550 instead of nothing."""
    try:
        return ftp.nlst()
    except ftplib.error_perm as exc:
        if str(exc).startswith("550"):
            return []
        raise


def _reply(exc: Any) -> str:
    """The server's reply line (FTP replies carry no password), or the error's name."""
    text = str(exc).strip()
    return text[:200] if text else type(exc).__name__
