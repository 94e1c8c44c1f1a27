"""The standard library's log records come out as our events: one format, one kind of
timestamp, stable names, and nothing from the chatty libraries whose records name people."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import structlog

from connector.service.logs import LIBRARY_EVENT, configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers = list(root.handlers)
    names = ("", "httpx", "httpcore", "urllib3", "ldap3", "paramiko", "apscheduler")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    root.handlers[:] = handlers
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class Job:
    id = "cycle"

    def __str__(self) -> str:
        return "Daemon._cycle (next run at: 2026-12-04 23:10:00 CET)"


def test_library_records_are_json_events_with_our_timestamps(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    structlog.get_logger("t").info("daemon.started")
    logging.getLogger("apscheduler.scheduler").warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)', Job(), 1
    )
    logging.getLogger("apscheduler.executors.default").warning(
        'Run time of job "%s" was missed by %s', Job(), timedelta(seconds=61.5)
    )
    logging.getLogger("paramiko.transport").error("Socket exception: %s", "Connection reset")
    ours, skipped, missed, other = lines(stream)
    assert skipped == {
        "event": "scheduler.cycle_skipped",
        "level": "warning",
        "timestamp": skipped["timestamp"],
        "logger": "apscheduler.scheduler",
        "job": "cycle",
        "max_instances": 1,
    }
    assert (missed["event"], missed["job"], missed["missed_by_seconds"]) == (
        "scheduler.cycle_missed",
        "cycle",
        61.5,
    )
    assert other == {
        "event": LIBRARY_EVENT,
        "level": "error",
        "timestamp": other["timestamp"],
        "logger": "paramiko.transport",
        "message": "Socket exception: Connection reset",
    }
    for event in (ours, skipped, missed, other):
        assert event["timestamp"].endswith("Z") and "T" in event["timestamp"]
    assert "CET" not in stream.getvalue()


def test_chatty_libraries_stay_quiet_even_at_debug(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("json", "debug", stream=stream)
    url = 'https://vendor.example/scim/v2/Users?filter=userName eq "asa.oberg"'
    for name in ("httpx", "httpcore.http11", "urllib3.connectionpool", "ldap3", "paramiko"):
        logging.getLogger(name).info("HTTP Request: GET %s", url)
        logging.getLogger(name).debug("HTTP Request: GET %s", url)
    logging.getLogger("apscheduler.executors.default").info('Running job "%s"', Job())
    assert stream.getvalue() == ""
    logging.getLogger("httpx").warning("something odd")
    assert lines(stream)[0]["event"] == LIBRARY_EVENT


def test_at_level_error_library_warnings_are_quiet_too(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("json", "error", stream=stream)
    for name in ("apscheduler.scheduler", "paramiko.transport", "somelib"):
        logging.getLogger(name).warning("a warning")
    assert stream.getvalue() == ""
    logging.getLogger("paramiko.transport").error("an error")
    assert lines(stream)[0]["level"] == "error"


def test_library_records_are_quiet_below_warning_and_an_exception_is_one_line(
    restore_logging: None,
) -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream=stream)
    logging.getLogger("somelib").info("chatter")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("apscheduler.executors.default").exception(
            'Job "%s" raised an exception', Job()
        )
    (failed,) = lines(stream)
    assert failed["event"] == "scheduler.job_failed"
    assert failed["job"] == "cycle"
    assert "ValueError: boom" in failed["exception"]


def test_configuring_twice_leaves_one_handler_and_the_console_format_works(
    restore_logging: None,
) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "info", stream=first)
    configure_logging("console", "info", stream=second)
    logging.getLogger("apscheduler.scheduler").warning(
        'Execution of job "%s" skipped: maximum number of running instances reached (%d)', Job(), 1
    )
    assert first.getvalue() == ""
    text = second.getvalue()
    assert "scheduler.cycle_skipped" in text and "job=cycle" in text
    assert not text.startswith("{")
