"""Delivering a rendered file: by SFTP (`sftp.py`), FTPS (`ftps.py`) or into a local folder
(`local.py`), each behind the same small `Delivery` protocol.

Every method writes to a temporary name beside the real one, checks the size that arrived, and
only then renames it over the real name: the vendor sees the old file or the new one, never a
half-written one. A transient failure (no connection, a timeout, a connection cut mid-upload)
is tried again with exponential back-off and jitter, at most `max_retries` more times; a host
key that is unknown or changed, a refused login or a certificate that does not verify is not:
it will not get better by asking again.

Errors and log lines say where (the delivery's `label`, which carries no secret) and why;
never the file's content, a password or a key.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)
from tenacity.wait import wait_base

from connector.errors import TargetError

if TYPE_CHECKING:
    from connector.config.targets import DeliveryConfig

log = structlog.get_logger(__name__)

# Back-off between attempts: 2 s, 4 s, 8 s ... at most 60 s, plus up to 2 s of jitter.
DEFAULT_WAIT: wait_base = wait_exponential_jitter(multiplier=2.0, max=60.0, jitter=2.0)

# A name the delivery writes: one plain file name, no folder, not hidden (the temporary names
# are hidden ones), no control characters.
_FILE_NAME = re.compile(r"^[^/\\\x00-\x1f.][^/\\\x00-\x1f]*$")


class DeliveryError(TargetError):
    """A delivery failed: where (`label`) and why. Carries no content and no secret.

    `transient`: worth trying again (no connection, a timeout, a cut connection)."""

    def __init__(self, label: str, reason: str, *, transient: bool = False) -> None:
        self.label = label
        self.reason = reason
        self.transient = transient
        super().__init__(f"{label}: {reason}")


@dataclass(frozen=True)
class Delivered:
    """A file that arrived: its name, size in bytes and SHA-256 (hex) of what was sent."""

    name: str
    size: int
    sha256: str


class Delivery(Protocol):
    label: str
    uploads: int

    def deliver(self, file_name: str, content: bytes) -> Delivered: ...

    def check(self) -> list[tuple[str, str]]: ...

    def close(self) -> None: ...


def remote_place(
    scheme: str, username: str, host: str, port: int, directory: str
) -> tuple[str, str]:
    """A server's folder as used (no trailing slash, `/` for the root) and the label that
    names the place in errors and logs (no secret in it)."""
    folder = directory.rstrip("/") or "/"
    return folder, f"{scheme}://{username}@{host}:{port}/{folder.lstrip('/')}"


def temporary_name(file_name: str, token: str) -> str:
    """The hidden name a file is written under before it is renamed into place."""
    return f".{file_name}.{token}.part"


def is_temporary_of(entry: str, file_name: str) -> bool:
    """Whether a directory entry is one of this delivery's temporary files for `file_name`
    (one an earlier, interrupted attempt could not remove)."""
    prefix = f".{file_name}."
    middle = entry[len(prefix) : -len(".part")]
    return (
        entry.startswith(prefix)
        and entry.endswith(".part")
        and re.fullmatch(r"[0-9a-f]{12}", middle) is not None
    )


def check_file_name(label: str, file_name: str) -> None:
    if not _FILE_NAME.match(file_name) or file_name.endswith(".part"):
        raise DeliveryError(label, f"not a plain file name: {file_name!r}")


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, DeliveryError) and exc.transient


class RetryingDelivery(ABC):
    """What every method shares: the name check, the retries, the count and the log lines.
    A method implements `_upload_once` (raising `DeliveryError`, transient or not)."""

    def __init__(self, label: str, *, max_retries: int, wait: wait_base | None = None) -> None:
        self.label = label
        self.uploads = 0
        self._max_retries = max_retries
        self._wait = wait if wait is not None else DEFAULT_WAIT

    @contextlib.contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        """Any failure while `doing` something becomes a DeliveryError, as `_error` judges it
        (transient or not); one that already is one passes as it is."""
        try:
            yield
        except DeliveryError:
            raise
        except Exception as exc:
            raise self._error(doing, exc) from None

    def _error(self, doing: str, exc: Exception) -> DeliveryError:
        """What a method's failure means; by default worth another try."""
        return DeliveryError(self.label, f"{doing}: {type(exc).__name__}", transient=True)

    def deliver(self, file_name: str, content: bytes) -> Delivered:
        check_file_name(self.label, file_name)
        digest = hashlib.sha256(content).hexdigest()
        retrying = Retrying(
            stop=stop_after_attempt(self._max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception(_is_transient),
            before_sleep=self._log_retry,
            reraise=True,
        )
        attempts = 0
        try:
            for attempt in retrying:
                with attempt:
                    attempts = attempt.retry_state.attempt_number
                    self._upload_once(file_name, content)
        except DeliveryError as exc:
            log.error(
                "delivery.failed",
                delivery=self.label,
                file=file_name,
                attempts=attempts,
                error=exc.reason,
                transient=exc.transient,
            )
            raise
        self.uploads += 1
        log.info(
            "delivery.uploaded",
            delivery=self.label,
            file=file_name,
            bytes=len(content),
            sha256=digest[:12],
            attempts=attempts,
        )
        return Delivered(file_name, len(content), digest)

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning(
            "delivery.retrying",
            delivery=self.label,
            attempt=state.attempt_number,
            error=exc.reason if isinstance(exc, DeliveryError) else type(exc).__name__,
            wait_seconds=round(state.upcoming_sleep, 2),
        )

    @abstractmethod
    def _upload_once(self, file_name: str, content: bytes) -> None:
        """One attempt: the content under a temporary name, its size checked, renamed over
        `file_name`; the temporary file removed on failure where the connection allows."""

    @abstractmethod
    def check(self) -> list[tuple[str, str]]: ...

    def close(self) -> None:  # noqa: B027 (a method may keep nothing open)
        """Nothing is kept open between deliveries; here for the protocol."""


PROBE_CONTENT = b"connector check: this file is removed again at once\n"


def probe_name(token: str) -> str:
    return f".connector-check.{token}.part"


def build_delivery(
    config: DeliveryConfig, *, max_retries: int, wait: wait_base | None = None
) -> Delivery:
    """The delivery for a file target's `delivery:` block. `wait`: the back-off between
    attempts (tests pass a short one)."""
    from connector.config.targets import FtpsDeliveryConfig, SftpDeliveryConfig

    if isinstance(config, SftpDeliveryConfig):
        from connector.targets.file.sftp import SftpDelivery

        return SftpDelivery(config, max_retries=max_retries, wait=wait)
    if isinstance(config, FtpsDeliveryConfig):
        from connector.targets.file.ftps import FtpsDelivery

        return FtpsDelivery(config, max_retries=max_retries, wait=wait)
    from connector.targets.file.local import LocalDelivery

    return LocalDelivery(config, max_retries=max_retries, wait=wait)
