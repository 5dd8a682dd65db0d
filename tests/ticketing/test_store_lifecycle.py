"""The ticket lifecycle through the store, on SQLite and PostgreSQL alike.

Hold-down, grace, reopening, escalation, duplicates, reordering, FN scoping and restarts.
Each test checks the tickets *and* the outbox: a ticket that changed without its call (or
a call without its change) is exactly what the single transaction exists to prevent.
"""

from __future__ import annotations

from datetime import timedelta

from ticket_facts import SINKS, T0, StoreFactory, cleared, raised

from kktmon.protocol.health import Severity
from kktmon.ticketing.calls import CallAction
from kktmon.ticketing.lifecycle import Priority, Ticket, TicketState
from kktmon.ticketing.store import OutcomeStatus, TicketStore, open_store

S = timedelta(seconds=1)
HOLD, GRACE = 300 * S, 1800 * S


def actions(store: TicketStore, sink: str = "desk") -> list[CallAction]:
    return [call.action for call in store.calls() if call.sink == sink]


def only_ticket(store: TicketStore) -> Ticket:
    tickets = store.tickets()
    assert len(tickets) == 1, tickets
    return tickets[0]


def opened(store: TicketStore) -> Ticket:
    """Raise at T0 and let the hold-down pass: the usual starting point."""
    store.apply(raised(T0), T0)
    store.tick(T0 + HOLD)
    ticket = only_ticket(store)
    assert ticket.state is TicketState.OPEN
    return ticket


def test_hold_down_keeps_a_new_problem_pending(store: TicketStore) -> None:
    outcome = store.apply(raised(T0), T0)
    assert outcome.status is OutcomeStatus.CHANGED
    assert outcome.changes[0].state is TicketState.PENDING
    assert store.tick(T0 + HOLD - S) == []
    assert only_ticket(store).state is TicketState.PENDING
    assert store.calls() == []

    changes = store.tick(T0 + HOLD)
    assert [(c.state, c.calls) for c in changes] == [(TicketState.OPEN, [CallAction.OPEN])]
    ticket = only_ticket(store)
    assert ticket.opened_at == T0 + HOLD
    # One call per configured sink, each with its own idempotency key.
    assert sorted(call.sink for call in store.calls()) == sorted(SINKS)
    assert len({call.idempotency_key for call in store.calls()}) == len(SINKS)
    assert store.tick(T0 + 2 * HOLD) == []


def test_a_problem_cleared_during_the_hold_down_never_reaches_the_help_desk(
    store: TicketStore,
) -> None:
    store.apply(raised(T0), T0)
    store.apply(cleared(T0 + 60 * S), T0 + 60 * S)
    assert only_ticket(store).state is TicketState.RESOLVED
    assert store.tick(T0 + 10 * HOLD) == []
    assert store.calls() == []
    assert store.list_tickets(include_resolved_since=T0) == []


def test_blocked_or_an_imminent_deadline_opens_at_once(store: TicketStore) -> None:
    blocked = store.apply(raised(T0, code="SHIFT_TOO_LONG", severity=Severity.BLOCKED), T0)
    assert blocked.calls == [CallAction.OPEN]
    soon = {
        "model": "ШТРИХ-М-01Ф",
        "block_at": (T0 + 200 * S).isoformat(),
        "block_reason": "ofd_30_days",
    }
    imminent = store.apply(raised(T0, code="OFD_TIMEOUT", snapshot=soon), T0)
    assert imminent.calls == [CallAction.OPEN]
    later = {"block_at": (T0 + 2 * HOLD).isoformat()}
    assert store.apply(raised(T0, code="CLOCK_SKEW", snapshot=later), T0).calls == []


def test_severities_outside_notify_stay_pending(make_store: StoreFactory) -> None:
    store = make_store(notify_severities=["critical", "blocked"])
    store.apply(raised(T0, severity=Severity.WARNING), T0)
    assert store.tick(T0 + 10 * HOLD) == []
    # Worse news later: the hold-down already passed, so the next tick opens it.
    store.apply(raised(T0 + 11 * HOLD, severity=Severity.CRITICAL), T0 + 11 * HOLD)
    assert [c.calls for c in store.tick(T0 + 11 * HOLD)] == [[CallAction.OPEN]]


