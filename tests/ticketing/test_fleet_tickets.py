"""Tickets as the console lists them (against their SLA deadline) and one ticket's
history from its timestamps and its help-desk calls; in scope; SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from ticket_facts import T0, cleared, raised

from kktmon.ticketing.console_config import ConsoleSection
from kktmon.ticketing.fleet import Scope
from kktmon.ticketing.fleet_store import get_ticket, list_tickets
from kktmon.ticketing.lifecycle import TicketState
from kktmon.ticketing.notify_config import ClientConfig
from kktmon.ticketing.store import TicketStore

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
CLIENTS = [
    ClientConfig(id="acme", name="Acme", sites=["acme-1"]),
    ClientConfig(id="beta", name="Beta", sites=["beta-1"]),
]
EVERYTHING = Scope()
ACME = Scope(sites=frozenset({"acme-1"}))
NOW = T0 + HOUR


@pytest.fixture
def desk(store: TicketStore) -> TicketStore:
    """Live: an OFD backlog blocking in 10 h (inside the 24 h margin) and one in 3 days,
    paper out (no deadline); resolved: one an hour ago, one 10 days ago (both opened)."""
    old = T0 - 10 * DAY
    store.apply(raised(old, code="COVER_OPEN", site="beta-1", kkt="b-1"), old)
    store.tick(old + 10 * MINUTE)
    store.apply(cleared(old + 20 * MINUTE, code="COVER_OPEN", site="beta-1", kkt="b-1"), old)
    store.tick(old + HOUR)
    store.apply(raised(T0 - HOUR, code="PRINTER_FAULT", site="acme-1", kkt="a-1"), T0 - HOUR)
    store.tick(T0 - 50 * MINUTE)
    done = cleared(T0 - 40 * MINUTE, code="PRINTER_FAULT", site="acme-1", kkt="a-1")
    store.apply(done, T0 - 40 * MINUTE)
    store.tick(T0)
    for site, kkt, blocks_in in (("beta-1", "b-2", 3 * DAY), ("acme-1", "a-2", 10 * HOUR)):
        deadline = (NOW + blocks_in).isoformat()
        store.apply(
            raised(T0, code="OFD_QUEUE_STALE", site=site, kkt=kkt, ofd_block_at=deadline), T0
        )
    store.apply(raised(T0 + MINUTE, code="PAPER_OUT", site="acme-1", kkt="a-3"), T0 + MINUTE)
    return store


def problems(store: TicketStore, scope: Scope = EVERYTHING, **options: Any) -> list[str]:
    page = list_tickets(store, scope, NOW, clients=CLIENTS, **options)
    return [f"{t.kkt}:{t.problem}" for t in page.items]


def test_open_tickets_soonest_deadline_first_red_inside_the_margin(desk: TicketStore) -> None:
    page = list_tickets(desk, Scope(), NOW, clients=CLIENTS)
    assert [(t.kkt, t.problem) for t in page.items] == [
        ("a-2", "OFD_QUEUE_STALE"),
        ("b-2", "OFD_QUEUE_STALE"),
        ("a-3", "PAPER_OUT"),
    ]
    red, amber, none = page.items
    assert red.sla_deadline == red.block_at == NOW + 10 * HOUR and red.inside_margin
    assert amber.sla_deadline == NOW + 3 * DAY and not amber.inside_margin
    assert none.sla_deadline is None and not none.inside_margin
    assert (red.client, red.client_name, amber.client) == ("acme", "Acme", "beta")
    narrow = ConsoleSection(sla_margin_h=5)
    assert (
        not list_tickets(desk, Scope(), NOW, clients=CLIENTS, console=narrow).items[0].inside_margin
    )


def test_recent_adds_the_weeks_resolved_and_all_everything(desk: TicketStore) -> None:
    # No deadline: oldest first (the printer fault came an hour before the paper).
    assert problems(desk, state="recent") == [
        "a-2:OFD_QUEUE_STALE",
        "b-2:OFD_QUEUE_STALE",
        "a-1:PRINTER_FAULT",
        "a-3:PAPER_OUT",
    ]
    assert len(problems(desk, state="all")) == 5 and "b-1:COVER_OPEN" in problems(desk, state="all")


def test_scope_client_site_and_pages(desk: TicketStore) -> None:
    assert problems(desk, ACME, state="all") == [
        "a-2:OFD_QUEUE_STALE",
        "a-1:PRINTER_FAULT",
        "a-3:PAPER_OUT",
    ]
    assert problems(desk, ACME, client="beta") == [] and problems(desk, ACME, site="beta-1") == []
    assert problems(desk, client="beta", state="all") == ["b-2:OFD_QUEUE_STALE", "b-1:COVER_OPEN"]
    assert problems(desk, site="acme-1") == ["a-2:OFD_QUEUE_STALE", "a-3:PAPER_OUT"]
    first = list_tickets(desk, Scope(), NOW, state="all", page=1, per_page=2)
    last = list_tickets(desk, Scope(), NOW, state="all", page=3, per_page=2)
    assert (first.total, first.pages, len(first.items), len(last.items)) == (5, 3, 2, 1)
    with pytest.raises(ValueError):
        list_tickets(desk, Scope(), NOW, per_page=501)


def test_a_tickets_history_states_calls_and_answers(desk: TicketStore) -> None:
    (printer,) = [t for t in desk.tickets() if t.problem == "PRINTER_FAULT"]
    assert printer.id is not None
    calls = {(c.sink, c.action.value): c for c in desk.calls(printer.id)}
    desk.complete_call(calls[("desk", "open")].id, "OK-4711", T0)
    claimed = {call.id for call in desk.claim_calls("hook", 50, T0)}
    assert calls[("hook", "open")].id in claimed  # its resolve waits for the open
    desk.fail_call(calls[("hook", "open")].id, "HTTP 503 from the hook", None)
    found = get_ticket(desk, printer.id, Scope(), now=NOW, clients=CLIENTS)
    assert found is not None and found.client == "acme" and found.state is TicketState.RESOLVED
    states = [(e.at, e.state) for e in found.history if e.kind == "state"]
    assert states == [
        (T0 - HOUR, "pending"),
        (T0 - 50 * MINUTE, "open"),
        (T0 - 40 * MINUTE, "clearing"),
        (printer.resolved_at, "resolved"),
    ]
    answered = {(e.sink, e.action): (e.call_state, e.call_answer) for e in found.history if e.sink}
    assert answered[("desk", "open")] == ("done", "OK-4711")
    assert answered[("hook", "open")] == ("failed", "HTTP 503 from the hook")
    assert answered[("desk", "resolve")][0] == "pending"
    kinds = [e.kind for e in found.history]
    assert kinds.index("helpdesk_call") > kinds.index("state")  # the open, then its calls
    assert [e.at for e in found.history] == sorted(e.at for e in found.history)
    assert "PRINTER_FAULT" in found.description and found.helpdesk_ref == "OK-4711"


def test_a_ticket_out_of_scope_or_unknown_is_none(desk: TicketStore) -> None:
    ids = {t.kkt: t.id for t in desk.tickets()}
    assert get_ticket(desk, ids["b-2"] or 0, ACME) is None
    assert get_ticket(desk, ids["a-2"] or 0, ACME) is not None
    assert get_ticket(desk, 10**6, Scope()) is None and get_ticket(desk, 2**70, Scope()) is None
