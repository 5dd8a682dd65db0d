"""The store's guards, on SQLite and PostgreSQL: caps on live tickets and registers with
their refusal counters, the dead-letter table, leases, and timestamps that read back."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

import pytest
from ticket_facts import T0, StoreFactory, cleared, raised

from kktmon.protocol.contract import AgentState
from kktmon.protocol.errors import TicketStoreError
from kktmon.protocol.health import Severity
from kktmon.ticketing import store_db
from kktmon.ticketing.lifecycle import AgentSeen
from kktmon.ticketing.store import Fact, OutcomeStatus, RegisterFacts, TicketStore, open_store

S = timedelta(seconds=1)
HOUR = timedelta(hours=1)


def live(store: TicketStore) -> list[str]:
    return sorted(f"{t.kkt}:{t.problem}" for t in store.tickets() if t.state != "resolved")


# --- caps ------------------------------------------------------------------------------


def test_live_tickets_per_register_are_capped(make_store: StoreFactory) -> None:
    store = make_store(limits={"live_tickets_per_register": 2})
    for n, code in enumerate(["PAPER_OUT", "COVER_OPEN", "PRINTER_FAULT"]):
        fact = raised(T0 + n * S, code=code)
        outcome = store.apply(fact, T0 + n * S)
        expected = OutcomeStatus.REFUSED if code == "PRINTER_FAULT" else OutcomeStatus.CHANGED
        assert outcome.status is expected
    # The refused event was seen: its redelivery is a duplicate, not a second refusal.
    assert store.apply(fact, T0 + 3 * S).status is OutcomeStatus.DUPLICATE
    assert live(store) == ["shtrih-0012345678:COVER_OPEN", "shtrih-0012345678:PAPER_OUT"]
    # A problem already ticketed still updates; another register has its own allowance.
    again = raised(T0 + 5 * S, code="PAPER_OUT", severity=Severity.CRITICAL)
    assert store.apply(again, T0 + 5 * S).status is OutcomeStatus.CHANGED
    assert store.apply(raised(T0, kkt="atol-1", code="X"), T0).status is OutcomeStatus.CHANGED
    (refusal,) = store.refusals()
    assert (refusal.site, refusal.reason, refusal.refused) == (
        "store-001",
        "live_tickets_per_register",
        1,
    )
    # Once a ticket resolves, there is room again (the reconciler brings the refused back).
    store.apply(cleared(T0 + 6 * S, code="COVER_OPEN"), T0 + 6 * S)  # pending -> resolved
    assert store.apply(raised(T0 + 7 * S, code="PRINTER_FAULT"), T0 + 7 * S).changes


def test_live_tickets_per_site_are_capped(make_store: StoreFactory) -> None:
    store = make_store(limits={"live_tickets_per_site": 3})
    facts = [raised(T0, kkt=f"shtrih-{n}") for n in range(5)]
    outcomes = store.apply_batch(facts, T0)
    statuses = [o.status for o in outcomes]
    assert statuses.count(OutcomeStatus.CHANGED) == 3
    assert statuses.count(OutcomeStatus.REFUSED) == 2
    assert store.apply(raised(T0, site="store-002"), T0).status is OutcomeStatus.CHANGED
    (refusal,) = store.refusals()
    assert (refusal.site, refusal.reason, refusal.refused) == (
        "store-001",
        "live_tickets_per_site",
        2,
    )
    assert refusal.first_at == T0 and refusal.last_at == T0


def test_a_batch_counts_the_tickets_it_writes_and_resolves_against_the_caps(
    make_store: StoreFactory,
) -> None:
    # The batch reads the live counts once (store_batch) and keeps them as it writes.
    store = make_store(limits={"live_tickets_per_register": 2})
    store.apply(raised(T0, code="COVER_OPEN"), T0)
    later = T0 + S
    facts: list[Fact] = [
        raised(later, code="PRINTER_FAULT"),  # applied last: the register is full again
        raised(later, code="PAPER_OUT"),  # room, once COVER_OPEN resolved
        cleared(later, code="COVER_OPEN"),  # pending -> resolved: room for one more
        raised(later, code="AAA"),  # applied first: the second live ticket
    ]
    statuses = [outcome.status for outcome in store.apply_batch(facts, later)]
    assert statuses == [OutcomeStatus.REFUSED] + [OutcomeStatus.CHANGED] * 3
    assert live(store) == ["shtrih-0012345678:AAA", "shtrih-0012345678:PAPER_OUT"]


def test_refusals_are_logged_once_per_site_and_hour(
    make_store: StoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    store = make_store(limits={"live_tickets_per_register": 1})
    store.apply(raised(T0), T0)
    caplog.set_level(logging.WARNING, logger="kktmon.ticketing")
    for n in range(5):
        store.apply(raised(T0 + n * S, code=f"CODE_{n}"), T0 + n * S)
    store.apply(raised(T0, code="OTHER", kkt="shtrih-2", site="store-002"), T0)  # room there
    store.apply(raised(T0 + HOUR, code="LATER"), T0 + HOUR)
    lines = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(lines) == 2, lines
    assert all("store-001" in line and "live_tickets_per_register" in line for line in lines)
    assert store.refusals()[0].refused == 6


def test_registers_per_site_are_capped(make_store: StoreFactory) -> None:
    store = make_store(limits={"registers_per_site": 2})

    def state(kkt: str, at: datetime) -> RegisterFacts:
        return RegisterFacts(site="store-001", kkt=kkt, facts={"model": kkt}, taken_at=at)

    store.record_states([state("a-1", T0), state("a-2", T0), state("a-3", T0)])
    store.record_states([state("a-1", T0 + S), state("a-4", T0 + S)])
    assert store.device_facts("store-001", "a-1") == {"model": "a-1"}
    assert store.device_facts("store-001", "a-3") is None
    assert store.device_facts("store-001", "a-4") is None
    (refusal,) = store.refusals()
    assert (refusal.reason, refusal.refused) == ("registers_per_site", 2)


def test_agent_lost_is_never_refused(make_store: StoreFactory) -> None:
    store = make_store(limits={"live_tickets_per_site": 1}, agent_lost_after_s=60)
    store.apply(raised(T0), T0)
    store.apply(AgentSeen(site="store-001", state=AgentState.LOST, session=1, at=T0), T0)
    store.tick(T0 + 2 * HOUR)
    assert sorted(t.problem for t in store.tickets()) == ["AGENT_LOST", "PAPER_OUT"]


# --- dead letters ----------------------------------------------------------------------


def test_dead_letters_keep_a_bounded_escaped_copy(make_store: StoreFactory) -> None:
    store = make_store(limits={"dead_letters_kept": 3})
    assert store.dead_letter_count() == 0
    payload = b'{"message": "a\x00b\xff\xfe' + b"x" * 10_000 + b'"}'
    store.record_dead_letter("kktmon/v1/s\x00/kkt/k/event", payload, "NUL \x00 here", T0)
    (letter,) = store.dead_letters()
    assert letter.payload_bytes == len(payload)
    assert letter.payload.startswith('{"message": "a\\x00b\\xff\\xfe')
    assert len(letter.payload.encode()) <= 4096 * 4 and "\x00" not in letter.payload
    assert "\x00" not in letter.topic and "\x00" not in letter.reason
    assert letter.received_at == T0
    for n in range(4):
        store.record_dead_letter(f"t/{n}", b"p", f"reason {n}", T0 + n * S)
    assert store.dead_letter_count() == 5
    assert [d.topic for d in store.dead_letters()] == ["t/3", "t/2", "t/1"]  # newest first


def test_dead_letters_survive_a_huge_topic_and_reason(store: TicketStore) -> None:
    store.record_dead_letter("t/" + "x" * 100_000, b"", "r" * 100_000, T0)
    (letter,) = store.dead_letters()
    assert len(letter.topic) <= 1024 and len(letter.reason) <= 1024


# --- leases ----------------------------------------------------------------------------


def test_a_lease_is_taken_renewed_expired_and_released(store: TicketStore) -> None:
    assert store.acquire_lease("reconcile", "w1", 30, T0)
    assert not store.acquire_lease("reconcile", "w2", 30, T0 + 10 * S)
    assert store.acquire_lease("reconcile", "w1", 30, T0 + 20 * S)  # renewed to T0+50s
    assert not store.acquire_lease("reconcile", "w2", 30, T0 + 45 * S)
    assert store.acquire_lease("reconcile", "w2", 30, T0 + 50 * S)  # expired: taken over
    assert not store.acquire_lease("reconcile", "w1", 30, T0 + 51 * S)
    assert store.acquire_lease("other", "w1", 30, T0 + 51 * S)  # leases are independent
    assert not store.release_lease("reconcile", "w1")  # not the holder: nothing happens
    assert not store.acquire_lease("reconcile", "w1", 30, T0 + 52 * S)
    assert store.release_lease("reconcile", "w2")
    assert store.acquire_lease("reconcile", "w1", 30, T0 + 52 * S)


def test_racing_workers_get_one_lease(make_store: StoreFactory) -> None:
    stores = [make_store() for _ in range(4)]
    rounds = 30
    barrier = threading.Barrier(len(stores), timeout=30)
    wins: list[list[str]] = [[] for _ in range(rounds)]
    errors: list[BaseException] = []

    def work(worker: int, store: TicketStore) -> None:
        try:
            for n in range(rounds):
                barrier.wait()
                # Each round starts after the last round's lease expired.
                if store.acquire_lease("reconcile", f"w{worker}", 10, T0 + n * 60 * S):
                    wins[n].append(f"w{worker}")
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(i, s)) for i, s in enumerate(stores)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert all(len(round_wins) == 1 for round_wins in wins), wins


# --- the schema --------------------------------------------------------------------


def test_a_version_1_store_upgrades_in_place(
    store_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(store_db, "SCHEMA_VERSION", 1)
        patch.setattr(store_db, "MIGRATIONS", {1: store_db.MIGRATIONS[1]})
        with open_store(store_url, now=T0) as old:
            old.apply(raised(T0, code="BEFORE"), T0)
            with pytest.raises(TicketStoreError):  # version 1 has no dead-letter table
                old.record_dead_letter("t", b"p", "r", T0)
    with open_store(store_url, now=T0 + HOUR) as store:
        version = store._run(lambda tx: tx.one("SELECT MAX(version) FROM schema_version"))
        assert version is not None and version[0] == store_db.SCHEMA_VERSION >= 2
        assert [t.problem for t in store.tickets()] == ["BEFORE"]
        store.record_dead_letter("t", b"p", "r", T0 + HOUR)
        assert store.dead_letter_count() == 1
        assert store.acquire_lease("reconcile", "w1", 30, T0 + HOUR)
    with open_store(store_url, now=T0 + 2 * HOUR) as again:  # a second open changes nothing
        assert again.dead_letter_count() == 1
