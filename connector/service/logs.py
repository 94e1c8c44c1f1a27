"""structlog set-up: JSON lines for machines, a readable console format for people.

Events have stable names (`sync.finished`, `scim.request.failed`, ...) and key-value context;
every event of a cycle carries its `run_id` (bound with contextvars). Personal data is kept out
at the source: events carry counts and opaque references, never names or addresses.

The standard library's log records (APScheduler, paramiko, ...) go through the same renderer
to the same stream, so every line is one format with one kind of timestamp. Libraries speak
only at warning and above, and those whose chatter can carry personal data (request URLs with
userNames, directory entries) are held there whatever `logging.level` says. APScheduler's
known records get stable names (`LIBRARY_EVENTS`); any other record is `library.log` with its
`logger` and `message`.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

# Loggers whose records can name a person: httpx logs every request URL at INFO (our filter
# URLs hold userNames), urllib3 likewise, ldap3 whole entries at its detail levels.
_NEVER_BELOW_WARNING = ("httpx", "httpcore", "urllib3", "ldap3", "paramiko", "apscheduler")

# A known library record (its logger's prefix and its message format) -> its stable name.
LIBRARY_EVENTS: dict[tuple[str, str], str] = {
    ("apscheduler.scheduler", 'Execution of job "%s" skipped'): "scheduler.cycle_skipped",
    ("apscheduler.executors", 'Run time of job "%s" was missed'): "scheduler.cycle_missed",
    ("apscheduler.executors", 'Job "%s" raised an exception'): "scheduler.job_failed",
}
LIBRARY_EVENT = "library.log"


def configure_logging(
    format: Literal["auto", "json", "console"] = "auto",
    level: str = "info",
    stream: TextIO | None = None,
) -> None:
    stream = stream or sys.stderr
    use_console = format == "console" or (format == "auto" and stream.isatty())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer(colors=stream.isatty())
        if use_console
        else structlog.processors.JSONRenderer(ensure_ascii=False)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS.get(level, logging.INFO)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, name_library_record, structlog.processors.format_exc_info],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        pass_foreign_args=True,
    )
    _route_standard_logging(_SharedStreamHandler(stream, formatter), level)


def _route_standard_logging(handler: logging.Handler, level: str) -> None:
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _SharedStreamHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    threshold = max(_LEVELS.get(level, logging.INFO), logging.WARNING)
    for logger in (root, *map(logging.getLogger, _NEVER_BELOW_WARNING)):
        logger.setLevel(threshold)


class _SharedStreamHandler(logging.Handler):
    """Writes through structlog's own printer, so a library's line and one of ours written at
    the same moment from two threads never interleave (they share the printer's lock)."""

    def __init__(self, stream: TextIO, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self._printer = structlog.PrintLogger(file=stream)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._printer.msg(self.format(record))
        except Exception:
            self.handleError(record)


def name_library_record(_logger: WrappedLogger, _method: str, event: EventDict) -> EventDict:
    """A standard library record as one of our events: a stable name and key-value context."""
    record: logging.LogRecord = event["_record"]
    args = event.pop("positional_args", ())
    template = str(record.msg)
    for (prefix, start), name in LIBRARY_EVENTS.items():
        if record.name.startswith(prefix) and template.startswith(start):
            context = _scheduler_context(args if isinstance(args, tuple) else ())
            return {**event, **context, "event": name, "logger": record.name}
    return {**event, "event": LIBRARY_EVENT, "logger": record.name, "message": event["event"]}


def _scheduler_context(args: tuple[Any, ...]) -> dict[str, Any]:
    """The job's id (not its repr, which carries a local-time next run) and the numbers."""
    context: dict[str, Any] = {}
    if args:
        context["job"] = getattr(args[0], "id", str(args[0]))
    if len(args) > 1 and isinstance(args[1], int):
        context["max_instances"] = args[1]
    elif len(args) > 1 and hasattr(args[1], "total_seconds"):
        context["missed_by_seconds"] = round(args[1].total_seconds(), 3)
    return context
