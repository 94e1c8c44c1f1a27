"""One notification as it is sent: a subject, a plain text for people (the `text` field that
Slack, Mattermost and Teams incoming webhooks show) and the structured fields beside it."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from connector.service.notify.events import Event

TITLES = {
    "held": "held back",
    "degraded": "degraded",
    "recovered": "recovered",
    "config_rejected": "config rejected",
    "source_failed": "source failed",
    "source_recovered": "source recovered",
    "test": "test message",
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True, slots=True)
class Message:
    event: Event
    host: str = field(default_factory=socket.gethostname)
    time: str = field(default_factory=_now)

    @property
    def title(self) -> str:
        event = self.event
        title = TITLES.get(event.kind, event.kind)
        if event.target:
            return f"{title}: target {event.target}"
        if event.source:
            return f"{title}: source {event.source}"
        return title

    @property
    def subject(self) -> str:
        return f"[connector] {self.title}"

    @property
    def text(self) -> str:
        return f"connector on {self.host}: {self.title}. {_explain(self.event)}"

    def payload(self) -> dict[str, Any]:
        event = self.event
        return {
            "text": self.text,
            "event": event.kind,
            "title": self.title,
            "target": event.target,
            "source": event.source,
            "counts": dict(event.counts),
            "reasons": list(event.reasons),
            "run_id": event.run_id,
            "host": self.host,
            "time": self.time,
        }

    def body(self) -> str:
        """The e-mail's body: the text, then each field on a line of its own."""
        lines = [self.text, ""]
        for key, value in self.payload().items():
            if key == "text" or value in (None, {}, []):
                continue
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            elif isinstance(value, list):
                value = "; ".join(value)
            lines.append(f"{key}: {value}")
        return "\n".join(lines) + "\n"


def _counted(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in counts.items())


def _explain(event: Event) -> str:
    counts = event.counts
    if event.kind == "held":
        why = " Why: " + "; ".join(event.reasons) + "." if event.reasons else ""
        return (
            f"Held back: {_counted(counts)}.{why} `connector approve --target {event.target}` "
            "shows what would change and releases it."
        )
    if event.kind == "degraded":
        return (
            f"It failed {counts.get('failing_cycles', '?')} cycles in a row; the daemon keeps "
            "trying, more slowly. The log has why (vendor.degraded, apply.failed)."
        )
    if event.kind == "recovered":
        return "It works again."
    if event.kind == "config_rejected":
        keys = f" ({', '.join(event.reasons)})" if event.reasons else ""
        return (
            f"The changed config has {counts.get('problems', '?')} problem(s){keys}; the daemon "
            "keeps running on the previous one. `connector check` names them."
        )
    if event.kind == "source_failed":
        return (
            f"It failed {counts.get('cycles_failed', '?')} cycles in a row; nothing is taken "
            "away from its people meanwhile. The log has why (source.failed)."
        )
    if event.kind == "source_recovered":
        return "It is read again."
    return "A test from `connector notify test`: this channel works."
