"""What a CLI run returned: its exit code, its report on stdout and its JSON log on stderr."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


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
