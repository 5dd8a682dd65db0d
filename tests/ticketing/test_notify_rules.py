"""When a client is told: deadlines from a register's facts, thresholds, digest times."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kktmon.ticketing import notify_rules as rules
from kktmon.ticketing.notify_wording import days_phrase, plural_days

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
DAYS = [30, 14, 7, 3]
MSK = timezone(timedelta(hours=3))


def _facts(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "model": "ШТРИХ-М-01Ф",
        "serial": "0012345678",
        "rnm": "0000000001012345",
        "fn_serial": "9999078900001234",
        "fn_valid_until": "2026-12-26",
        "taken_at": datetime(2026, 11, 26, 12, 0, tzinfo=MSK).isoformat(),
        "block_at": datetime(2026, 12, 26, tzinfo=MSK).isoformat(),
        "block_reason": "fn_expiry",
    }
    return base | changes


def test_the_drives_end_is_midnight_of_its_last_date_in_the_registers_zone() -> None:
    (deadline,) = rules.deadlines("s1", "shtrih-1", _facts(block_at=None, block_reason=None))
    assert deadline.cause == "fn_expiry" and deadline.subject == "9999078900001234"
    assert deadline.block_at == datetime(2026, 12, 26, tzinfo=MSK)
    assert deadline.block_at.astimezone(UTC).hour == 21  # 25.12 21:00 UTC


def test_the_agents_own_block_at_wins_for_its_reason() -> None:
    exact = datetime(2026, 12, 25, 23, 59, tzinfo=MSK)
    (deadline,) = rules.deadlines("s1", "k", _facts(block_at=exact.isoformat()))
    assert deadline.block_at == exact


def test_memory_and_ofd_deadlines() -> None:
    first = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)
    facts = _facts(
        block_reason="fn_memory_full",
        block_at=datetime(2026, 12, 5, tzinfo=UTC).isoformat(),
        unsent_count=12,
        first_unsent_at=first.isoformat(),
        first_unsent_number=4711,
    )
    found = {d.cause: d for d in rules.deadlines("s1", "k", facts)}
    assert set(found) == {"fn_expiry", "fn_memory_full", "ofd_30_days"}
    assert found["fn_memory_full"].block_at == datetime(2026, 12, 5, tzinfo=UTC)
    assert found["fn_memory_full"].subject == "9999078900001234"
    assert found["ofd_30_days"].block_at == first + timedelta(days=30)
    assert found["ofd_30_days"].subject == "4711"
    drained = facts | {"unsent_count": 0}
    assert "ofd_30_days" not in {d.cause for d in rules.deadlines("s1", "k", drained)}


def test_a_register_without_dates_has_no_deadline() -> None:
    assert rules.deadlines("s1", "k", {"model": "x", "fn_valid_until": "garbage"}) == []


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (timedelta(days=40), None),
        (timedelta(days=30, seconds=1), None),
        (timedelta(days=30), 30),
        (timedelta(days=20), 30),
        (timedelta(days=14), 14),
        (timedelta(days=10), 14),
        (timedelta(days=5), 7),
        (timedelta(hours=1), 3),
        (timedelta(0), None),  # it stops now: a ticket matter, not a warning
        (timedelta(days=-2), None),
    ],
)
def test_the_nearest_crossed_threshold(left: timedelta, expected: int | None) -> None:
    assert rules.threshold_due(NOW + left, NOW, DAYS) == expected


def test_a_threshold_is_news_only_when_nothing_as_near_was_told() -> None:
    assert rules.is_news(14, [])
    assert rules.is_news(7, [30, 14])
    assert not rules.is_news(14, [14])
    assert not rules.is_news(30, [14])  # a date that moved back out is not told again


def test_time_passing_tells_each_threshold_once() -> None:
    """A clock walking day by day to the deadline: the thresholds in order, each once."""
    block_at = NOW + timedelta(days=45)
    told: list[int] = []
    for day in range(46):
        now = NOW + timedelta(days=day)
        due = rules.threshold_due(block_at, now, DAYS)
        if due is not None and rules.is_news(due, told):
            told.append(due)
    assert told == [30, 14, 7, 3]


def test_a_worker_down_for_a_week_tells_only_what_is_still_true() -> None:
    block_at = NOW + timedelta(days=45)
    told: list[int] = []
    for day in [*range(16), *range(40, 46)]:  # days 16-39 missed
        due = rules.threshold_due(block_at, NOW + timedelta(days=day), DAYS)
        if due is not None and rules.is_news(due, told):
            told.append(due)
    assert told == [30, 7, 3]


def test_the_next_digest_is_store_local() -> None:
    yekaterinburg = ZoneInfo("Asia/Yekaterinburg")  # UTC+5
    at, key = rules.next_digest(NOW, yekaterinburg, time(9, 0))  # 14:00 there: tomorrow
    assert (at, key) == (datetime(2026, 11, 27, 4, 0, tzinfo=UTC), "2026-11-27")
    early = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)  # 08:00 there: today
    assert rules.next_digest(early, yekaterinburg, time(9, 0)) == (
        datetime(2026, 11, 26, 4, 0, tzinfo=UTC),
        "2026-11-26",
    )
    exactly = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    assert rules.next_digest(exactly, yekaterinburg, time(9, 0))[1] == "2026-11-27"


def test_the_digest_across_a_dst_change() -> None:
    berlin = ZoneInfo("Europe/Berlin")  # clocks go forward on 2026-03-29 at 02:00
    before = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)
    at, key = rules.next_digest(before, berlin, time(9, 0))
    assert key == "2026-03-29" and at == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)


def test_days_are_counted_in_store_local_calendar_days() -> None:
    block = datetime(2026, 12, 26, tzinfo=MSK)
    assert days_phrase(block, datetime(2026, 12, 12, 10, tzinfo=MSK), MSK, "ru") == (
        "через 14 дней"
    )
    assert days_phrase(block, datetime(2026, 12, 25, 23, tzinfo=MSK), MSK, "ru") == "завтра"
    assert days_phrase(block, datetime(2026, 12, 4, tzinfo=MSK), MSK, "en") == "in 22 days"
    assert [plural_days(n) for n in (1, 2, 5, 11, 14, 21, 22, 25, 111)] == [
        "день",
        "дня",
        "дней",
        "дней",
        "дней",
        "день",
        "дня",
        "дней",
        "дней",
    ]
