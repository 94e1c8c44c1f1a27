"""A real OpenSSH `sshd` for the SFTP delivery tests, on a free loopback port, from a folder of
its own.

The folder holds an sshd_config, the server's own ed25519 host key, a client key pair (its
public half in authorized_keys), a known_hosts file that pins the host key
(`[127.0.0.1]:PORT ssh-ed25519 ...`), the pid file and sshd's log. The login user is the one
running the tests (root is allowed with a key only), and the SFTP subsystem is sshd's own
`internal-sftp`. sshd runs in the foreground (-D) as a child of the test; nothing in /etc is
read or touched (as root, only the privilege-separation folder /run/sshd is created if
missing, which sshd insists on).

    with Sshd(tmp_path / "ssh") as sshd:
        ...  # connect to 127.0.0.1:sshd.port as sshd.user with sshd.client_key,
             # trusting sshd.known_hosts
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
import weakref
from pathlib import Path
from types import TracebackType
from typing import Any

from connector.demo.localscim import free_port

SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = "ssh-keygen"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 5.0


class SshdError(RuntimeError):
    """sshd could not be started; the message carries its log."""


def sshd_binary() -> Path | None:
    return SSHD if os.access(SSHD, os.X_OK) else None


def keygen(path: Path, comment: str, passphrase: str = "") -> str:
    """A new ed25519 key pair at `path` (and `path`.pub); the public key line."""
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", passphrase, "-C", comment, "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def known_hosts_line(host: str, port: int, public_key_line: str) -> str:
    """A known_hosts entry: `host` for port 22, `[host]:port` for any other."""
    name = host if port == 22 else f"[{host}]:{port}"
    key_type, key = public_key_line.split()[:2]
    return f"{name} {key_type} {key}\n"


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT_SECONDS)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
            sock.settimeout(0.5)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


class Sshd:
    """One sshd process with its own config, keys and log in `folder`, on 127.0.0.1."""

    def __init__(self, folder: Path, *, read_only: bool = False) -> None:
        """`read_only`: the SFTP subsystem refuses every write (`internal-sftp -R`), which
        works even for root, whom file modes do not stop."""
        binary = sshd_binary()
        if binary is None:
            raise SshdError(f"sshd is not installed (no {SSHD})")
        self._binary = binary
        self.folder = Path(folder).resolve()
        self.folder.mkdir(parents=True, exist_ok=True)
        self.read_only = read_only
        self.user = getpass.getuser()
        self.port = free_port()
        self.host_key = self.folder / "ssh_host_ed25519_key"
        self.host_public_key = keygen(self.host_key, "test-host")
        self.client_key = self.folder / "client_ed25519"
        client_public = keygen(self.client_key, "connector-test")
        self.authorized_keys = self.folder / "authorized_keys"
        self.authorized_keys.write_text(client_public + "\n")
        self.known_hosts = self.folder / "known_hosts"
        self.known_hosts.write_text(self.known_hosts_entry())
        self.log_file = self.folder / "sshd.log"
        self.config_file = self.folder / "sshd_config"
        self._process: subprocess.Popen[bytes] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None

    def authorize(self, public_key_line: str) -> None:
        """Let another client key log in as well (sshd reads authorized_keys per login)."""
        with self.authorized_keys.open("a") as keys:
            keys.write(public_key_line + "\n")

    def known_hosts_entry(self, port: int | None = None) -> str:
        """The known_hosts line that pins this server's host key (for `port`, say a proxy's
        in front of it; by default its own)."""
        return known_hosts_line("127.0.0.1", port or self.port, self.host_public_key)

    def write_wrong_known_hosts(self, path: Path, port: int | None = None) -> Path:
        """A known_hosts file at `path` that pins another ed25519 key for this server (what a
        changed or impostor host key looks like to the client)."""
        other = keygen(path.with_name(path.name + "-other-host-key"), "another-host")
        path.write_text(known_hosts_line("127.0.0.1", port or self.port, other))
        return path

    def _write_config(self) -> None:
        self.config_file.write_text(
            f"""\
ListenAddress 127.0.0.1:{self.port}
HostKey {self.host_key}
PidFile {self.folder / "sshd.pid"}
AuthorizedKeysFile {self.authorized_keys}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowUsers {self.user}
UsePAM no
StrictModes no
Subsystem sftp internal-sftp{" -R" if self.read_only else ""}
LogLevel VERBOSE
MaxStartups 100
"""
        )

    def start(self) -> Sshd:
        if self._process is not None and self._process.poll() is None:
            return self
        self._write_config()
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self._process = subprocess.Popen(
            [str(self._binary), "-D", "-e", "-E", str(self.log_file), "-f", str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._finalizer = weakref.finalize(self, _kill, self._process)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process.wait()
                raise SshdError(f"sshd exited at start:\n{self.log()}")
            if _accepts(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise SshdError(f"sshd did not accept connections in time:\n{self.log()}")

    def stop(self) -> None:
        if self._process is not None:
            _kill(self._process)
            self._process = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def log(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def __enter__(self) -> Sshd:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
