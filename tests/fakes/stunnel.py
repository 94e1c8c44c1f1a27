"""A real stunnel (Debian `stunnel4`) as the TLS terminator in front of a vendor: it accepts
TLS 1.2+ on a free loopback port, demands a client certificate signed by the given CA (mutual
TLS), and forwards the plain bytes to the vendor's HTTP port - as a municipality's or a
vendor's nginx/stunnel in front of a SCIM server does.

stunnel runs in the foreground as a child of the test, from a folder of its own (its config and
its log); nothing in /etc is read. Its log says, per connection, how many bytes reached the
vendor: `bytes_forwarded()` is how a test proves that nothing was sent.

    with Stunnel(tmp_path / "stunnel", backend_port, cert, key, client_ca) as tls:
        ...  # https://127.0.0.1:{tls.port}
"""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from connector.demo.localscim import free_port

START_TIMEOUT_SECONDS = 10.0
# "Connection closed: 0 byte(s) sent to TLS, 0 byte(s) sent to socket"
_CLOSED = re.compile(r"(\d+) byte\(s\) sent to TLS, (\d+) byte\(s\) sent to socket")


class StunnelError(RuntimeError):
    """stunnel could not be started; the message carries its log."""


def stunnel_binary() -> str | None:
    return shutil.which("stunnel4") or shutil.which("stunnel")


class Stunnel:
    def __init__(
        self, folder: Path, backend_port: int, cert: Path, key: Path, client_ca: Path
    ) -> None:
        self.folder = folder
        self.port = free_port()
        self.log = folder / "stunnel.log"
        self.config = folder / "stunnel.conf"
        self._backend_port = backend_port
        self._cert, self._key, self._client_ca = cert, key, client_ca
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> Stunnel:
        binary = stunnel_binary()
        if binary is None:
            raise StunnelError("stunnel is not installed (Debian: stunnel4)")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.config.write_text(
            "\n".join(
                [
                    "foreground = yes",
                    "pid =",
                    "debug = 5",
                    f"output = {self.log}",
                    "[vendor]",
                    f"accept = 127.0.0.1:{self.port}",
                    f"connect = 127.0.0.1:{self._backend_port}",
                    f"cert = {self._cert}",
                    f"key = {self._key}",
                    f"CAfile = {self._client_ca}",
                    "requireCert = yes",
                    "verifyChain = yes",
                    "sslVersionMin = TLSv1.2",
                    "",
                ]
            )
        )
        self._process = subprocess.Popen(
            [binary, str(self.config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise StunnelError(f"stunnel exited at start: {self._log_text()}")
            if _listening(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise StunnelError(f"stunnel did not listen within {START_TIMEOUT_SECONDS} s")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def bytes_forwarded(self) -> list[int]:
        """Per closed connection: how many bytes reached the vendor behind the tunnel."""
        return [int(m.group(2)) for m in _CLOSED.finditer(self._log_text())]

    def _log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> Stunnel:
        return self.start()

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
