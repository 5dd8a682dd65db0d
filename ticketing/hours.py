"""Store closed hours: when silence from a site is expected (fiscal-health.md 5, hygiene 3).

A store's closed hours are one daily window of local wall-clock time, ``"22:00-08:00"``
(crossing midnight) or ``"13:00-14:00"``. A till switched off at night is not lost: the
AGENT_LOST grace period counts only the time outside the window, so an agent lost at
22:15 with a 15-minute grace is due at 08:15 the next morning, not at 22:30 or 08:00.

All arithmetic happens on UTC instants; the zone only places the window's boundaries,
so a daylight-saving change shifts them correctly instead of stretching a duration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_WINDOW = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
#: A deadline farther than this is a bug (a window without open time), not a plan.
_MAX_ITERATIONS = 10_000


def zone(name: str) -> tzinfo:
    """The IANA zone ``name``; ``UTC`` works even without a tz database installed."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def parse_window(text: str) -> tuple[time, time]:
    """``"HH:MM-HH:MM"`` -> (start, end); equal ends are refused (no open time left)."""
    match = _WINDOW.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a window like '22:00-08:00'")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"{text!r}: hours 0-23, minutes 0-59")
    start, end = time(h1, m1), time(0, 0) if h2 == 24 else time(h2, m2)
    if start == end:
        raise ValueError(f"{text!r}: a window must not cover the whole day")
    return start, end


@dataclass(frozen=True)
class ClosedWindow:
    """One daily closed window in one zone."""

    start: time
    end: time
    tz: tzinfo

    @classmethod
    def parse(cls, text: str, tz: tzinfo) -> ClosedWindow:
        start, end = parse_window(text)
        return cls(start, end, tz)

    def _intervals(self, around: datetime) -> list[tuple[datetime, datetime]]:
        """Closed intervals (UTC) of the local days around ``around``, in order."""
        today = around.astimezone(self.tz).date()
        return [self._interval(today + timedelta(days=k)) for k in (-1, 0, 1, 2)]

    def _interval(self, day: date) -> tuple[datetime, datetime]:
        end_day = day if self.end > self.start else day + timedelta(days=1)
        begin = datetime.combine(day, self.start, self.tz).astimezone(UTC)
        return begin, datetime.combine(end_day, self.end, self.tz).astimezone(UTC)

    def closed_until(self, at: datetime) -> datetime | None:
        """The end of the closed interval containing ``at``, or None when open."""
        return next((end for begin, end in self._intervals(at) if begin <= at < end), None)

    def next_close(self, at: datetime) -> datetime:
        """The start of the first closed interval after ``at``."""
        return min(begin for begin, _ in self._intervals(at) if begin > at)


def open_deadline(start: datetime, seconds: float, window: ClosedWindow | None) -> datetime:
    """The moment ``seconds`` of open (non-closed) time have passed since ``start``."""
    at = start.astimezone(UTC)
    remaining = timedelta(seconds=seconds)
    if window is None:
        return at + remaining
    for _ in range(_MAX_ITERATIONS):
        reopens = window.closed_until(at)
        if reopens is not None:
            at = reopens
            continue
        closes = window.next_close(at)
        if at + remaining <= closes:
            return at + remaining
        remaining -= closes - at
        at = closes
    raise ValueError("closed hours leave no open time")  # pragma: no cover - parse forbids it
