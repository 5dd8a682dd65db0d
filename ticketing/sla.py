"""A month's SLA figures from the ticket store's rows, pure (DESIGN.md sections 6-7).

``kktmon report sla`` and the console's SLA page both call :func:`sla_report` with the
rows :mod:`.sla_store` reads, the config's clients, each site's zone and the clock.

What the figures mean (a service-centre manager's reading of them):

* **The month** is [1st 00:00, next 1st 00:00) in the local time of each ticket's site
  (``ClosedHours.zone_for``: its zone in ``[ticketing.closed_hours]``). The total
  places every ticket in its own site's month, so its counts are the sums of the
  clients' (plus those of sites no client lists).
* **Tickets opened**: tickets that reached the help desk (``opened_at``) in the month, by
  problem code. A problem that cleared during its hold-down, or was never severe enough
  to notify, opened no ticket and is not counted.
* **Resolved** means the problem cleared for good: the moment of the clear that led to the
  resolution (``clearing_since``), not the end of the grace period after it; a ticket in
  its grace period counts as resolved at its clear (should the problem recur within the
  grace, the ticket reopens and the report, run again, says so).
* **First seen -> opened**: over the tickets opened in the month. **Opened -> resolved**:
  over the opened tickets resolved in the month, whenever they opened (final once the
  month is over, and not biased towards the quick ones as a month's still-open tickets
  would make it).
* **SLA met**: of the tickets opened in the month that have a ``block_at``, those resolved
  at or before it. Missed: resolved after it, or still open with ``block_at`` past.
  Still open with ``block_at`` ahead: pending, not counted. Share = met / (met + missed).
* **Registers that stopped selling**: a register whose ``block_at`` passed while one of
  its problems was open, for the union of those stretches within the month (and up to
  the clock): two problems blocking one register at once count once. Any ticket counts
  here, also one that never reached the help desk: the register stopped all the same.
* **Failed help-desk calls**: calls written in the month (``created_at``) and given up
  (``failed``); calls still being retried after an error are counted beside them.

Durations are in seconds: the median is :func:`statistics.median` (the mean of the two
middle values for an even count); the 95th percentile is the nearest rank (the
ceil(0.95 n)-th smallest), always an observed duration, which keeps small months honest.

Figures are as of ``now``: a month's open tickets can still change its SLA outcome and
stopped time until they are resolved.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from kktmon.ticketing.sla_models import (
    MONTH,
    ClientScope,
    Durations,
    SlaCall,
    SlaFigures,
    SlaReport,
    SlaTicket,
    StoppedRegister,
)

__all__ = [
    "ClientScope",
    "Durations",
    "SlaCall",
    "SlaFigures",
    "SlaReport",
    "SlaTicket",
    "StoppedRegister",
    "durations",
    "month_span",
    "parse_month",
    "query_window",
    "sla_report",
]

#: Wider than any zone's offset (UTC-12 .. UTC+14): what the store is asked for.
_ANY_ZONE = timedelta(days=1)
_FAILED, _RETRYING = "failed", ("pending", "claimed")


def parse_month(text: str) -> tuple[int, int]:
    """``"2026-11"`` -> (2026, 11); ValueError otherwise."""
    match = MONTH.match(text)
    if match is None or int(match.group(1)) in (0, 9999):
        raise ValueError(f"{text!r} is not a month like 2026-11")
    return int(match.group(1)), int(match.group(2))


def month_span(month: str, tz: tzinfo) -> tuple[datetime, datetime]:
    """The month's [start, end) as UTC instants, its midnights read in ``tz``."""
    year, number = parse_month(month)
    start = datetime(year, number, 1, tzinfo=tz)
    end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def query_window(month: str) -> tuple[datetime, datetime]:
    """UTC instants that hold the month in every zone: what to read from the store."""
    start, end = month_span(month, UTC)
    return start - _ANY_ZONE, end + _ANY_ZONE


def durations(values: Sequence[float]) -> Durations:
    """Count, median and nearest-rank 95th percentile of ``values``."""
    if not values:
        return Durations(count=0, median_s=None, p95_s=None)
    ordered = sorted(values)
    rank = math.ceil(0.95 * len(ordered))
    return Durations(
        count=len(ordered), median_s=statistics.median(ordered), p95_s=ordered[rank - 1]
    )


def sla_report(
    tickets: Iterable[SlaTicket],
    calls: Iterable[SlaCall],
    *,
    month: str,
    clients: Sequence[ClientScope],
    zone_of: Callable[[str], tzinfo],
    now: datetime,
    sites: Collection[str] | None = None,
) -> SlaReport:
    """The month's figures per client in ``clients`` and in total, as of ``now``.

    ``sites`` limits the total (a report for one client passes its sites); None: every
    site, and the total lists those that count in any figure.
    """
    rows = [t for t in tickets if sites is None or t.site in sites]
    outbox = [c for c in calls if sites is None or c.site in sites]
    scope = _Month(month, zone_of, now, rows, outbox)
    groups = [scope.figures(c.id, c.name, list(c.sites)) for c in clients]
    total = scope.figures(None, "total", sorted(sites) if sites is not None else None)
    return SlaReport(month=month, generated_at=now, clients=groups, total=total)


