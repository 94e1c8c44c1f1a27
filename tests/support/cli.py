"""The command line in the tests: what a run returned (its exit code, its report on stdout and
its JSON log on stderr), and `python -m connector` as an admin runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.paths import REPO


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def log_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr.splitlines() if line.startswith("{")]

    def event(self, name: str) -> dict[str, Any]:
        """The last log event with this name."""
        matching = [e for e in self.log_events() if e.get("event") == name]
        assert matching, f"no {name} event in the log:\n{self.stderr}"
        return matching[-1]


def run_module(
    *args: str, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """`python -m connector ARGS` as a subprocess, as an admin would run it."""
    return subprocess.run(
        [sys.executable, "-m", "connector", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
