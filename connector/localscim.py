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
        cores) starting Python and its imports alone has taken over 20 s."""
        executable = shutil.which("scim2-server") or str(
            Path(sys.executable).with_name("scim2-server")
        )
        if not Path(executable).exists():
            raise ConnectorError(
                "the local SCIM server is not installed; install it with: pip install 'connector[demo]'"
            )
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
                raise ConnectorError(
                    f"the local SCIM server exited at start (code {self._process.returncode})"
                )
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
