"""What one transaction of facts reads once and writes together (store_batch), both stores:
it must decide exactly as fact-by-fact reads and writes would have."""

from __future__ import annotations

from datetime import timedelta

import pytest
from ticket_facts import T0, StoreFactory, cleared, raised

from kktmon.protocol.health import Severity
from kktmon.ticketing.lifecycle import Ticket, TicketState
from kktmon.ticketing.store import Fact, TicketStore
from kktmon.ticketing.store_batch import Batch
from kktmon.ticketing.store_db import SELECT_TICKET, LostRaceError, Tx, insert_ticket

S = timedelta(seconds=1)
KEY = ("store-001", "shtrih-0012345678", "PAPER_OUT")


def test_changes_of_one_ticket_in_one_batch_count_every_revision(
    make_store: StoreFactory,
) -> None:
    store = make_store(open_after_s=0)
    store.apply(raised(T0), T0)
    store.tick(T0)  # open: the help desk has it
    facts: list[Fact] = [
        raised(T0 + S, severity=Severity.CRITICAL),  # escalate: a call
        cleared(T0 + 2 * S),  # clearing
        raised(T0 + 3 * S, severity=Severity.CRITICAL),  # back: reopen, a call
    ]
    store.apply_batch(facts, T0 + 3 * S)
    (ticket,) = store.tickets()
    assert ticket.state is TicketState.OPEN
    assert ticket.revision == 5  # inserted, opened, then three changes written as one
    keys = [call.idempotency_key for call in store.calls()]
    assert len(keys) == len(set(keys)), "each change's calls carry its own revision"
    assert any("-r3-escalate-" in key for key in keys)
    assert any("-r5-reopen-" in key for key in keys)


def test_a_ticket_whose_revision_moved_on_is_a_lost_race_and_nothing_is_written(
    store: TicketStore,
) -> None:
    store.apply(raised(T0), T0)
    with pytest.raises(LostRaceError), store._transaction() as tx:
        batch = Batch(tx, [KEY])
        current = batch.newest(*KEY, "")
        assert current is not None
        moved = current.model_copy(update={"revision": current.revision + 2, "title": "x"})
        batch.update_later(moved)  # claims the store holds revision 2: it holds 1
        batch.flush()
    (ticket,) = store.tickets()
    assert ticket.revision == 1 and ticket.title != "x"


def test_a_live_ticket_wins_over_a_newer_tombstone(store: TicketStore) -> None:
    store.apply(raised(T0), T0)
    (live,) = store.tickets()

    def tombstone(tx: Tx) -> None:  # as two workers racing once could leave them
        resolved = live.model_copy(update={"id": None, "state": TicketState.RESOLVED})
        assert insert_ticket(tx, resolved) is not None

    store._run(tombstone)
    with store._transaction() as tx:
        batch = Batch(tx, [KEY])
        newest = batch.newest(*KEY, "")
        assert newest is not None and newest.id == live.id
        assert [t.id for t in batch.live(*KEY)] == [live.id]
        rows = tx.all(SELECT_TICKET + " ORDER BY id")
        assert len(rows) == 2


def test_what_a_batch_reads_is_what_one_read_per_problem_gives(store: TicketStore) -> None:
    codes = [f"CODE_{n}" for n in range(7)]
    for n, code in enumerate(codes):
        store.apply(raised(T0, code=code), T0)
        if n % 2:
            store.apply(cleared(T0 + S, code=code), T0 + S)  # pending -> resolved
            store.apply(raised(T0 + 2 * S, code=code), T0 + 2 * S)  # a new one
    keys = [(KEY[0], KEY[1], code) for code in codes]
    with store._transaction() as tx:
        batch = Batch(tx, keys)
        together = {key: batch.newest(*key, "") for key in keys}
    for key in keys:
        with store._transaction() as tx:
            alone: Ticket | None = Batch(tx, [key]).newest(*key, "")
        assert together[key] == alone and alone is not None
        assert alone.state is TicketState.PENDING
