"""Two workers with their own connections racing on the same problems, on both stores.

A barrier lines the workers up before every step so their transactions overlap. However
the race falls, the database's unique key must leave one ticket per problem and one
call per action and sink.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

from ticket_facts import SINKS, T0, StoreFactory, cleared, raised

from kktmon.protocol.health import Severity
from kktmon.ticketing.lifecycle import TicketState
from kktmon.ticketing.store import TicketStore

ROUNDS = 50
S = timedelta(seconds=1)
HOLD, GRACE = 300 * S, 1800 * S


def race(stores: list[TicketStore], step: Callable[[TicketStore, int, int], object]) -> None:
    """Run ``step(store, worker, round)`` for every round, all workers released together."""
    barrier = threading.Barrier(len(stores), timeout=30)
    errors: list[BaseException] = []

    def work(worker: int, store: TicketStore) -> None:
        try:
            for n in range(ROUNDS):
                barrier.wait()
                step(store, worker, n)
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [
        threading.Thread(target=work, args=(i, s), name=f"worker-{i}") for i, s in enumerate(stores)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors


def kkt(n: int) -> str:
    return f"shtrih-{n:04}"


def calls_per_ticket(store: TicketStore) -> Counter[tuple[int, str, str]]:
    return Counter((c.ticket_id, c.sink, c.action.value) for c in store.calls())


def test_racing_urgent_raises_open_one_ticket_each(make_store: StoreFactory) -> None:
    workers = [make_store(), make_store()]

    def step(store: TicketStore, worker: int, n: int) -> None:
        # Even rounds: the same event twice; odd rounds: the event and the reconciler's
        # retained alert, two ids for one problem.
        event_id = f"ev-{n}" if n % 2 == 0 else f"ev-{n}-{worker}"
        store.apply(raised(T0, kkt=kkt(n), severity=Severity.BLOCKED, event_id=event_id), T0)

    race(workers, step)
    tickets = workers[0].tickets()
    assert sorted(t.kkt for t in tickets) == [kkt(n) for n in range(ROUNDS)]
    assert {t.state for t in tickets} == {TicketState.OPEN}
    counts = calls_per_ticket(workers[0])
    assert len(counts) == ROUNDS * len(SINKS)
    assert set(counts.values()) == {1}
    assert {action for _, _, action in counts} == {"open"}


def test_racing_ticks_open_and_resolve_once(make_store: StoreFactory) -> None:
    workers = [make_store(), make_store()]
    race(workers, lambda s, w, n: s.apply(raised(T0, kkt=kkt(n), event_id=f"r{n}-{w}"), T0))
    assert len(workers[0].tickets()) == ROUNDS
    # Every round both workers tick at the same moment: each ticket opens once.
    race(workers, lambda s, w, n: s.tick(T0 + HOLD + n * S))
    race(workers, lambda s, w, n: s.apply(cleared(T0 + 2 * HOLD, kkt=kkt(n)), T0 + 2 * HOLD))
    race(workers, lambda s, w, n: s.tick(T0 + 2 * HOLD + GRACE + n * S))
    tickets = workers[1].tickets()
    assert len(tickets) == ROUNDS
    assert {t.state for t in tickets} == {TicketState.RESOLVED}
    counts = calls_per_ticket(workers[1])
    assert len(counts) == ROUNDS * len(SINKS) * 2
    assert set(counts.values()) == {1}


def test_racing_claims_hand_each_call_to_one_worker(make_store: StoreFactory) -> None:
    workers = [make_store(), make_store()]
    for n in range(ROUNDS):
        workers[0].apply(raised(T0, kkt=kkt(n), severity=Severity.BLOCKED), T0)
    taken: list[list[int]] = [[], []]
    race(workers, lambda s, w, n: taken[w].extend(c.id for c in s.claim_calls("desk", 3, T0)))
    both = taken[0] + taken[1]
    assert sorted(both) == sorted(set(both))  # nobody got a call twice
    assert len(both) == ROUNDS


def test_a_raise_and_its_clear_racing_on_a_new_problem_leave_nothing_live(
    make_store: StoreFactory,
) -> None:
    """Found by benchmarks/ticketing.py --flapping: with no row to lock, a raise and a
    clear in two workers both saw "no ticket" and wrote a live one and a tombstone."""
    stores = [make_store(), make_store()]

    def step(store: TicketStore, worker: int, n: int) -> None:
        if worker == 0:
            store.apply(raised(T0, kkt=kkt(n)), T0)
        else:
            store.apply(cleared(T0 + S, kkt=kkt(n)), T0 + S)

    race(stores, step)
    stores[0].tick(T0 + 2 * HOLD)
    live = [t for t in stores[0].tickets() if t.state is not TicketState.RESOLVED]
    assert live == [], f"{len(live)} problems cleared after they were raised are still live"
    # A later raise of any of them still opens exactly one new ticket (no endless retries).
    stores[1].apply(raised(T0 + 3 * HOLD, kkt=kkt(0), severity=Severity.BLOCKED), T0 + 3 * HOLD)
    assert (
        len(
            [
                t
                for t in stores[1].tickets()
                if t.kkt == kkt(0) and t.state is not TicketState.RESOLVED
            ]
        )
        == 1
    )


def test_racing_batches_over_the_same_problems_in_any_order_open_one_ticket_each(
    make_store: StoreFactory,
) -> None:
    """A batch locks all its problems up front (store_batch): two workers whose batches
    name the same problems in opposite orders take turns, and each problem gets one."""
    stores = [make_store(), make_store()]
    codes = ["PAPER_OUT", "COVER_OPEN", "PRINTER_FAULT"]

    def step(store: TicketStore, worker: int, n: int) -> None:
        facts = [
            raised(T0 + worker * S, kkt=kkt(n * 4 + i), code=code, severity=Severity.BLOCKED)
            for i in range(4)
            for code in codes
        ]
        store.apply_batch(facts if worker == 0 else facts[::-1], T0 + worker * S)

    race(stores, step)
    live = Counter(
        (t.kkt, t.problem) for t in stores[0].tickets() if t.state is not TicketState.RESOLVED
    )
    assert len(live) == ROUNDS * 4 * len(codes)
    assert set(live.values()) == {1}
    assert set(calls_per_ticket(stores[0]).values()) == {1}  # one OPEN per ticket and sink
