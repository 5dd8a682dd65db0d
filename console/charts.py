"""Tiny SVG charts drawn on the server: a register's history, the plan's timeline.

Service-centre LANs are often offline and the console ships no JavaScript library, so a
chart is a string of SVG built here and put into the page as it is. Every function is
pure (data in, markup out) and escapes every piece of text it writes, so a register's
name or a label from the store can never become markup. Gaps in a series (``None``) break
the line instead of dropping to zero: a register that was not read is not a register with
no documents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from html import escape

WIDTH, HEIGHT = 640, 180
#: Room for the axis labels: left, right, top, bottom.
PAD_L, PAD_R, PAD_T, PAD_B = 48, 12, 22, 24
EMPTY = "no data yet"


@dataclass(frozen=True)
class Series:
    """One line: values at instants; ``None`` where nothing was recorded."""

    name: str
    points: Sequence[tuple[datetime, float | None]]
    css: str = "s0"


def text(value: object) -> str:
    """``value`` as SVG text content or attribute value."""
    return escape(str(value), quote=True)


def _frame(title: str, body: Sequence[str], width: int, height: int) -> str:
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}"'
        f' width="{width}" height="{height}" role="img" aria-label="{text(title)}">'
        f"<title>{text(title)}</title>"
        f'<text class="chart-title" x="{PAD_L}" y="14">{text(title)}</text>'
    )
    return head + "".join(body) + "</svg>"


def _empty(title: str, width: int, height: int) -> str:
    note = f'<text class="chart-empty" x="{width // 2}" y="{height // 2}">{EMPTY}</text>'
    return _frame(title, [note], width, height)


def nice_max(value: float, *, whole: bool = False) -> float:
    """A round upper bound for an axis that holds ``value`` (1, 2, 5 times a power of 10).

    ``whole``: the axis counts things (registers, documents, days), so its ticks at 0,
    half and the top must be whole numbers: the top is even, at least 2 (a top of 1 or
    5 would put a tick at 0.5 or 2.5 of a register).
    """
    top = _round_up(value)
    if whole and top % 2:
        top = max(2.0, 2.0 * math.ceil(value / 2))
    return top


def _round_up(value: float) -> float:
    if value <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= value:
        step *= 10
    while step > value:
        step /= 10
    for factor in (1, 2, 5, 10):
        if step * factor >= value:
            return step * factor
    return step * 10  # pragma: no cover - the loop above always returns


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def _y_axis(top: float, x0: int, y0: int, y1: int, unit: str) -> list[str]:
    """Gridlines at 0, half and the top, with their values."""
    out = []
    for share in (0.0, 0.5, 1.0):
        y = y0 - (y0 - y1) * share
        label = _number(top * share) + (f" {unit}" if unit and share == 1.0 else "")
        out.append(f'<line class="grid" x1="{x0}" y1="{y:.1f}" x2="{WIDTH - PAD_R}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{x0 - 4}" y="{y + 4:.1f}">{text(label)}</text>')
    return out


def line_chart(
    series: Sequence[Series],
    *,
    title: str,
    unit: str = "",
    width: int = WIDTH,
    whole: bool = False,
) -> str:
    """Lines over time, sharing one value axis from 0; the first and last instants under
    the axis. Empty (or all-``None``) series give a chart that says so. ``whole``: the
    values are counts, and the axis's ticks whole numbers (:func:`nice_max`)."""
    values = [v for s in series for _, v in s.points if v is not None]
    instants = [at for s in series for at, _ in s.points]
    if not values:
        return _empty(title, width, HEIGHT)
    start, end = min(instants), max(instants)
    span = (end - start).total_seconds() or 1.0
    top = nice_max(max(values), whole=whole)
    x0, x1, y0, y1 = PAD_L, width - PAD_R, HEIGHT - PAD_B, PAD_T

    def xy(at: datetime, value: float) -> str:
        x = x0 + (x1 - x0) * (at - start).total_seconds() / span
        y = y0 - (y0 - y1) * value / top
        return f"{x:.1f},{y:.1f}"

    body = _y_axis(top, x0, y0, y1, unit)
    for one in series:
        for run in _runs(one.points):
            points = " ".join(xy(at, v) for at, v in run)
            if len(run) == 1:
                cx, cy = points.split(",")
                body.append(f'<circle class="{text(one.css)}" cx="{cx}" cy="{cy}" r="2"/>')
            else:
                body.append(f'<polyline class="{text(one.css)}" points="{points}"/>')
    body.append(_time_labels(start, end, x0, x1))
    if len(series) > 1:
        body.extend(_legend(series, x1))
    return _frame(title, body, width, HEIGHT)