def test_grace_period_before_resolving(store: TicketStore) -> None:
    opened(store)
    clear_at = T0 + 2 * HOLD
    store.apply(cleared(clear_at), clear_at)
    ticket = only_ticket(store)
    assert (ticket.state, ticket.clearing_since) == (TicketState.CLEARING, clear_at)
    assert store.tick(clear_at + GRACE - S) == []
    [change] = store.tick(clear_at + GRACE)
    assert (change.state, change.calls) == (TicketState.RESOLVED, [CallAction.RESOLVE])
    assert actions(store) == [CallAction.OPEN, CallAction.RESOLVE]
    assert only_ticket(store).resolved_at == clear_at + GRACE


def test_on_clear_comment_tells_the_help_desk_instead_of_resolving(
    make_store: StoreFactory,
) -> None:
    store = make_store(on_clear="comment")
    opened(store)
    store.apply(cleared(T0 + HOLD), T0 + HOLD)
    store.tick(T0 + HOLD + GRACE)
    assert actions(store) == [CallAction.OPEN, CallAction.COMMENT]
    comment = store.calls()[-1].comment or ""
    assert "Close the ticket" in comment


def test_recurrence_within_grace_reopens_the_same_ticket(store: TicketStore) -> None:
    first = opened(store)
    store.apply(cleared(T0 + HOLD + S), T0 + HOLD + S)
    again = T0 + HOLD + 600 * S
    outcome = store.apply(raised(again, severity=Severity.WARNING), again)
    assert outcome.calls == [CallAction.REOPEN]
    ticket = only_ticket(store)
    assert (ticket.id, ticket.state, ticket.clearing_since) == (first.id, TicketState.OPEN, None)
    reopen = store.calls()[-1]
    assert reopen.comment is not None and "came back" in reopen.comment
    assert store.tick(again + 2 * GRACE) == []  # open again: the old grace is gone


def test_recurrence_after_resolution_is_a_new_ticket(store: TicketStore) -> None:
    opened(store)
    store.apply(cleared(T0 + HOLD), T0 + HOLD)
    store.tick(T0 + HOLD + GRACE)
    later = T0 + HOLD + 2 * GRACE
    store.apply(raised(later), later)
    states = [t.state for t in store.tickets()]
    assert states == [TicketState.RESOLVED, TicketState.PENDING]


def test_escalation_raises_priority_and_comments_but_never_opens_a_second_ticket(
    store: TicketStore,
) -> None:
    first = opened(store)
    assert first.priority is Priority.NORMAL
    at = T0 + 2 * HOLD
    assert store.apply(raised(at, severity=Severity.CRITICAL), at).calls == [CallAction.ESCALATE]
    assert store.apply(raised(at + S, severity=Severity.CRITICAL), at + S).calls == []
    # Better news does not lower the help desk's priority, and says nothing.
    assert store.apply(raised(at + 2 * S, severity=Severity.WARNING), at + 2 * S).calls == []
    assert store.apply(raised(at + 3 * S, severity=Severity.BLOCKED), at + 3 * S).calls == [
        CallAction.ESCALATE
    ]
    ticket = only_ticket(store)
    assert (ticket.id, ticket.priority, ticket.severity) == (
        first.id,
        Priority.CRITICAL,
        Severity.BLOCKED,
    )
    assert actions(store) == [CallAction.OPEN, CallAction.ESCALATE, CallAction.ESCALATE]
    escalation = store.calls()[-1].comment or ""
    assert "warning to blocked" in escalation


def test_duplicate_events_are_applied_once(store: TicketStore) -> None:
    raise_event = raised(T0, severity=Severity.BLOCKED, event_id="ev-1")
    assert store.apply(raise_event, T0).status is OutcomeStatus.CHANGED
    assert store.apply(raise_event, T0 + S).status is OutcomeStatus.DUPLICATE
    clear_event = cleared(T0 + HOLD, event_id="ev-2")
    store.apply(clear_event, T0 + HOLD)
    store.tick(T0 + HOLD + GRACE)
    # A replay of the whole story after resolution changes nothing either.
    outcomes = store.apply_batch([raise_event, clear_event], T0 + 3 * GRACE)
    assert [o.status for o in outcomes] == [OutcomeStatus.DUPLICATE] * 2
    assert only_ticket(store).state is TicketState.RESOLVED
    assert actions(store) == [CallAction.OPEN, CallAction.RESOLVE]


