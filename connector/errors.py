"""Errors that end a command with a clear message instead of a traceback."""

from __future__ import annotations


class ConnectorError(Exception):
    """Base for errors the CLI turns into a plain message and an exit code."""

    exit_code = 1


class ConfigError(ConnectorError):
    """The configuration or mapping file is invalid. Exit code 2, like a usage error."""

    exit_code = 2

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{file} is not valid:\n{lines}")


class SourceError(ConnectorError):
    """A source could not be read as a whole. Never treated as 'nobody is there'."""

    def __init__(self, source: str, reason: str) -> None:
        self.source = source
        self.reason = reason
        super().__init__(f"source {source!r} failed: {reason}")


class StateLockedError(ConnectorError):
    """Another connector process holds the state file."""


class StateError(ConnectorError):
    """The state could not be opened or read (a database that refuses the connection, a
    schema newer than this connector); the message names where, never a password."""


class TargetError(ConnectorError):
    """A target (a vendor) could not be read or worked with; the cycle goes on for the others
    and says why."""


class ListenError(ConnectorError):
    """The health endpoint cannot listen where the config says (a port in use, no permission).
    Exit code 2: the config names an address this machine cannot give."""

    exit_code = 2
