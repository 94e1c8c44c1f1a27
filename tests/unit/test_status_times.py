"""`status` gives UTC with the local time (`daemon.timezone`) beside it."""

from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest

from connector.reports.status import when

STOCKHOLM = ZoneInfo("Europe/Stockholm")


@pytest.mark.parametrize(
    ("iso", "shown"),
    [
        ("2026-12-04T22:10:00+00:00", "2026-12-04 22:10 UTC (23:10 Europe/Stockholm)"),
        ("2026-07-04T22:10:00+00:00", "2026-07-04 22:10 UTC (2026-07-05 00:10 Europe/Stockholm)"),
        ("2026-03-29T00:59:00+00:00", "2026-03-29 00:59 UTC (01:59 Europe/Stockholm)"),
        ("2026-03-29T01:00:00+00:00", "2026-03-29 01:00 UTC (03:00 Europe/Stockholm)"),
        ("2026-12-04T23:10:00+01:00", "2026-12-04 22:10 UTC (23:10 Europe/Stockholm)"),
        ("2026-12-04T22:10:00", "2026-12-04 22:10 UTC (23:10 Europe/Stockholm)"),  # naive: UTC
    ],
)
def test_utc_and_the_local_time(iso: str, shown: str) -> None:
    assert when(iso, STOCKHOLM) == shown


def test_another_zone() -> None:
    assert when("2026-12-04T22:10:00+00:00", ZoneInfo("America/New_York")) == (
        "2026-12-04 22:10 UTC (17:10 America/New_York)"
    )
