"""AGENT_LOST through the store: grace outside closed hours, clean stops, stale wills."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ticket_facts import T0, StoreFactory

from kktmon.protocol.contract import AgentState
from kktmon.protocol.problems import ProblemCode
from kktmon.ticketing.calls import CallAction
from kktmon.ticketing.lifecycle import AGENT_KKT, AgentSeen, TicketState
from kktmon.ticketing.store import OutcomeStatus, TicketStore

S = timedelta(seconds=1)
AGENT_LOST = ProblemCode.AGENT_LOST
LOST_AFTER = 900 * S


def seen(state: str, session: int, at: datetime, site: str = "store-001") -> AgentSeen:
    return AgentSeen(site=site, state=AgentState(state), session=session, at=at)


def lost_tickets(store: TicketStore) -> list[TicketState]:
    return [t.state for t in store.tickets() if t.problem == AGENT_LOST]


def test_a_lost_agent_opens_agent_lost_after_its_grace(store: TicketStore) -> None:
    store.apply(seen("online", 3, T0), T0)
    store.apply(seen("lost", 3, T0 + S), T0 + S)
    assert store.tick(T0 + LOST_AFTER) == []
    [change] = store.tick(T0 + S + LOST_AFTER)
    assert (change.kkt, change.problem, change.state) == (AGENT_KKT, AGENT_LOST, TicketState.OPEN)
    assert change.calls == [CallAction.OPEN]
    assert store.tick(T0 + 10 * LOST_AFTER) == []  # one ticket, however long it lasts
    ticket = store.tickets()[0]
    assert "store-001" in ticket.title and "lost" in ticket.description


def test_the_agent_coming_back_clears_and_resolves_after_grace(store: TicketStore) -> None:
    store.apply(seen("lost", 3, T0), T0)
    store.tick(T0 + LOST_AFTER)
    back = T0 + 2 * LOST_AFTER
    outcome = store.apply(seen("online", 3, back), back)  # same process, reconnected
    assert [c.state for c in outcome.changes] == [TicketState.CLEARING]
    store.tick(back + 1800 * S)
    assert lost_tickets(store) == [TicketState.RESOLVED]
    assert [c.action for c in store.calls() if c.sink == "desk"] == [
        CallAction.OPEN,
        CallAction.RESOLVE,
    ]


def test_a_newer_session_clears_and_an_older_will_is_ignored(store: TicketStore) -> None:
    store.apply(seen("lost", 4, T0), T0)
    store.tick(T0 + LOST_AFTER)
    assert lost_tickets(store) == [TicketState.OPEN]
    store.apply(seen("online", 5, T0 + LOST_AFTER + S), T0 + LOST_AFTER + S)
    assert lost_tickets(store) == [TicketState.CLEARING]
    # The old process's will, delivered late: older session, must not count.
    late = T0 + LOST_AFTER + 2 * S
    assert store.apply(seen("lost", 4, late), late).status is OutcomeStatus.STALE
    assert store.tick(late + 3 * LOST_AFTER) != []  # only the grace expiring
    assert lost_tickets(store) == [TicketState.RESOLVED]
    [agent] = store.agents()
    assert (agent.session, agent.state) == (5, AgentState.ONLINE)


def test_a_clean_offline_never_opens_a_ticket(store: TicketStore) -> None:
    store.apply(seen("online", 1, T0), T0)
    store.apply(seen("offline", 1, T0 + S), T0 + S)
    assert store.tick(T0 + 100 * LOST_AFTER) == []
    assert store.tickets() == []


def test_a_repeated_lost_keeps_its_first_time(store: TicketStore) -> None:
    store.apply(seen("lost", 2, T0), T0)
    # The retained will seen again (a restarted subscriber) must not restart the grace.
    repeat = store.apply(seen("lost", 2, T0 + LOST_AFTER - S), T0 + LOST_AFTER - S)
    assert repeat.status is OutcomeStatus.UNCHANGED
    assert len(store.tick(T0 + LOST_AFTER)) == 1


def test_closed_hours_pause_the_grace(make_store: StoreFactory) -> None:
    hours = {"timezone": "Europe/Moscow", "default": "22:00-08:00", "store-024": ""}
    store = make_store(closed_hours=hours)
    msk = timedelta(hours=3)
    evening = datetime(2026, 5, 4, 21, 50, tzinfo=UTC) - msk  # 21:50 Moscow
    store.apply(seen("lost", 1, evening), evening)
    store.apply(seen("lost", 1, evening, site="store-024"), evening)
    night = datetime(2026, 5, 5, 3, 0, tzinfo=UTC) - msk
    # The round-the-clock store opens at once; the other waits for the morning.
    assert [c.site for c in store.tick(night)] == ["store-024"]
    # 10 minutes counted before 22:00, the other 5 after 08:00 the next day.
    due = datetime(2026, 5, 5, 8, 5, tzinfo=UTC) - msk
    assert store.tick(due - S) == []
    [change] = store.tick(due)
    assert (change.site, change.state) == ("store-001", TicketState.OPEN)


def test_lost_again_within_grace_reopens(store: TicketStore) -> None:
    store.apply(seen("lost", 1, T0), T0)
    store.tick(T0 + LOST_AFTER)
    store.apply(seen("online", 2, T0 + LOST_AFTER + S), T0 + LOST_AFTER + S)
    again = T0 + LOST_AFTER + 10 * S
    store.apply(seen("lost", 2, again), again)
    [change] = store.tick(again + LOST_AFTER)
    assert change.calls == [CallAction.REOPEN]
    assert lost_tickets(store) == [TicketState.OPEN]


def test_a_late_online_still_clears_a_ticket_opened_meanwhile(store: TicketStore) -> None:
    store.apply(seen("lost", 1, T0), T0)
    store.tick(T0 + LOST_AFTER)  # opened while the online below sat in some queue
    late = store.apply(seen("online", 1, T0 + 60 * S), T0 + LOST_AFTER + S)
    assert [c.state for c in late.changes] == [TicketState.CLEARING]
    ticket = next(t for t in store.tickets() if t.problem == AGENT_LOST)
    assert "Register:" not in ticket.description
