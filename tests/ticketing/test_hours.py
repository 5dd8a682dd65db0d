"""Closed hours: windows across midnight, zones, daylight saving, deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from kktmon.ticketing.hours import ClosedWindow, open_deadline, parse_window, zone

MIN = timedelta(minutes=1)


def utc(day: int, hour: int, minute: int = 0, month: int = 5) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=UTC)


def test_parse_window() -> None:
    assert parse_window("22:00-08:00") == (time(22), time(8))
    assert parse_window(" 9:30 - 24:00 ") == (time(9, 30), time(0))
    for bad in ("22-08", "25:00-01:00", "10:00-10:00", "10:60-11:00", ""):
        with pytest.raises(ValueError):
            parse_window(bad)


def test_unknown_zone_is_refused() -> None:
    assert zone("utc") is UTC
    with pytest.raises(ValueError, match="unknown time zone"):
        zone("Mars/Olympus")


def test_no_window_is_plain_addition() -> None:
    assert open_deadline(utc(4, 12), 900, None) == utc(4, 12, 15)


def test_a_window_across_midnight_pauses_the_clock() -> None:
    night = ClosedWindow.parse("22:00-08:00", UTC)
    assert night.closed_until(utc(4, 23)) == utc(5, 8)
    assert night.closed_until(utc(5, 7, 59)) == utc(5, 8)
    assert night.closed_until(utc(5, 8)) is None
    assert open_deadline(utc(4, 21, 50), 900, night) == utc(5, 8, 5)
    assert open_deadline(utc(4, 23), 900, night) == utc(5, 8, 15)  # starts inside
    assert open_deadline(utc(4, 12), 900, night) == utc(4, 12, 15)
    # Longer than a day of open time: the nights in between do not count.
    assert open_deadline(utc(4, 8), 16 * 3600, night) == utc(5, 10)


def test_a_daytime_window() -> None:
    lunch = ClosedWindow.parse("13:00-14:00", UTC)
    assert open_deadline(utc(4, 12, 55), 600, lunch) == utc(4, 14, 5)


def test_the_window_is_local_time_through_daylight_saving() -> None:
    berlin = ClosedWindow.parse("22:00-08:00", zone("Europe/Berlin"))
    # 28-29 March 2026: clocks go forward at 02:00; the night is an hour shorter in UTC.
    assert berlin.closed_until(utc(28, 21, month=3)) == utc(29, 6, month=3)  # 08:00 CEST
    assert open_deadline(utc(28, 20, 55, month=3), 600, berlin) == utc(29, 6, 5, month=3)
    moscow = ClosedWindow.parse("22:00-08:00", zone("Europe/Moscow"))
    assert moscow.closed_until(utc(4, 20)) == utc(5, 5)
