"""Unit tests for connector.scim.client.parse_retry_after (RFC 9110 section 10.2.3)."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import pytest

from connector.targets.scim.client import MAX_RETRY_AFTER_SECONDS, parse_retry_after


def http_date(offset: timedelta) -> str:
    return email.utils.format_datetime(datetime.now(UTC) + offset, usegmt=True)


def test_delay_seconds() -> None:
    assert parse_retry_after("5") == 5.0


def test_delay_seconds_with_surrounding_whitespace() -> None:
    assert parse_retry_after(" 7 ") == 7.0


def test_zero_seconds() -> None:
    assert parse_retry_after("0") == 0.0


def test_http_date_in_the_future() -> None:
    delay = parse_retry_after(http_date(timedelta(seconds=10)))
    assert delay is not None
    assert 8.0 <= delay <= 10.0


def test_http_date_in_the_past_is_zero() -> None:
    assert parse_retry_after(http_date(timedelta(minutes=-5))) == 0.0


def test_http_date_without_zone_counts_as_utc() -> None:
    naive = (datetime.now(UTC) + timedelta(seconds=60)).strftime("%a, %d %b %Y %H:%M:%S -0000")
    delay = parse_retry_after(naive)
    assert delay is not None
    assert 55.0 <= delay <= 60.0


@pytest.mark.parametrize("value", ["soon", "1.5", "-3", "Mon, 99 Foo 2026", "5 seconds"])
def test_garbage_is_none(value: str) -> None:
    assert parse_retry_after(value) is None


@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_huge_seconds_are_capped() -> None:
    assert parse_retry_after("999999999") == MAX_RETRY_AFTER_SECONDS


def test_far_future_date_is_capped() -> None:
    assert parse_retry_after(http_date(timedelta(days=3))) == MAX_RETRY_AFTER_SECONDS
