"""The outbox of help-desk calls: claim, complete, fail, expired claims and ordering."""

from __future__ import annotations

from datetime import timedelta

from ticket_facts import T0, StoreFactory, cleared, raised

from kktmon.protocol.health import Severity
from kktmon.ticketing.calls import CallAction
from kktmon.ticketing.store import TicketStore

S = timedelta(seconds=1)
GRACE = 1800 * S


def open_and_resolve(store: TicketStore) -> None:
    """One ticket with an OPEN and a RESOLVE call per sink."""
    store.apply(raised(T0, severity=Severity.BLOCKED, fn_serial="x"), T0)
    store.apply(cleared(T0 + S), T0 + S)
    store.tick(T0 + S + GRACE)


def test_claim_leases_calls_per_sink_in_order(store: TicketStore) -> None:
    open_and_resolve(store)
    now = T0 + 2 * GRACE
    [first] = store.claim_calls("desk", 10, now)
    # RESOLVE waits behind its ticket's OPEN, even though both are pending.
    assert first.action is CallAction.OPEN
    assert (first.attempts, first.ticket.site, first.ticket.device_serial) == (
        0,
        "store-001",
        "0012345678",
    )
    assert first.ticket.priority == "critical"
    assert "Receipt paper" in first.ticket.title
    assert store.claim_calls("desk", 10, now) == []  # leased
    [hook] = store.claim_calls("hook", 10, now)  # the other sink has its own calls
    assert hook.action is CallAction.OPEN and hook.idempotency_key != first.idempotency_key

    store.complete_call(first.id, "OK-101", now + S)
    [second] = store.claim_calls("desk", 10, now + S)
    assert second.action is CallAction.RESOLVE
    assert second.ticket.external_ref == "OK-101"  # the sink's own reference
    assert second.comment is not None and "no recurrence" in second.comment
    assert store.tickets()[0].external_ref == "OK-101"


def test_each_sink_sees_its_own_reference(store: TicketStore) -> None:
    open_and_resolve(store)
    now = T0 + 2 * GRACE
    [desk] = store.claim_calls("desk", 10, now)
    store.complete_call(desk.id, "OK-7", now)
    [hook] = store.claim_calls("hook", 10, now)
    store.complete_call(hook.id, None, now)  # a webhook has no reference to give
    [hook_resolve] = store.claim_calls("hook", 10, now)
    assert hook_resolve.ticket.external_ref is None
    [desk_resolve] = store.claim_calls("desk", 10, now)
    assert desk_resolve.ticket.external_ref == "OK-7"


def test_a_failed_call_waits_for_its_retry_time(store: TicketStore) -> None:
    open_and_resolve(store)
    now = T0 + 2 * GRACE
    [call] = store.claim_calls("desk", 10, now)
    store.fail_call(call.id, "HTTP 503", now + 60 * S)
    assert store.claim_calls("desk", 10, now + 59 * S) == []  # and RESOLVE waits behind it
    [again] = store.claim_calls("desk", 10, now + 60 * S)
    assert (again.id, again.attempts) == (call.id, 1)
    record = next(r for r in store.calls() if r.id == call.id)
    assert (record.state, record.last_error, record.attempts) == ("claimed", "HTTP 503", 2)


def test_a_given_up_call_is_kept_and_unblocks_the_next(store: TicketStore) -> None:
    open_and_resolve(store)
    now = T0 + 2 * GRACE
    [call] = store.claim_calls("desk", 10, now)
    store.fail_call(call.id, "HTTP 400: bad request " + "x" * 5000, None)
    record = next(r for r in store.calls() if r.id == call.id)
    assert record.state == "failed" and len(record.last_error or "") <= 2000
    [following] = store.claim_calls("desk", 10, now)
    assert following.action is CallAction.RESOLVE and following.ticket.external_ref is None


def test_an_expired_claim_is_claimed_again(make_store: StoreFactory) -> None:
    worker = make_store(claim_ttl_s=60)
    other = make_store(claim_ttl_s=60)
    worker.apply(raised(T0, severity=Severity.BLOCKED), T0)
    [call] = worker.claim_calls("desk", 10, T0)
    assert other.claim_calls("desk", 10, T0 + 59 * S) == []
    # The first worker died holding the claim; after the lease another one takes over.
    [retaken] = other.claim_calls("desk", 10, T0 + 60 * S)
    assert (retaken.id, retaken.idempotency_key, retaken.attempts) == (
        call.id,
        call.idempotency_key,
        1,
    )
    other.complete_call(retaken.id, "OK-1", T0 + 61 * S)
    # The first worker's late report of failure must not undo the success.
    worker.fail_call(call.id, "timeout", T0 + 120 * S)
    worker.complete_call(call.id, "OK-2", T0 + 62 * S)
    record = next(r for r in other.calls() if r.id == call.id)
    assert (record.state, record.external_ref) == ("done", "OK-1")
    assert other.claim_calls("desk", 10, T0 + 3600 * S) == []


def test_claim_respects_the_limit_and_age_order(store: TicketStore) -> None:
    for n in range(5):
        store.apply(raised(T0, kkt=f"shtrih-{n}", severity=Severity.BLOCKED), T0 + n * S)
    claimed = store.claim_calls("desk", 3, T0 + 10 * S)
    assert [c.ticket.kkt for c in claimed] == ["shtrih-0", "shtrih-1", "shtrih-2"]
    rest = store.claim_calls("desk", 10, T0 + 10 * S)
    assert [c.ticket.kkt for c in rest] == ["shtrih-3", "shtrih-4"]


def test_no_sinks_no_calls(make_store: StoreFactory) -> None:
    store = make_store(sinks=())
    outcome = store.apply(raised(T0, severity=Severity.BLOCKED), T0)
    assert outcome.calls == [CallAction.OPEN]  # decided, recorded in the store only
    assert store.calls() == []
