"""The request rate limit, on a simulated clock (no timing in tests)."""

from __future__ import annotations

import pytest

from connector.targets.scim.client import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_burst_of_one_second_passes_then_requests_are_paced() -> None:
    clock = Clock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)

    for _ in range(5):
        limiter.acquire()
    assert clock.slept == []  # the bucket holds one second's worth

    for _ in range(5):
        limiter.acquire()
    assert clock.slept == pytest.approx([0.2] * 5)
    assert clock.now == pytest.approx(1.0)  # ten requests took two seconds' worth of rate


def test_idle_time_refills_but_never_beyond_one_second() -> None:
    clock = Clock()
    limiter = RateLimiter(2, clock=clock, sleep=clock.sleep)
    for _ in range(2):
        limiter.acquire()
    clock.now += 60  # a long pause
    for _ in range(3):
        limiter.acquire()
    assert clock.slept == [0.5]


def test_slow_rates_below_one_per_second_space_requests_out() -> None:
    clock = Clock()
    limiter = RateLimiter(0.5, clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.acquire()
    assert clock.slept == [2.0]
