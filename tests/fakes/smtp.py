"""A real SMTP server for the notification tests: aiosmtpd in a thread, on a free loopback port.

With `tls=True` (the default) it offers STARTTLS with a certificate for 127.0.0.1 from a
throw-away CA made with `trustme` (`ca_file`), requires it before anything else, and requires
AUTH (only over TLS) as `USER` with `PASSWORD`. With `tls=False` it offers neither STARTTLS nor
AUTH: a server a connector set to `security: starttls` must refuse. Every mail it took is in
`messages` (parsed), with the login that sent it in `logins`.

    with SmtpServer(tmp_path / "smtp") as server:
        ...  # STARTTLS to 127.0.0.1:server.port as USER/PASSWORD, trusting server.ca_file
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from email.message import EmailMessage
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from connector.demo.localscim import free_port

USER = "connector-notify"
PASSWORD = "smtp-test-password-41c9"


class _Inbox:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self.refused_logins = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        with self.lock:
            self.messages.append(parsed)  # type: ignore[arg-type]
            self.envelopes.append((envelope.mail_from or "", list(envelope.rcpt_tos)))
        return "250 OK"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        good = (
            isinstance(data, LoginPassword)
            and data.login == USER.encode()
            and data.password == PASSWORD.encode()
        )
        with self.lock:
            if good:
                self.logins.append(USER)
            else:
                self.refused_logins += 1
        return AuthResult(success=good, handled=False)


class SmtpServer:
    def __init__(self, folder: Path, *, tls: bool = True) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.ca_file = folder / "ca.pem"
        self.inbox = _Inbox()
        options: dict[str, Any] = {}
        if tls:
            ca = trustme.CA()
            ca.cert_pem.write_to_path(str(self.ca_file))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
            options = {
                "tls_context": context,
                "require_starttls": True,
                "authenticator": self.inbox.authenticate,
                "auth_required": True,
                "auth_require_tls": True,
            }
        self._controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, ready_timeout=10, **options
        )

    @property
    def messages(self) -> list[EmailMessage]:
        with self.inbox.lock:
            return list(self.inbox.messages)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._controller.stop()
