"""The lifecycle decisions as pure functions: no database, the clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from ticket_facts import T0, cleared, policy, raised

from kktmon.protocol.contract import AgentState
from kktmon.protocol.health import Severity
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing.calls import CallAction

S = timedelta(seconds=1)
P = policy()


def decide_raised(ticket: lc.Ticket | None, fact: lc.ProblemRaised) -> lc.Change:
    change = lc.on_raised(ticket, fact, fact.at, P)
    assert change is not None
    return change


@pytest.mark.parametrize(
    ("severity", "priority"),
    [
        (Severity.INFO, lc.Priority.LOW),
        (Severity.WARNING, lc.Priority.NORMAL),
        (Severity.CRITICAL, lc.Priority.HIGH),
        (Severity.BLOCKED, lc.Priority.CRITICAL),
    ],
)
def test_priority_follows_severity(severity: Severity, priority: lc.Priority) -> None:
    assert decide_raised(None, raised(severity=severity)).ticket.priority is priority


def test_a_new_problem_is_pending_without_a_call() -> None:
    change = decide_raised(None, raised())
    assert (change.ticket.state, change.calls) == (lc.TicketState.PENDING, [])
    assert change.ticket.first_seen_at == T0


def test_the_tick_opens_only_after_the_hold_down() -> None:
    pending = decide_raised(None, raised()).ticket
    assert lc.on_tick(pending, T0 + 299 * S, P) is None
    change = lc.on_tick(pending, T0 + 300 * S, P)
    assert change is not None and [c.action for c in change.calls] == [CallAction.OPEN]


def test_escalating_a_pending_problem_calls_nobody() -> None:
    pending = decide_raised(None, raised()).ticket
    change = decide_raised(pending, raised(T0 + S, severity=Severity.CRITICAL))
    assert change.calls == [] and change.ticket.priority is lc.Priority.HIGH


def test_a_stale_fact_changes_nothing() -> None:
    ticket = decide_raised(None, raised(T0 + 10 * S)).ticket
    assert lc.on_raised(ticket, raised(T0), T0 + 11 * S, P) is None
    assert lc.on_cleared(ticket, cleared(T0), T0 + 11 * S, P) is None


def test_a_clear_without_a_ticket_leaves_a_tombstone() -> None:
    change = lc.on_cleared(None, cleared(T0, fn_serial=""), T0, P)
    assert change is not None and change.calls == []
    assert (change.ticket.state, change.ticket.last_event_at) == (lc.TicketState.RESOLVED, T0)
    assert change.ticket.opened_at is None


def test_fn_serial_scopes_only_fn_codes() -> None:
    assert raised(code="FN_EXPIRING", fn_serial="123").fn_serial == "123"
    assert raised(code="PAPER_OUT", fn_serial="123").fn_serial == ""
    assert raised(code="FN_EXPIRING").fn_serial == ""


def test_the_problem_deadline_beats_the_registers() -> None:
    ofd = (T0 + timedelta(days=9)).isoformat()
    snap = {"block_at": (T0 + timedelta(days=100)).isoformat()}
    ticket = decide_raised(None, raised(code="OFD_QUEUE_STALE", ofd_block_at=ofd, snapshot=snap))
    assert ticket.ticket.block_at == T0 + timedelta(days=9)
    opened_at = T0.isoformat()
    shift = decide_raised(None, raised(code="SHIFT_TOO_LONG", opened_at=opened_at, snapshot=snap))
    assert shift.ticket.block_at == T0 + timedelta(hours=24)
    expiring = {**snap, "block_reason": "fn_expiry"}
    fn = decide_raised(None, raised(code="FN_EXPIRING", snapshot=expiring))
    assert fn.ticket.block_at == T0 + timedelta(days=100), "the register names the same cause"
    paper = decide_raised(None, raised(snapshot=expiring))
    assert paper.ticket.block_at is None, "paper has no legal clock of its own"


def test_agent_statuses_order_by_session_then_time() -> None:
    def seen(state: str, session: int, at: datetime) -> lc.AgentSeen:
        return lc.AgentSeen(site="s", state=AgentState(state), session=session, at=at)

    online = lc.on_agent_seen(None, seen("online", 5, T0))
    assert online is not None
    assert lc.on_agent_seen(online, seen("lost", 4, T0 + S)) is None  # an old will
    assert lc.on_agent_seen(online, seen("lost", 5, T0 - S)) is None  # reordered
    lost = lc.on_agent_seen(online, seen("lost", 5, T0 + S))
    assert lost is not None and lost.state is AgentState.LOST
    assert lc.on_agent_seen(lost, seen("online", 6, T0)) is not None  # a new process


def test_agent_lost_due_counts_open_time_only() -> None:
    lunch = policy(closed_hours={"default": "13:00-14:00"})
    record = lc.AgentRecord(site="s", session=1, state=AgentState.LOST, last_status_at=T0)
    assert lc.agent_lost_due(record, P) == T0 + 900 * S
    # Lost at 12:55 UTC: 5 minutes before lunch, 10 after it.
    before_lunch = record.model_copy(update={"last_status_at": T0 + 55 * 60 * S})
    assert lc.agent_lost_due(before_lunch, lunch) == datetime(2026, 5, 4, 14, 10, tzinfo=UTC)
    online = record.model_copy(update={"state": AgentState.ONLINE})
    assert lc.agent_lost_due(online, P) is None
