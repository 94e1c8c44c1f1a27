"""Every event the code logs is documented in docs/log-events.md, under its stable name."""

from __future__ import annotations

import re
from pathlib import Path

from connector.service.logs import LIBRARY_EVENT, LIBRARY_EVENTS

REPO = Path(__file__).resolve().parents[2]
_LOG_CALL = re.compile(r"log\.(?:debug|info|warning|error|exception)\(\s*\"([a-z_]+\.[a-z_.]+)\"")
_EVENT_VARIABLE = re.compile(r"\"([a-z]+\.[a-z_]+)\" if .+ else \"([a-z]+\.[a-z_]+)\"")
_EVENT_ASSIGNED = re.compile(r"\bevent = \"([a-z]+\.[a-z_]+)\"")


def logged_events() -> set[str]:
    found: set[str] = set()
    for path in (REPO / "connector").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        found |= set(_LOG_CALL.findall(text))
        for pair in _EVENT_VARIABLE.findall(text):
            found |= set(pair)
        found |= set(_EVENT_ASSIGNED.findall(text))
    return found


def test_the_code_logs_the_events_we_expect_to_find() -> None:
    events = logged_events()
    # a guard against the pattern silently matching nothing
    assert {
        "sync.started",
        "sync.finished",
        "source.failed",
        "guard.held",
        "apply.failed",
    } <= events
    assert {
        "config.reloaded",
        "config.rejected",
        "join.conflict",
        "mapping.person_skipped",
        "mapping.school_renamed",
    } <= events


def test_every_logged_event_is_documented() -> None:
    documented = set(
        re.findall(r"^\| `([a-z_.]+)` \|", (REPO / "docs" / "log-events.md").read_text(), re.M)
    )
    assert logged_events() - documented == set()
    library = {*LIBRARY_EVENTS.values(), LIBRARY_EVENT}
    assert "scheduler.cycle_skipped" in library
    assert library - documented == set()
