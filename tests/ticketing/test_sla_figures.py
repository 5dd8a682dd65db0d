"""The SLA computation's own rules, on rows made by hand (no store): percentiles, month
edges, what counts as met, overlapping stops, a month still running."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from kktmon.ticketing.lifecycle import TicketState
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.report_cli import duration, write_csv
from kktmon.ticketing.sla import (
    Durations,
    SlaReport,
    SlaTicket,
    durations,
    month_span,
    parse_month,
    sla_report,
)

MSK = ZoneInfo("Europe/Moscow")
SHOP = ClientConfig(id="shop", name="Shop", sites=["s1"])


def z(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def ticket(ticket_id: int, kkt: str = "k", **fields: Any) -> SlaTicket:
    base: dict[str, Any] = {
        "site": "s1",
        "problem": "OFD_QUEUE_STALE",
        "state": TicketState.OPEN,
        "first_seen_at": z("2026-11-02 00:00"),
        "opened_at": z("2026-11-02 00:05"),
    }
    return SlaTicket.model_validate({"id": ticket_id, "kkt": kkt, **base, **fields})


def report(*tickets: SlaTicket, now: str = "2026-12-06 00:00") -> SlaReport:
    return sla_report(
        tickets, [], month="2026-11", clients=[SHOP], zone_of=lambda site: MSK, now=z(now)
    )


def test_median_and_nearest_rank_95th_percentile() -> None:
    assert durations([]) == Durations(count=0, median_s=None, p95_s=None)
    assert durations([7.0]) == Durations(count=1, median_s=7.0, p95_s=7.0)
    assert durations([2.0, 1.0]) == Durations(count=2, median_s=1.5, p95_s=2.0)
    # 40 values: rank ceil(0.95 * 40) = 38, an observed value (no interpolation).
    assert durations([float(v) for v in range(40, 0, -1)]) == Durations(
        count=40, median_s=20.5, p95_s=38.0
    )
    assert durations([float(v) for v in range(1, 22)]).p95_s == 20.0  # rank ceil(19.95)


def test_a_month_is_read_in_the_sites_zone() -> None:
    assert month_span("2026-11", MSK) == (z("2026-10-31 21:00"), z("2026-11-30 21:00"))
    assert month_span("2026-12", MSK) == (z("2026-11-30 21:00"), z("2026-12-31 21:00"))
    assert month_span("2026-12", UTC) == (z("2026-12-01 00:00"), z("2027-01-01 00:00"))
    # Berlin leaves summer time on 10-25: October is 31 days and one hour long there.
    start, end = month_span("2026-10", ZoneInfo("Europe/Berlin"))
    assert (start, end) == (z("2026-09-30 22:00"), z("2026-10-31 23:00"))
    for bad in ("2026-1", "2026-13", "2026-00", "26-11", "2026-11-01", "9999-12"):
        with pytest.raises(ValueError, match="is not a month like 2026-11"):
            parse_month(bad)


def test_met_means_resolved_at_or_before_block_at_at_the_clear() -> None:
    block = z("2026-11-10 00:00")
    shop = report(
        # Cleared at block_at exactly (resolved after the grace): met.
        ticket(1, state=TicketState.RESOLVED, block_at=block,
               clearing_since=block, resolved_at=z("2026-11-10 00:30")),
        # In its grace period after a clear before block_at: met at the clear.
        ticket(2, state=TicketState.CLEARING, block_at=block,
               clearing_since=z("2026-11-09 00:00")),
        # Resolved a second after block_at: missed.
        ticket(3, state=TicketState.RESOLVED, block_at=block,
               clearing_since=z("2026-11-10 00:00:01"), resolved_at=z("2026-11-10 00:30")),
        # Open, block_at passed: missed; open, block_at ahead of the clock: pending.
        ticket(4, block_at=block),
        ticket(5, block_at=z("2026-12-07 00:00")),
        # No block_at: no SLA outcome at all.
        ticket(6),
    ).clients[0]  # fmt: skip
    assert (shop.sla_met, shop.sla_missed, shop.sla_pending) == (2, 2, 1)
    assert shop.sla_met_share == 0.5
    assert shop.opened == 6
    # Opened -> resolved uses the clear: tickets 1, 2 and 3.
    assert shop.opened_to_resolved.count == 3
    assert (
        shop.opened_to_resolved.median_s
        == (z("2026-11-10 00:00") - z("2026-11-02 00:05")).total_seconds()
    )


def test_stops_of_one_register_count_once_and_a_running_month_ends_at_the_clock() -> None:
    shop = report(
        # k1: 11-05 to 11-10, and 11-06 to 11-07 inside it: five days, not six.
        ticket(1, "k1", block_at=z("2026-11-05 00:00"), state=TicketState.RESOLVED,
               clearing_since=z("2026-11-10 00:00"), resolved_at=z("2026-11-10 00:30")),
        ticket(2, "k1", problem="FN_EXPIRING", block_at=z("2026-11-06 00:00"),
               state=TicketState.RESOLVED, resolved_at=z("2026-11-07 00:00")),
        # k2: still stopped; the month is running, so up to the clock (11-20 12:00Z).
        ticket(3, "k2", block_at=z("2026-11-18 00:00")),
        # k3: block_at ahead of the clock: not stopped (yet).
        ticket(4, "k3", block_at=z("2026-11-25 00:00")),
        now="2026-11-20 12:00",
    ).clients[0]  # fmt: skip
    stops = {r.kkt: (r.stopped_s, r.problems, r.still_stopped) for r in shop.stopped_registers}
    assert stops == {
        "k1": (5 * 86400.0, ["FN_EXPIRING", "OFD_QUEUE_STALE"], False),
        "k2": (2.5 * 86400, ["OFD_QUEUE_STALE"], True),
    }
    assert shop.stopped_s == 7.5 * 86400


def test_sites_of_no_client_count_in_the_total_only() -> None:
    stray = ticket(1, site="elsewhere", block_at=z("2026-11-05 00:00"))
    result = report(stray, ticket(2))
    assert (result.clients[0].opened, result.total.opened) == (1, 2)
    assert result.total.sites == ["elsewhere", "s1"]
    assert [r.site for r in result.total.stopped_registers] == ["elsewhere"]
    assert result.clients[0].stopped_registers == []


def test_durations_read_at_a_glance() -> None:
    assert [duration(s) for s in (None, 45, 60, 754, 7500, 86400, 3 * 86400 + 4 * 3600 + 59)] == [
        "-", "45 s", "1 min", "12 min", "2 h 05 min", "1 d 00 h", "3 d 04 h",
    ]  # fmt: skip


def test_csv_figures_are_plain_decimals() -> None:
    opened = z("2026-11-02 00:05")
    took = timedelta(seconds=1198500.25)
    shop = report(
        ticket(1, state=TicketState.RESOLVED, opened_at=opened, clearing_since=opened + took,
               resolved_at=opened + took),
        ticket(2, block_at=z("2026-11-03 00:00")),
        ticket(3, block_at=z("2026-11-03 00:00")),
        ticket(4, block_at=z("2026-11-30 00:00"), state=TicketState.RESOLVED,
               clearing_since=z("2026-11-04 00:00"), resolved_at=z("2026-11-04 00:30")),
    )  # fmt: skip
    out = io.StringIO()
    write_csv(shop, out)
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert [row["client_id"] for row in rows] == ["shop", ""]
    # Ticket 1 and ticket 4 (2 d - 5 min): never 1.1985e+06.
    assert (rows[0]["to_resolve_median_s"], rows[0]["to_resolve_p95_s"]) == (
        "685500.125",
        "1198500.25",
    )
    assert rows[0]["sla_met_share"] == "0.333"
    assert rows[0]["to_open_median_s"] == "300"
