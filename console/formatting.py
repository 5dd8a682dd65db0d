"""How the pages write times, deadlines and numbers (pure functions, also Jinja filters).

A deadline is shown as a countdown a dispatcher reads at a glance ("in 3 d 4 h",
"overdue 5 h"), rendered on the server so it needs no script; the exact instant goes in
the element's ``title``. Instants are shown in the centre's zone
(``[ticketing.closed_hours] timezone``), named in the page footer.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, tzinfo
from typing import Any

DASH = "–"


def countdown(deadline: datetime | None, now: datetime) -> str:
    """``deadline`` relative to ``now``: ``in 3 d 4 h``, ``in 45 min``, ``overdue 2 h``."""
    if deadline is None:
        return DASH
    left = deadline - now
    if left >= timedelta(0):
        return "in " + duration(left)
    return "overdue " + duration(-left)


def duration(span: timedelta) -> str:
    """A span in its two largest units: ``3 d 4 h``, ``5 h 10 min``, ``12 min``."""
    minutes = int(span.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {mins} min"
    return f"{mins} min"


def inside_margin(deadline: datetime | None, now: datetime, margin_h: float) -> bool:
    """Whether ``deadline`` is closer than the SLA margin (or past): shown red."""
    return deadline is not None and deadline - now < timedelta(hours=margin_h)


def when(value: datetime | date | None, zone: tzinfo | None = None) -> str:
    """An instant as ``YYYY-MM-DD HH:MM`` in ``zone``; a date as ``YYYY-MM-DD``."""
    if value is None:
        return DASH
    if isinstance(value, datetime):
        local = value.astimezone(zone) if zone is not None else value
        return local.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def age_h(hours: float | None) -> str:
    """An age given in hours, as a duration (``2 d 3 h``)."""
    if hours is None:
        return DASH
    return duration(timedelta(hours=hours))


def number(value: Any, digits: int = 0) -> str:
    """A count or a percentage, or a dash for unknown."""
    if value is None:
        return DASH
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def filters(zone: tzinfo) -> dict[str, Any]:
    """The Jinja filters the templates use, bound to the centre's zone."""
    return {
        "when": lambda value: when(value, zone),
        "age_h": age_h,
        "number": number,
        "duration": duration,
    }
