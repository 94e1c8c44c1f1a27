"""A real SCIM server on loopback (scim2-server, in memory) for the demo and the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from connector.errors import ConnectorError


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Starts on a fresh port after an exit at start, this many times in all.
START_ATTEMPTS = 3


class _ExitedAtStart(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


class LocalScimServer:
    """`scim2-server` as a subprocess. With `dynamic_tenants`, /NAME/v2 is a fresh server each."""

    def __init__(
        self,
        token: str,
        *,
        dynamic_tenants: bool = False,
        service_provider_config: Path | None = None,
        schemas: Path | None = None,
    ) -> None:
        self.token = token
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self._dynamic_tenants = dynamic_tenants
        self._spc = service_provider_config
        self._schemas = schemas  # a JSON list of schemas instead of RFC 7643's
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"{self.root}/v2"

    def tenant_url(self, tenant: str) -> str:
        return f"{self.root}/{tenant}/v2"

    def start(self, timeout: float = 90.0) -> LocalScimServer:
        """Start and wait until it answers. Generous: on a loaded machine (a test suite on two
        cores) starting Python and its imports alone has taken over 20 s. A server that exits
        at once most likely lost its port to another process (free_port() only finds a port
        that was free a moment ago): it is started again on another one."""
        executable = shutil.which("scim2-server") or str(
            Path(sys.executable).with_name("scim2-server")
        )
        if not Path(executable).exists():
            raise ConnectorError(
                "the local SCIM server is not installed; install it with: pip install 'connector[demo]'"
            )
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return self._start_once(executable, timeout)
            except _ExitedAtStart as exc:
                if attempt == START_ATTEMPTS:
                    raise ConnectorError(
                        f"the local SCIM server exited at start (code {exc.code})"
                    ) from None
                self.port = free_port()
                self.root = f"http://127.0.0.1:{self.port}"
        raise AssertionError("unreachable")

    def _start_once(self, executable: str, timeout: float) -> LocalScimServer:
        command = [
            executable,
            "--hostname",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--bearer-token",
            self.token,
        ]
        if self._dynamic_tenants:
            command.append("--dynamic-tenants")
        if self._spc is not None:
            command += ["--service-provider-config", str(self._spc)]
        if self._schemas is not None:
            command += ["--schema", str(self._schemas)]
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        probe = self.tenant_url("probe") if self._dynamic_tenants else self.base_url
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise _ExitedAtStart(self._process.returncode)
            try:
                httpx.get(
                    f"{probe}/ServiceProviderConfig",
                    headers={"Authorization": f"Bearer {self.token}"},
                    timeout=5.0,
                )
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise ConnectorError(f"the local SCIM server did not answer within {timeout:.0f} s")

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def __enter__(self) -> LocalScimServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