def test_a_cleared_arriving_before_its_older_raise_wins(store: TicketStore) -> None:
    store.apply(cleared(T0 + 60 * S), T0 + 61 * S)
    outcome = store.apply(raised(T0, severity=Severity.BLOCKED), T0 + 62 * S)
    assert outcome.status is OutcomeStatus.STALE
    assert store.tick(T0 + 10 * HOLD) == []
    assert store.calls() == []
    assert [t.state for t in store.tickets()] == [TicketState.RESOLVED]
    # A genuinely newer raise still opens a ticket.
    newer = T0 + 120 * S
    assert store.apply(raised(newer), newer).changes[0].state is TicketState.PENDING


def test_an_older_raise_does_not_undo_a_newer_clear(store: TicketStore) -> None:
    opened(store)
    store.apply(cleared(T0 + 2 * HOLD), T0 + 2 * HOLD)
    late = raised(T0 + HOLD, severity=Severity.CRITICAL)  # delayed in some queue
    assert store.apply(late, T0 + 2 * HOLD + S).status is OutcomeStatus.STALE
    assert only_ticket(store).state is TicketState.CLEARING
    assert actions(store) == [CallAction.OPEN]


def test_fn_problems_are_keyed_by_the_drive(store: TicketStore) -> None:
    code = "FN_EXPIRING"
    store.apply(raised(T0, code=code, fn_serial="9960440300000001"), T0)
    store.apply(raised(T0 + S, code=code, fn_serial="9960440300000002"), T0 + S)
    store.apply(raised(T0 + S, code="PAPER_OUT", fn_serial="ignored-here"), T0 + S)
    serials = sorted(t.fn_serial for t in store.tickets())
    assert serials == ["", "9960440300000001", "9960440300000002"]
    # An emptied alert topic names no drive: it clears every live ticket of the code.
    outcome = store.apply(cleared(T0 + 2 * S, code=code, event_id=None), T0 + 2 * S)
    assert len(outcome.changes) == 2
    live = [t for t in store.tickets() if t.state is not TicketState.RESOLVED]
    assert [t.problem for t in live] == ["PAPER_OUT"]


def test_restart_keeps_tickets_dedup_and_keys(store_url: str, make_store: StoreFactory) -> None:
    first = make_store()
    first.apply(raised(T0, event_id="ev-restart"), T0)
    first.close()
    second = make_store()  # migrations run again: idempotent
    assert second.apply(raised(T0, event_id="ev-restart"), T0 + S).status is (
        OutcomeStatus.DUPLICATE
    )
    second.tick(T0 + HOLD)
    key_before = second.calls()[0].idempotency_key
    second.close()
    with open_store(store_url, sinks=SINKS) as third:
        assert [t.state for t in third.tickets()] == [TicketState.OPEN]
        assert third.calls()[0].idempotency_key == key_before
        assert third.tick(T0 + HOLD + S) == []


def test_list_tickets_sorted_by_block_at(store: TicketStore) -> None:
    def snap(hours: int | None) -> dict[str, str]:
        if hours is None:
            return {}
        return {
            "block_at": (T0 + timedelta(hours=hours)).isoformat(),
            "block_reason": "ofd_30_days",
        }

    for kkt, hours in [("shtrih-a", 48), ("shtrih-b", None), ("shtrih-c", 2), ("shtrih-d", 24)]:
        store.apply(raised(T0, code="OFD_TIMEOUT", kkt=kkt, snapshot=snap(hours)), T0)
    store.tick(T0 + HOLD)
    store.apply(cleared(T0 + HOLD, code="OFD_TIMEOUT", kkt="shtrih-d"), T0 + HOLD)
    store.tick(T0 + HOLD + GRACE)
    assert [r.kkt for r in store.list_tickets()] == ["shtrih-c", "shtrih-a", "shtrih-b"]
    rows = store.list_tickets(include_resolved_since=T0)
    assert [r.kkt for r in rows] == ["shtrih-c", "shtrih-d", "shtrih-a", "shtrih-b"]
    resolved = rows[1]
    assert (resolved.state, resolved.resolved_at) == (TicketState.RESOLVED, T0 + HOLD + GRACE)
    assert store.list_tickets(include_resolved_since=T0 + 2 * GRACE) == store.list_tickets()
    item = rows[0].model_dump(mode="json")
    for key in ("site", "kkt", "problem", "state", "severity", "opened_at", "resolved_at"):
        assert key in item
    assert {"block_at", "external_ref", "title"} <= item.keys()
