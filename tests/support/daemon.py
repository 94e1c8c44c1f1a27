"""`connector run` as a real subprocess, and waiting for what it should bring about."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.support.paths import REPO
from tests.support.workspace import Workspace


def wait_for(condition: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (httpx.HTTPError, KeyError, OSError):
            value = None
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class DaemonProcess:
    def __init__(
        self, workspace: Workspace, env: dict[str, str], log_name: str = "daemon.log"
    ) -> None:
        self.log_path = workspace.root / log_name
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "connector", "--config", str(workspace.config_path), "run"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **env},
        )

    def lines(self) -> list[str]:
        """The whole lines written so far (not one the daemon is still writing)."""
        text = self.log_path.read_text(encoding="utf-8")
        return text[: text.rfind("\n") + 1].splitlines()

    def events(self) -> list[dict[str, Any]]:
        """The JSON log events (see `stray_lines` for the rest)."""
        return [json.loads(line) for line in self.lines() if line.startswith("{")]

    def stray_lines(self) -> list[str]:
        """Lines that are not JSON log events (in `logging.format: json`, there should be none)."""
        return [line for line in self.lines() if not line.startswith("{")]

    def count(self, event: str) -> int:
        return sum(1 for e in self.events() if e["event"] == event)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=20)
        finally:
            self._log.close()
