"""The console's ticket queries: the list against deadlines, and one ticket's history.

The store keeps no event log per ticket: a ticket row holds the time of each state it
entered last (``first_seen_at``, ``opened_at``, ``clearing_since``, ``resolved_at``) and
the help-desk outbox holds every call it caused (open, comment, escalate, reopen,
resolve: one per sink, with its state, attempts, error and the help desk's reference).
A ticket's history is built from those two: its states at those times, and its calls
at the times they were queued, with what the help desk answered. What it cannot show:
a state entered and left again (a clearing that the problem's return cut short leaves
only its reopen call, and only when a sink is configured), severity changes with no
sink to tell, and the time a call was answered beyond ``completed_at``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal

from kktmon.ticketing import store_calls
from kktmon.ticketing.console_config import ConsoleSection
from kktmon.ticketing.fleet import (
    Page,
    Scope,
    TicketDetail,
    TicketEvent,
    TicketView,
    clients_by_site,
    ticket_view,
)
from kktmon.ticketing.lifecycle import Ticket
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.store import TicketStore
from kktmon.ticketing.store_calls import CallRecord
from kktmon.ticketing.store_db import SELECT_TICKET, Tx, ticket_from_row

DEFAULTS = ConsoleSection()
#: ``recent``: live tickets and those resolved this long ago that reached the help desk
#: (what ``kktmon tickets`` lists).
RECENT = timedelta(days=7)
_ORDER = " ORDER BY block_at IS NULL, block_at, first_seen_at, id"
_STATE_TEXT = {
    "pending": "First seen; held back for the hold-down (pending)",
    "open": "Opened: sent to the help desk",
    "clearing": "Cleared; waiting out the grace period",
    "resolved": "Resolved",
}


def list_tickets(
    store: TicketStore,
    scope: Scope,
    now: datetime,
    *,
    state: Literal["open", "recent", "all"] = "open",
    page: int = 1,
    per_page: int = 50,
    client: str | None = None,
    site: str | None = None,
    clients: Sequence[ClientConfig] = (),
    console: ConsoleSection = DEFAULTS,
) -> Page[TicketView]:
    """Tickets in scope, soonest ``block_at`` first (none last), then oldest: ``open``
    = live (pending, open, clearing); ``recent`` adds those resolved within a week that
    had been opened; ``all`` is every ticket the store keeps."""
    if page < 1 or not 1 <= per_page <= 500:
        raise ValueError("page >= 1 and per_page 1-500")
    sites = scope.sites
    if client is not None:
        owner = next((c for c in clients if c.id == client), None)
        mine = frozenset(owner.sites if owner is not None else ())
        sites = mine if sites is None else sites & mine
    if site is not None:
        sites = frozenset({site}) if sites is None else sites & {site}
    empty = Page[TicketView](items=[], total=0, page=page, per_page=per_page)
    if sites is not None and not sites:
        return empty
    clauses, params = _state_clause(state, now)
    if sites is not None:
        clauses.append(f"site IN ({', '.join('?' for _ in sites)})")
        params += sorted(sites)
    where = " WHERE " + " AND ".join(clauses) if clauses else ""

    def work(tx: Tx) -> Page[TicketView]:
        total = tx.one(f"SELECT COUNT(*) FROM tickets{where}", *params)
        rows = tx.all(
            f"{SELECT_TICKET}{where}{_ORDER} LIMIT ? OFFSET ?",
            *params,
            per_page,
            (page - 1) * per_page,
        )
        owners = clients_by_site(clients)
        items = [
            ticket_view(ticket_from_row(tx, r), owners=owners, now=now, console=console)
            for r in rows
        ]
        count = int(total[0]) if total is not None else 0
        return Page[TicketView](items=items, total=count, page=page, per_page=per_page)

    return store.read(work)


def _state_clause(state: str, now: datetime) -> tuple[list[str], list[object]]:
    if state == "open":
        return ["state <> 'resolved'"], []
    if state == "recent":
        return ["(state <> 'resolved' OR (opened_at IS NOT NULL AND resolved_at >= ?))"], [
            now - RECENT
        ]
    return [], []


def get_ticket(
    store: TicketStore,
    ticket_id: int,
    scope: Scope,
    *,
    now: datetime | None = None,
    clients: Sequence[ClientConfig] = (),
    console: ConsoleSection = DEFAULTS,
) -> TicketDetail | None:
    """A ticket with its text, facts and history; None when unknown or out of scope."""
    if not -(2**63) <= ticket_id < 2**63:
        return None

    def work(tx: Tx) -> tuple[Ticket, list[CallRecord]] | None:
        row = tx.one(SELECT_TICKET + " WHERE id = ?", ticket_id)
        if row is None:
            return None
        ticket = ticket_from_row(tx, row)
        if not scope.allows(ticket.site):
            return None
        return ticket, store_calls.records(tx, ticket_id)

    found = store.read(work)
    if found is None:
        return None
    ticket, calls = found
    owners = clients_by_site(clients)
    view = ticket_view(ticket, owners=owners, now=now or datetime.now(UTC), console=console)
    return TicketDetail(
        **dict(view),
        description=ticket.description,
        facts=dict(ticket.facts.problem),
        snapshot=dict(ticket.facts.snapshot),
        history=ticket_history(ticket, calls),
    )


def register_tickets(tx: Tx, site: str, kkt: str, limit: int) -> list[Ticket]:
    """A register's newest tickets, live and resolved (``tickets_by_key``'s prefix)."""
    rows = tx.all(
        SELECT_TICKET + " WHERE site = ? AND kkt = ? ORDER BY id DESC LIMIT ?", site, kkt, limit
    )
    return [ticket_from_row(tx, row) for row in rows]


def ticket_history(ticket: Ticket, calls: Sequence[CallRecord]) -> list[TicketEvent]:
    """What happened to a ticket, oldest first, from its row and its calls."""
    events = [
        TicketEvent(at=at, kind="state", text=_STATE_TEXT[state], state=state)
        for state, at in (
            ("pending", ticket.first_seen_at),
            ("open", ticket.opened_at),
            ("clearing", ticket.clearing_since),
            ("resolved", ticket.resolved_at),
        )
        if at is not None
    ]
    for call in calls:
        answer = call.external_ref if call.state == "done" else call.last_error
        action = call.action.value
        text = f"{action} to {call.sink}" + (f": {call.comment}" if call.comment else "")
        events.append(
            TicketEvent(
                at=call.created_at,
                kind="comment" if action == "comment" else "helpdesk_call",
                text=text,
                sink=call.sink,
                action=action,
                call_state=call.state,
                call_answer=answer,
            )
        )
    # States before the calls they caused (an open's call is queued at the same instant).
    return sorted(events, key=lambda e: (e.at, e.kind != "state"))