def _runs(points: Sequence[tuple[datetime, float | None]]) -> list[list[tuple[datetime, float]]]:
    """The stretches of ``points`` without a gap, in time order."""
    runs: list[list[tuple[datetime, float]]] = [[]]
    for at, value in sorted(points, key=lambda p: p[0]):
        if value is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((at, value))
    return [run for run in runs if run]


def _time_labels(start: datetime, end: datetime, x0: int, x1: int) -> str:
    y = HEIGHT - 6
    first = f'<text class="axis start" x="{x0}" y="{y}">{text(_stamp(start))}</text>'
    last = f'<text class="axis end" x="{x1}" y="{y}">{text(_stamp(end))}</text>'
    return first + last


def _stamp(at: datetime) -> str:
    return at.strftime("%d.%m %H:%M")


def _legend(series: Sequence[Series], right: int) -> list[str]:
    out, x = [], right
    for one in reversed(series):
        x -= 8 * len(one.name) + 20
        out.append(f'<rect class="{text(one.css)} key" x="{x}" y="6" width="10" height="10"/>')
        out.append(f'<text class="legend" x="{x + 14}" y="15">{text(one.name)}</text>')
    return out


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    unit: str = "",
    width: int = WIDTH,
    whole: bool = False,
) -> str:
    """One bar per (label, value), labels under the bars (every n-th when crowded);
    ``whole`` as for :func:`line_chart`."""
    if not bars:
        return _empty(title, width, HEIGHT)
    top = nice_max(max(value for _, value in bars), whole=whole)
    x0, x1, y0, y1 = PAD_L, width - PAD_R, HEIGHT - PAD_B, PAD_T
    slot = (x1 - x0) / len(bars)
    every = max(1, round(len(bars) / max(1, (x1 - x0) // 60)))
    body = _y_axis(top, x0, y0, y1, unit)
    for i, (label, value) in enumerate(bars):
        h = (y0 - y1) * max(value, 0) / top
        x = x0 + slot * i + slot * 0.15
        body.append(
            f'<rect class="bar" x="{x:.1f}" y="{y0 - h:.1f}" width="{slot * 0.7:.1f}"'
            f' height="{h:.1f}"><title>{text(label)}: {text(_number(value))}</title></rect>'
        )
        if i % every == 0:
            cx = x0 + slot * (i + 0.5)
            body.append(
                f'<text class="axis mid" x="{cx:.1f}" y="{HEIGHT - 6}">{text(label)}</text>'
            )
    return _frame(title, body, width, HEIGHT)


def timeline(instants: Sequence[datetime], start: date, days: int, *, title: str) -> str:
    """How many of ``instants`` fall on each day from ``start`` for ``days`` days: the
    coming ``block_at`` of the plan, one bar a day, labelled by week."""
    counts = [0] * days
    for at in instants:
        offset = (at.date() - start).days
        if 0 <= offset < days:
            counts[offset] += 1
        elif offset < 0 and days:
            counts[0] += 1  # already due: counted today
    if not any(counts):
        return _empty(title, WIDTH, HEIGHT)
    bars = []
    for offset, count in enumerate(counts):
        day = start + timedelta(days=offset)
        bars.append((day.strftime("%d.%m"), float(count)))
    return bar_chart(bars, title=title, whole=True)
