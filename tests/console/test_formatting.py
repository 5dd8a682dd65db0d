"""console/formatting.py: deadlines as countdowns, red inside the SLA margin."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from kktmon.console.formatting import DASH, age_h, countdown, inside_margin, number, when

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def test_countdown_in_days_and_hours_then_hours_and_minutes() -> None:
    assert countdown(NOW + timedelta(days=3, hours=4, minutes=59), NOW) == "in 3 d 4 h"
    assert countdown(NOW + timedelta(hours=5, minutes=10), NOW) == "in 5 h 10 min"
    assert countdown(NOW + timedelta(minutes=12, seconds=30), NOW) == "in 12 min"
    assert countdown(NOW, NOW) == "in 0 min"


def test_a_passed_deadline_is_overdue() -> None:
    assert countdown(NOW - timedelta(hours=2, minutes=5), NOW) == "overdue 2 h 5 min"
    assert countdown(NOW - timedelta(days=1, hours=1), NOW) == "overdue 1 d 1 h"


def test_no_deadline_is_a_dash() -> None:
    assert countdown(None, NOW) == DASH
    assert when(None) == DASH and age_h(None) == DASH and number(None) == DASH


def test_red_inside_the_margin_and_when_overdue() -> None:
    assert inside_margin(NOW + timedelta(hours=23), NOW, 24)
    assert not inside_margin(NOW + timedelta(hours=25), NOW, 24)
    assert inside_margin(NOW - timedelta(hours=1), NOW, 24)
    assert not inside_margin(None, NOW, 24)
    assert not inside_margin(NOW + timedelta(minutes=1), NOW, 0)


def test_instants_in_the_centres_zone_and_dates_as_they_are() -> None:
    assert when(NOW, ZoneInfo("Europe/Moscow")) == "2026-05-04 15:00"
    assert when(NOW, ZoneInfo("Asia/Vladivostok")) == "2026-05-04 22:00"
    assert when(date(2026, 6, 1)) == "2026-06-01"


def test_ages_and_numbers() -> None:
    assert age_h(49.5) == "2 d 1 h"
    assert number(12.345, 1) == "12.3" and number(7) == "7"
