"""What a month's SLA report reads from the ticket store: one transaction, two queries.

The SQL is the same on SQLite and PostgreSQL (``?`` parameters, ``COALESCE``, ``CASE``),
run through the store's own transaction runner, so it sees one consistent state and
retries a busy database as every other store read does. Only the rows a month's figures
can need come back (see :mod:`.sla`); :func:`~.sla.sla_report` keeps the exact month of
each site, the store is asked for a window a day wider on each side (any zone's month).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from kktmon.ticketing.sla import SlaCall, SlaTicket, query_window
from kktmon.ticketing.store import TicketStore
from kktmon.ticketing.store_db import Tx

# Tickets opened in the window; every live ticket that opened or has a deadline (still
# stopping a register, or in its grace period after a clear); resolved ones whose clear
# or whose deadline may fall in the window. The facts only where a register may have
# stopped, for its model, serial and RNM.
_TICKETS = """
SELECT id, site, kkt, problem, state, first_seen_at, opened_at, clearing_since,
       resolved_at, block_at, CASE WHEN block_at IS NULL THEN NULL ELSE facts END
FROM tickets
WHERE first_seen_at < ? AND (
    (opened_at >= ? AND opened_at < ?)
    OR (state <> 'resolved' AND (opened_at IS NOT NULL OR block_at IS NOT NULL))
    OR (resolved_at >= ? AND (block_at < ?
        OR (opened_at IS NOT NULL AND COALESCE(clearing_since, resolved_at) < ?))))"""

_CALLS = """
SELECT c.id, c.ticket_id, t.site, t.kkt, t.problem, c.sink, c.action, c.state,
       c.attempts, c.last_error, c.created_at
FROM helpdesk_calls c JOIN tickets t ON t.id = c.ticket_id
WHERE c.created_at >= ? AND c.created_at < ?
  AND (c.state = 'failed' OR (c.state IN ('pending', 'claimed') AND c.last_error IS NOT NULL))"""


def read_sla_rows(
    store: TicketStore, month: str, sites: Collection[str] | None = None
) -> tuple[list[SlaTicket], list[SlaCall]]:
    """The tickets and troubled help-desk calls ``month`` may count, of ``sites`` or all."""
    if sites is not None and not sites:
        return [], []
    start, end = query_window(month)
    only, names = "", list(sites or ())
    if names:
        only = f" AND {{site}} IN ({', '.join('?' for _ in names)})"

    def work(tx: Tx) -> tuple[list[SlaTicket], list[SlaCall]]:
        tickets = tx.all(
            _TICKETS + only.format(site="site") + " ORDER BY id",
            *(end, start, end, start, end, end),
            *names,
        )
        calls = tx.all(_CALLS + only.format(site="t.site") + " ORDER BY c.id", start, end, *names)
        return [_ticket(tx, row) for row in tickets], [_call(tx, row) for row in calls]

    # The store's transaction runner: the same retries and error translation as its own
    # reads (a read-only method of the store, kept beside the report that needs it).
    return store._run(work)


def _ticket(tx: Tx, row: tuple[Any, ...]) -> SlaTicket:
    ticket_id, site, kkt, problem, state, first_seen, opened, clearing, resolved, block = row[:10]
    snapshot = tx.d.read_json(row[10]).get("snapshot", {}) if row[10] is not None else {}
    return SlaTicket(
        id=int(ticket_id),
        site=site,
        kkt=kkt,
        problem=problem,
        state=state,
        first_seen_at=tx.d.read_ts(first_seen),
        opened_at=tx.ts_or_none(opened),
        clearing_since=tx.ts_or_none(clearing),
        resolved_at=tx.ts_or_none(resolved),
        block_at=tx.ts_or_none(block),
        model=_text(snapshot.get("model")),
        serial=_text(snapshot.get("serial")),
        rnm=_text(snapshot.get("rnm")),
    )


def _call(tx: Tx, row: tuple[Any, ...]) -> SlaCall:
    call_id, ticket_id, site, kkt, problem, sink, action, state, attempts, error, created = row
    return SlaCall(
        id=int(call_id),
        ticket_id=int(ticket_id),
        site=site,
        kkt=kkt,
        problem=problem,
        sink=sink,
        action=action,
        state=state,
        attempts=int(attempts),
        last_error=error,
        created_at=tx.d.read_ts(created),
    )


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)
