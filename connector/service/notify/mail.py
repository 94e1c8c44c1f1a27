"""E-mail over SMTP: STARTTLS by default (a server that does not offer it is refused), or
implicit TLS, or nothing only to a loopback relay; the password never in an error."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from connector.config.notify import EmailConfig
from connector.service.notify.base import ChannelBase, DeliveryError, tls_context
from connector.service.notify.message import Message


class EmailChannel(ChannelBase):
    kind = "email"
    config: EmailConfig

    def __init__(self, config: EmailConfig) -> None:
        super().__init__(config)

    def where(self) -> str:
        config = self.config
        return f"{config.host}:{config.smtp_port} ({config.security}), to {len(config.to)}"

    def send(self, message: Message) -> None:
        try:
            self._send(self.compose(message), message.host)
        except DeliveryError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"authentication failed: {_said(exc)}", transient=False) from None
        except smtplib.SMTPResponseException as exc:
            transient = 400 <= exc.smtp_code < 500
            raise DeliveryError(f"refused: {_said(exc)}", transient=transient) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"not supported by the server: {exc}", transient=False) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError("every recipient was refused", transient=False) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryError(f"TLS: {exc.verify_message}", transient=False) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", transient=True) from None

    def compose(self, message: Message) -> EmailMessage:
        config = self.config
        mail = EmailMessage()
        mail["From"] = config.sender
        mail["To"] = ", ".join(config.to)
        mail["Subject"] = message.subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = make_msgid(domain=config.sender.rpartition("@")[2])
        mail.set_content(message.body())
        return mail

    def _send(self, mail: EmailMessage, local_host: str) -> None:
        config = self.config
        context = tls_context(config.ca_file)
        timeout = config.timeout_seconds
        # local_hostname given: smtplib would otherwise ask DNS for this host's FQDN.
        smtp: smtplib.SMTP
        if config.security == "tls":
            smtp = smtplib.SMTP_SSL(
                config.host,
                config.smtp_port,
                local_hostname=local_host,
                timeout=timeout,
                context=context,
            )
        else:
            smtp = smtplib.SMTP(
                config.host, config.smtp_port, local_hostname=local_host, timeout=timeout
            )
        with smtp:
            smtp.ehlo()
            if config.security == "starttls":
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(
                        "the server does not offer STARTTLS (security: starttls)", transient=False
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            password = config.secret_password()
            if config.username is not None and password is not None:
                smtp.login(config.username, password)
            smtp.send_message(mail)


def _said(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error
    said = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{exc.smtp_code} {said}".strip()