class _Month:
    """The rows of one report and each site's month, computed once per site."""

    def __init__(
        self,
        month: str,
        zone_of: Callable[[str], tzinfo],
        now: datetime,
        tickets: Sequence[SlaTicket],
        calls: Sequence[SlaCall],
    ) -> None:
        self.month, self.zone_of, self.now = month, zone_of, now
        self.tickets, self.calls = tickets, calls
        self._spans: dict[str, tuple[datetime, datetime]] = {}

    def span(self, site: str) -> tuple[datetime, datetime]:
        if site not in self._spans:
            self._spans[site] = month_span(self.month, self.zone_of(site))
        return self._spans[site]

    def within(self, at: datetime | None, site: str) -> bool:
        if at is None:
            return False
        start, end = self.span(site)
        return start <= at < end

    def figures(self, client_id: str | None, name: str, sites: list[str] | None) -> SlaFigures:
        """The figures of ``sites`` (None: of every site)."""
        mine = set(sites or ())
        tickets = [t for t in self.tickets if sites is None or t.site in mine]
        calls = [
            c
            for c in self.calls
            if (sites is None or c.site in mine) and self.within(c.created_at, c.site)
        ]
        opened = [t for t in tickets if self.within(t.opened_at, t.site)]
        resolved = [t for t in tickets if t.opened_at and self.within(t.resolved, t.site)]
        outcomes = Counter(_outcome(t, self.now) for t in opened if t.block_at is not None)
        met, missed = outcomes["met"], outcomes["missed"]
        stopped = _stopped(tickets, self.span, self.now)
        if sites is None:
            counted = {t.site for t in [*opened, *resolved]} | {r.site for r in stopped}
            sites = sorted(counted | {c.site for c in calls})
        return SlaFigures(
            client_id=client_id,
            name=name,
            sites=sites,
            opened=len(opened),
            opened_by_problem=dict(sorted(Counter(t.problem for t in opened).items())),
            first_seen_to_opened=durations(
                [_seconds(t.first_seen_at, t.opened_at) for t in opened]
            ),
            opened_to_resolved=durations([_seconds(t.opened_at, t.resolved) for t in resolved]),
            sla_met=met,
            sla_missed=missed,
            sla_pending=outcomes["pending"],
            sla_met_share=met / (met + missed) if met + missed else None,
            stopped_registers=stopped,
            stopped_s=sum(r.stopped_s for r in stopped),
            calls_failed=[c for c in calls if c.state == _FAILED],
            calls_retrying=sum(1 for c in calls if c.state in _RETRYING and c.last_error),
        )


def _seconds(start: datetime | None, end: datetime | None) -> float:
    assert start is not None and end is not None  # filtered by the caller
    return (end - start).total_seconds()


def _outcome(ticket: SlaTicket, now: datetime) -> str:
    assert ticket.block_at is not None
    resolved = ticket.resolved
    if resolved is not None:
        return "met" if resolved <= ticket.block_at else "missed"
    return "missed" if ticket.block_at <= now else "pending"


def _stopped(
    tickets: Sequence[SlaTicket],
    span: Callable[[str], tuple[datetime, datetime]],
    now: datetime,
) -> list[StoppedRegister]:
    """Registers whose ``block_at`` passed while a problem was open, within the month."""
    stretches: dict[tuple[str, str], list[tuple[datetime, datetime, SlaTicket]]]
    stretches = defaultdict(list)
    for t in tickets:
        if t.block_at is None:
            continue
        month_start, month_end = span(t.site)
        begin, end = max(t.block_at, month_start), min(t.resolved or now, month_end, now)
        if begin < end:
            stretches[(t.site, t.kkt)].append((begin, end, t))
    return [_register(site, kkt, parts, now) for (site, kkt), parts in sorted(stretches.items())]


def _register(
    site: str, kkt: str, parts: list[tuple[datetime, datetime, SlaTicket]], now: datetime
) -> StoppedRegister:
    total, reach = timedelta(0), None  # the union of the stretches, in start order
    for begin, end, _ in sorted(parts, key=lambda part: part[0]):
        start = begin if reach is None else max(begin, reach)
        if end > start:
            total += end - start
        reach = end if reach is None else max(reach, end)
    tickets = [t for _, _, t in parts]
    known = next((t for t in tickets if t.serial or t.model), tickets[0])
    return StoppedRegister(
        site=site,
        kkt=kkt,
        model=known.model,
        serial=known.serial,
        rnm=known.rnm,
        problems=sorted({t.problem for t in tickets}),
        since=min(begin for begin, _, _ in parts),
        stopped_s=total.total_seconds(),
        still_stopped=any(
            t.resolved is None and t.block_at is not None and t.block_at <= now for t in tickets
        ),
    )
