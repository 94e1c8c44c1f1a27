"""The progress bar of a long `sync` or `approve` at a terminal (tqdm, on stderr).

Shown only when stderr is a terminal: never for `run` (a service), never when stderr goes to
a pipe or a file (a JSON log read by a program). The log goes to the same terminal, so while
a bar may be shown each log line is written whole through `tqdm.write`, which takes the bar
away, writes the line and draws the bar again below it: neither is garbled, and no event is
hidden. (Switching the bar off whenever info events reach the terminal would leave exactly
the long first sync without one.)
"""

from __future__ import annotations

import io
from typing import Any, TextIO

from tqdm import tqdm

from connector.progress import Snapshot

# What a phase is called on the bar, and what it counts.
_PHASES = {
    "apply": ("applying", "op"),
    "list_users": ("listing users", "user"),
    "list_groups": ("listing groups", "group"),
}


class LogLines(io.TextIOBase):
    """A text stream for log lines: each whole line goes out through `tqdm.write`."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__()
        self.stream = stream
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            tqdm.write(line, file=self.stream)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()


class TerminalBar:
    """A progress listener drawing one bar per phase (a target's applying, a listing)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self._bar: tqdm[Any] | None = None
        self._phase: tuple[str, str] | None = None

    def progressed(self, snapshot: Snapshot) -> None:
        phase = (snapshot.target, snapshot.phase)
        if snapshot.finished or phase != self._phase:
            self.close()
        if snapshot.finished or snapshot.planned <= 0:
            return  # nothing to show yet (a listing before its first page) or any more
        bar = self._bar
        if bar is None:
            what, unit = _PHASES.get(snapshot.phase, (snapshot.phase, "op"))
            bar = self._bar = tqdm(
                total=snapshot.planned,
                desc=f"{snapshot.target}: {what}",
                unit=unit,
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
            )
            self._phase = phase
        if bar.total != snapshot.planned:
            bar.total = snapshot.planned
        bar.update(snapshot.done - bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._phase = None, None
