"""The daemon's notifier: events found after each cycle (and a rejected config) are rate-limited
and handed to a thread of their own that delivers them, so a slow or failing channel never
holds up a cycle. A transient failure is tried again a couple of times; every outcome is logged
(`notify.sent`, `notify.failed`). On shutdown, what is still queued gets a short grace period.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence

import structlog

from connector.config.notify import NotifyConfig
from connector.cycle.result import CycleResult
from connector.service.notify.base import Channel, DeliveryError
from connector.service.notify.events import Detector, Event, config_keys
from connector.service.notify.limits import RateLimiter
from connector.service.notify.mail import EmailChannel
from connector.service.notify.message import Message
from connector.service.notify.webhook import WebhookChannel

log = structlog.get_logger(__name__)

# Waits before the second and the third try of a transient failure.
RETRY_DELAYS = (2.0, 8.0)
GRACE_SECONDS = 10.0
QUEUE_SIZE = 100

Job = tuple[Message, list[Channel]]


def build_channels(config: NotifyConfig) -> list[Channel]:
    channels: list[Channel] = [WebhookChannel(hook) for hook in config.webhooks]
    channels += [EmailChannel(mail) for mail in config.email]
    return channels


def deliver(
    channel: Channel,
    message: Message,
    delays: Sequence[float] = RETRY_DELAYS,
    sleep: Callable[[float], object] = time.sleep,
) -> str | None:
    """Send with retries; None when delivered, else why not (logged either way)."""
    fields = {"channel": channel.name, "kind": channel.kind, "notification": message.event.kind}
    for attempt, delay in enumerate([*delays, None], start=1):
        try:
            channel.send(message)
        except DeliveryError as exc:
            if exc.transient and delay is not None:
                sleep(delay)
                continue
            log.error("notify.failed", **fields, attempts=attempt, error=exc.reason)
            return exc.reason
        except Exception as exc:  # a bug in a channel must not end the sending thread
            log.error("notify.failed", **fields, attempts=attempt, error=type(exc).__name__)
            return type(exc).__name__
        log.info("notify.sent", **fields, attempts=attempt)
        return None
    raise AssertionError("unreachable: the last try has no delay")


class Notifier:
    def __init__(
        self,
        config: NotifyConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        retry_delays: Sequence[float] = RETRY_DELAYS,
    ) -> None:
        self.channels = build_channels(config)
        self._detector = Detector(config.source_failed_after)
        self._limiter = RateLimiter(config.min_interval_seconds, config.max_per_hour, clock)
        self._retry_delays = tuple(retry_delays)
        self._queue: queue.Queue[Job | None] = queue.Queue(QUEUE_SIZE)
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    def reconfigure(self, config: NotifyConfig) -> None:
        """A reloaded config: its channels and limits, keeping what was seen and sent."""
        self.channels = build_channels(config)
        self._detector.source_failed_after = config.source_failed_after
        self._limiter.min_interval_seconds = config.min_interval_seconds
        self._limiter.max_per_hour = config.max_per_hour

    def observe(self, results: Sequence[CycleResult], sources: Sequence[str]) -> None:
        """After a cycle (the worker thread): whatever it brought about, told. Never raises."""
        try:
            for event in self._detector.observe(results, sources):
                self.notify(event)
        except Exception:
            log.exception("notify.crashed")

    def config_rejected(self, problems: Sequence[str]) -> None:
        keys = tuple(config_keys(problems))
        self.notify(Event("config_rejected", counts={"problems": len(problems)}, reasons=keys))

    def notify(self, event: Event) -> None:
        channels = [channel for channel in self.channels if channel.gets(event.kind)]
        if not channels:
            return
        why_not = self._limiter.admit(event)
        if why_not is not None:
            log.info("notify.suppressed", notification=event.kind, why=why_not)
            return
        try:
            self._queue.put_nowait((Message(event), channels))
        except queue.Full:
            log.error("notify.failed", notification=event.kind, error="the queue is full")
            return
        self._start()

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="notify", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            message, channels = job
            for channel in channels:
                deliver(channel, message, self._retry_delays, self._closing.wait)

    def close(self, grace_seconds: float = GRACE_SECONDS) -> None:
        """Deliver what is queued within `grace_seconds` (no more waiting between tries)."""
        if self._thread is None:
            return
        deadline = time.monotonic() + grace_seconds
        self._closing.set()
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=grace_seconds)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("notify.unsent", messages=max(1, self._queue.qsize() - 1))
