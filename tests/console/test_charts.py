"""console/charts.py: SVG drawn on the server, pure, with every text escaped."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta

from kktmon.console.charts import EMPTY, Series, bar_chart, line_chart, nice_max, timeline

T0 = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    """The chart as XML: it must be well-formed to be drawn inline in a page."""
    return ET.fromstring(svg)


def _hours(values: list[float | None]) -> list[tuple[datetime, float | None]]:
    return [(T0 + timedelta(hours=i), v) for i, v in enumerate(values)]


def test_a_line_chart_is_well_formed_svg_with_a_polyline_through_every_point() -> None:
    root = _parse(line_chart([Series("unsent", _hours([0, 5, 10]))], title="Unsent"))
    assert root.tag == f"{SVG}svg"
    assert root.find(f"{SVG}title").text == "Unsent"  # type: ignore[union-attr]
    (line,) = root.iter(f"{SVG}polyline")
    points = [tuple(map(float, p.split(","))) for p in line.get("points", "").split()]
    assert len(points) == 3
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    assert xs == sorted(xs) and xs[0] < xs[-1]
    assert ys[0] > ys[1] > ys[2]  # larger values are drawn higher (smaller y)


def test_a_gap_breaks_the_line_instead_of_dropping_to_zero() -> None:
    root = _parse(line_chart([Series("days", _hours([30, 29, None, 27, 26]))], title="FN"))
    lines = list(root.iter(f"{SVG}polyline"))
    assert [len(line.get("points", "").split()) for line in lines] == [2, 2]


def test_a_lone_point_is_a_dot() -> None:
    root = _parse(line_chart([Series("days", _hours([None, 7, None]))], title="FN"))
    assert not list(root.iter(f"{SVG}polyline"))
    assert len(list(root.iter(f"{SVG}circle"))) == 1


def test_no_data_says_so() -> None:
    for svg in (
        line_chart([Series("x", _hours([None, None]))], title="Empty"),
        line_chart([], title="Empty"),
        bar_chart([], title="Empty"),
        timeline([], date(2026, 5, 4), 30, title="Empty"),
    ):
        assert EMPTY in svg
        _parse(svg)


def test_every_text_is_escaped() -> None:
    evil = '<script>alert("x")</script> & "quotes"'
    svg = line_chart(
        [Series(evil, _hours([1, 2])), Series("b", _hours([2, 3]), css='s1" onload="x')],
        title=evil,
    )
    bars = bar_chart([(evil, 3)], title=evil)
    for markup in (svg, bars):
        assert "<script" not in markup and 'onload="x' not in markup
        root = _parse(markup)
        assert root.find(f"{SVG}title").text == evil  # type: ignore[union-attr]
        assert not list(root.iter(f"{SVG}script"))


def test_nice_max_rounds_up_to_1_2_5_steps() -> None:
    assert [nice_max(v) for v in (0, 0.3, 1, 3, 7, 10, 11, 180, 999)] == [
        1.0,
        0.5,
        1.0,
        5.0,
        10.0,
        10.0,
        20.0,
        200.0,
        1000.0,
    ]


def test_bar_heights_follow_the_values() -> None:
    root = _parse(bar_chart([("a", 1), ("b", 4), ("c", 2)], title="Bars"))
    heights = [float(rect.get("height", "0")) for rect in root.iter(f"{SVG}rect")]
    assert heights[1] == max(heights) and heights[0] < heights[2] < heights[1]
    assert heights[1] == 2 * heights[2]


def test_timeline_counts_instants_per_day_and_puts_overdue_ones_today() -> None:
    start = date(2026, 5, 4)
    instants = [
        datetime(2026, 5, 4, 9, tzinfo=UTC),
        datetime(2026, 5, 1, 9, tzinfo=UTC),  # already past: due today
        datetime(2026, 5, 6, 9, tzinfo=UTC),
        datetime(2026, 5, 6, 18, tzinfo=UTC),
        datetime(2026, 8, 1, tzinfo=UTC),  # beyond the horizon: not drawn
    ]
    root = _parse(timeline(instants, start, 7, title="Stops"))
    tips = [t.text for rect in root.iter(f"{SVG}rect") for t in rect.iter(f"{SVG}title")]
    assert tips == [
        "04.05: 2",
        "05.05: 0",
        "06.05: 2",
        "07.05: 0",
        "08.05: 0",
        "09.05: 0",
        "10.05: 0",
    ]


def test_the_time_axis_names_the_first_and_last_instants() -> None:
    svg = line_chart([Series("x", _hours([1, 2, 3]))], title="T")
    labels = re.findall(r'class="axis (?:start|end)"[^>]*>([^<]+)<', svg)
    assert labels == ["04.05 12:00", "04.05 14:00"]


def _y_labels(svg: str) -> list[str]:
    """The value axis's labels, bottom to top."""
    return re.findall(r'<text class="axis" x="[^"]*" y="[^"]*">([^<]+)<', svg)


def test_a_count_axis_has_whole_ticks_even_when_the_most_is_one() -> None:
    one_stop = timeline([datetime(2026, 5, 5, 9, tzinfo=UTC)], date(2026, 5, 4), 30, title="S")
    assert _y_labels(one_stop) == ["0", "1", "2"]  # not 0, 0.5, 1
    assert _y_labels(bar_chart([("a", 3), ("b", 1)], title="B", whole=True)) == ["0", "2", "4"]
    assert _y_labels(bar_chart([("a", 5)], title="B", whole=True)) == ["0", "3", "6"]
    unsent = line_chart([Series("unsent", _hours([0, 1, 1]))], title="U", whole=True)
    assert _y_labels(unsent) == ["0", "1", "2"]
    for most in range(1, 300):
        top = nice_max(most, whole=True)
        assert top >= most and top % 2 == 0, most
    # Measures that are not counts keep their finer steps.
    assert _y_labels(line_chart([Series("h", _hours([0.2, 1]))], title="H", unit="h")) == [
        "0",
        "0.5",
        "1 h",
    ]
