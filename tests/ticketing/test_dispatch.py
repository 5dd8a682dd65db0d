"""Dispatcher with an in-memory CallStore and real sinks against local servers."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from helpdesk_calls import T0, call
from okdesk_server import OkdeskServer
from webhook_receiver import WebhookReceiver

from kktmon.ticketing.calls import CallAction, HelpdeskCall, Sink
from kktmon.ticketing.dispatch import Backoff, Dispatcher
from kktmon.ticketing.okdesk import OkdeskSink
from kktmon.ticketing.sinks import HttpRetry, LocalSink, WebhookSink

ONCE = HttpRetry(attempts=1, total_s=2.0, backoff_s=0.01, max_wait_s=0.1)
STEADY = Backoff(first_s=10.0, max_s=35.0, jitter=0.0)
LEASE = timedelta(minutes=5)


@dataclass
class Row:
    sink: str
    call: HelpdeskCall
    state: str = "pending"  # pending, done, failed
    retry_at: datetime | None = None
    claimed_until: datetime | None = None
    error: str | None = None


class FakeCallStore:
    """The CallStore protocol in memory: claims expire after LEASE; the TicketView is built
    at claim time, so a follow-up sees the reference its OPEN recorded."""

    def __init__(self) -> None:
        self.rows: dict[int, Row] = {}
        self.refs: dict[int, str] = {}
        self.retry_delays: list[float] = []

    def add(self, sink: str, new: HelpdeskCall) -> None:
        self.rows[new.id] = Row(sink, new)

    def claim_calls(self, sink: str, limit: int, now: datetime) -> list[HelpdeskCall]:
        due = [
            row
            for row in self.rows.values()
            if row.sink == sink
            and row.state == "pending"
            and (row.retry_at is None or row.retry_at <= now)
            and (row.claimed_until is None or row.claimed_until <= now)
        ]
        claimed = []
        for row in sorted(due, key=lambda r: r.call.id)[:limit]:
            row.claimed_until = now + LEASE
            ref = self.refs.get(row.call.ticket.ticket_id)
            ticket = row.call.ticket.model_copy(update={"external_ref": ref})
            claimed.append(row.call.model_copy(update={"ticket": ticket}))
        return claimed

    def complete_call(self, call_id: int, external_ref: str | None, now: datetime) -> None:
        row = self.rows[call_id]
        row.state, row.claimed_until = "done", None
        if external_ref is not None:
            self.refs[row.call.ticket.ticket_id] = external_ref

    def fail_call(self, call_id: int, error: str, retry_at: datetime | None) -> None:
        row = self.rows[call_id]
        row.call = row.call.model_copy(update={"attempts": row.call.attempts + 1})
        row.error, row.retry_at, row.claimed_until = error, retry_at, None
        if retry_at is None:
            row.state = "failed"


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Crash(BaseException):
    """The worker dying: nothing in the dispatcher may catch it."""


class CrashAfterDelivery:
    def __init__(self, inner: Sink) -> None:
        self.name = inner.name
        self.inner = inner

    def deliver(self, call: HelpdeskCall) -> str | None:
        self.inner.deliver(call)
        raise Crash


@pytest.fixture
def store() -> FakeCallStore:
    return FakeCallStore()


@pytest.fixture
def okdesk() -> Iterator[OkdeskServer]:
    register = {"id": 31, "serial_number": "0012345678", "company": {"id": 45}}
    with OkdeskServer(equipments=[register]) as server:
        yield server


@pytest.fixture
def okdesk_sink(okdesk: OkdeskServer) -> Iterator[OkdeskSink]:
    url = okdesk.base_url
    with OkdeskSink("okdesk", url, okdesk.token, author_id=1, timeout_s=0.5, retry=ONCE) as sink:
        yield sink


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver("s3cret") as server:
        yield server


@pytest.fixture
def webhook(receiver: WebhookReceiver) -> Iterator[WebhookSink]:
    with WebhookSink("hook", receiver.url, "s3cret", timeout_s=0.5, retry=ONCE) as sink:
        yield sink


def dispatcher(store: FakeCallStore, *sinks: Sink, clock: Clock) -> Dispatcher:
    return Dispatcher(store, {s.name: s for s in sinks}, clock=clock, backoff=STEADY)


def test_delivered_calls_are_completed_with_their_reference(store: FakeCallStore) -> None:
    store.add("local", call(CallAction.OPEN, call_id=1))
    store.add("local", call(CallAction.COMMENT, call_id=2))
    stats = dispatcher(store, LocalSink(), clock=Clock()).run_once(T0)
    assert (stats.claimed, stats.delivered) == (2, 2)
    assert {r.state for r in store.rows.values()} == {"done"}
    assert store.refs == {7: "local-7"}


def test_5xx_is_retried_with_capped_exponential_backoff(
    store: FakeCallStore, receiver: WebhookReceiver, webhook: WebhookSink
) -> None:
    receiver.inject(5, 500)
    store.add("hook", call())
    clock = Clock()
    run = dispatcher(store, webhook, clock=clock)
    delays = []
    while store.rows[1].state == "pending":
        stats = run.run_once(clock.now)
        assert stats.claimed == 1
        retry_at = store.rows[1].retry_at
        if store.rows[1].state == "pending":
            assert retry_at is not None
            delays.append((retry_at - clock.now).total_seconds())
            assert run.run_once(retry_at - timedelta(seconds=1)).claimed == 0  # not early
            clock.now = retry_at
    assert delays == [10.0, 20.0, 35.0, 35.0, 35.0]
    assert store.rows[1].state == "done" and store.refs == {7: "wh-1"}


def test_a_refused_call_is_given_up_and_kept(
    store: FakeCallStore, receiver: WebhookReceiver, webhook: WebhookSink
) -> None:
    receiver.inject(1, 400)
    store.add("hook", call())
    run = dispatcher(store, webhook, clock=Clock())
    assert run.run_once(T0).given_up == 1
    row = store.rows[1]
    assert (row.state, row.retry_at) == ("failed", None)
    assert row.error is not None and "HTTP 400" in row.error
    assert run.run_once(T0 + timedelta(days=1)).claimed == 0
    assert len(receiver.requests) == 1


def test_429_retry_after_is_honoured(
    store: FakeCallStore, receiver: WebhookReceiver, webhook: WebhookSink
) -> None:
    receiver.inject(1, 429, retry_after="120")
    store.add("hook", call())
    fast = Backoff(first_s=1.0, jitter=0.0)
    Dispatcher(store, {"hook": webhook}, clock=Clock(), backoff=fast).run_once(T0)
    assert store.rows[1].retry_at == T0 + timedelta(seconds=120)


def test_a_crash_between_delivery_and_record_opens_one_okdesk_issue(
    store: FakeCallStore, okdesk: OkdeskServer, okdesk_sink: OkdeskSink
) -> None:
    store.add("okdesk", call(CallAction.OPEN, call_id=1))
    store.add("okdesk", call(CallAction.COMMENT, call_id=2, comment="unsent: 12"))
    clock = Clock()
    with pytest.raises(Crash):
        dispatcher(store, CrashAfterDelivery(okdesk_sink), clock=clock).run_once(T0)
    assert len(okdesk.issues) == 1 and store.rows[1].state == "pending"

    restarted = dispatcher(store, okdesk_sink, clock=clock)
    assert restarted.run_once(T0 + timedelta(minutes=1)).claimed == 0  # the dead claim holds
    clock.now = T0 + LEASE
    stats = restarted.run_once(clock.now)
    # The comment was claimed with the OPEN, before there was a reference: it waits.
    assert (stats.delivered, stats.retrying) == (1, 1)
    assert store.refs == {7: "1"}
    clock.now = store.rows[2].retry_at or clock.now
    assert restarted.run_once(clock.now).delivered == 1
    assert len(okdesk.issues) == 1
    assert len(okdesk.creates) == 1
    assert len(okdesk.comments[1]) == 1


def test_a_lost_create_answer_is_settled_by_the_next_attempt(
    store: FakeCallStore, okdesk: OkdeskServer, okdesk_sink: OkdeskSink
) -> None:
    okdesk.inject(1, 500, match="POST /api/v1/issues", after=True)
    store.add("okdesk", call())
    clock = Clock()
    run = dispatcher(store, okdesk_sink, clock=clock)
    assert run.run_once(T0).retrying == 1
    clock.now = store.rows[1].retry_at or T0
    assert run.run_once(clock.now).delivered == 1
    assert store.refs == {7: "1"} and len(okdesk.issues) == 1


class Broken:
    name = "broken"

    def deliver(self, call: HelpdeskCall) -> str | None:
        raise ValueError("bug in a sink")


class ForgetfulStore(FakeCallStore):
    def complete_call(self, call_id: int, external_ref: str | None, now: datetime) -> None:
        raise OSError("database is gone")


class UnreachableStore(FakeCallStore):
    def claim_calls(self, sink: str, limit: int, now: datetime) -> list[HelpdeskCall]:
        raise OSError("database is gone")


def test_sink_bugs_and_store_outages_never_escape(store: FakeCallStore) -> None:
    store.add("broken", call())
    assert dispatcher(store, Broken(), clock=Clock()).run_once(T0).retrying == 1
    assert store.rows[1].error == "ValueError: bug in a sink"

    forgetful = ForgetfulStore()
    forgetful.add("local", call())
    stats = dispatcher(forgetful, LocalSink(), clock=Clock()).run_once(T0)
    assert (stats.delivered, stats.store_errors) == (0, 1)

    assert dispatcher(UnreachableStore(), LocalSink(), clock=Clock()).run_once(T0).store_errors == 1


def test_max_attempts_gives_up(store: FakeCallStore) -> None:
    store.add("broken", call())
    clock = Clock()
    policy = Backoff(first_s=1.0, jitter=0.0, max_attempts=2)
    run = Dispatcher(store, {"broken": Broken()}, clock=clock, per_sink={"broken": policy})
    run.run_once(T0)
    clock.now = store.rows[1].retry_at or T0
    assert run.run_once(clock.now).given_up == 1
    assert store.rows[1].state == "failed"


def test_backoff_caps_and_jitters_within_bounds() -> None:
    policy = Backoff(first_s=30.0, max_s=3600.0, jitter=0.1)
    rng = random.Random(4)
    assert 30.0 <= policy.delay_s(1, rng) <= 33.0
    assert 60.0 <= policy.delay_s(2, rng) <= 66.0
    assert policy.delay_s(10_000, rng) == 3600.0


def test_run_forever_delivers_until_stopped(store: FakeCallStore) -> None:
    store.add("local", call())
    stop = threading.Event()
    run = Dispatcher(store, {"local": LocalSink()}, idle_s=0.01)
    worker = threading.Thread(target=run.run_forever, args=(stop,), name="dispatcher")
    worker.start()
    deadline = time.monotonic() + 5.0
    while store.rows[1].state != "done" and time.monotonic() < deadline:
        time.sleep(0.01)
    stop.set()
    worker.join(timeout=5.0)
    assert not worker.is_alive()
    assert store.rows[1].state == "done"
