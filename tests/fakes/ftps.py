"""A real FTPS server for the delivery tests: pyftpdlib's `TLS_FTPHandler` in a thread, on a
free loopback port, with TLS required on the control and the data channel.

Its certificate (for 127.0.0.1) comes from a throw-away CA made with `trustme` (`ca_file`); a
second CA that never signed anything (`wrong_ca_file`) is there to be refused. One user,
`USER` with `PASSWORD`, has `home` (a folder in the test's tmp) as its root; with
`read_only=True` it may list and read but not write.

Fault injection: `cut_uploads_after(n, times=1)` makes the next `times` uploads drop both the
data and the control connection once `n` bytes have arrived (the partial file stays behind, as
on a real server whose client went away).

    with FtpsServer(tmp_path / "ftps") as server:
        ...  # FTPS to 127.0.0.1:server.port as USER/PASSWORD, trusting server.ca_file
"""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
from pyftpdlib.servers import FTPServer

from connector.demo.localscim import free_port

USER = "ilt"
PASSWORD = "ftps-test-password-7d2a"
PASSIVE_PORTS = 8


class _Cuts:
    """Uploads still to be cut, and after how many bytes (shared with the handler thread)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.after = 0
        self.times = 0
        self.done = 0


def _cutting_dtp_handler(cuts: _Cuts) -> type[TLS_DTPHandler]:
    class CuttingDtpHandler(TLS_DTPHandler):  # type: ignore[misc]
        # DTPHandler binds handle_read_event to its own handle_read: hook the event.
        def handle_read_event(self) -> None:
            super().handle_read_event()
            if not self.connected:
                return
            with cuts.lock:
                due = cuts.times > 0 and self.tot_bytes_received >= cuts.after
                if due:
                    cuts.times -= 1
                    cuts.done += 1
            if due:
                control = self.cmd_channel
                self.close()
                control.close()

    return CuttingDtpHandler


class FtpsServer:
    def __init__(self, folder: Path, *, read_only: bool = False) -> None:
        self.folder = Path(folder).resolve()
        self.home = self.folder / "home"
        self.home.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA()
        self.ca_file = self.folder / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.wrong_ca_file = self.folder / "wrong-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(self.wrong_ca_file))
        self.cert_file = self.folder / "server.pem"
        ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(
            str(self.cert_file)
        )
        self.user = USER
        self.password = PASSWORD
        self.read_only = read_only
        self._cuts = _Cuts()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not started"
        return int(self._server.address[1])

    @property
    def cuts_done(self) -> int:
        with self._cuts.lock:
            return self._cuts.done

    def cut_uploads_after(self, n_bytes: int, *, times: int = 1) -> None:
        with self._cuts.lock:
            self._cuts.after = n_bytes
            self._cuts.times = times

    def _handler(self) -> type[TLS_FTPHandler]:
        authorizer = DummyAuthorizer()
        authorizer.add_user(
            self.user, self.password, str(self.home), perm="elr" if self.read_only else "elradfmw"
        )

        class Handler(TLS_FTPHandler):  # type: ignore[misc]
            pass

        Handler.authorizer = authorizer
        Handler.certfile = str(self.cert_file)
        Handler.tls_control_required = True
        Handler.tls_data_required = True
        Handler.passive_ports = [free_port() for _ in range(PASSIVE_PORTS)]
        Handler.masquerade_address = None
        Handler.dtp_handler = _cutting_dtp_handler(self._cuts)
        Handler.banner = "connector test FTPS server"
        Handler.auth_failed_timeout = 0.1  # pyftpdlib waits 3 s after a wrong password
        return Handler

    def start(self) -> FtpsServer:
        self._server = FTPServer(("127.0.0.1", 0), self._handler())
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stopping.is_set():
            # The IO loop itself, once per turn (serve_forever logs a banner at every call).
            self._server.ioloop.loop(timeout=0.02, blocking=False)
        self._server.close_all()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FtpsServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
