"""WebhookSink against a real receiver that checks signatures; LocalSink; retry plumbing."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from helpdesk_calls import call
from webhook_receiver import WebhookReceiver

from kktmon.protocol.errors import ConfigError
from kktmon.ticketing.calls import CallAction, SinkError
from kktmon.ticketing.sinks import HttpRetry, LocalSink, RetryLaterError, WebhookSink, retry_after_s

SECRET = "whsec-3b1f9e"
FAST = HttpRetry(attempts=3, total_s=5.0, backoff_s=0.01, max_wait_s=0.5)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver(SECRET) as server:
        yield server


@pytest.fixture
def sink(receiver: WebhookReceiver) -> Iterator[WebhookSink]:
    with WebhookSink("hook", receiver.url, SECRET, timeout_s=0.5, retry=FAST) as made:
        yield made


def test_open_is_signed_and_returns_the_receivers_id(
    receiver: WebhookReceiver, sink: WebhookSink
) -> None:
    opened = call(CallAction.OPEN)
    assert sink.deliver(opened) == "wh-1"
    (rec,) = receiver.requests
    expected = hmac.new(SECRET.encode(), rec.body, hashlib.sha256).hexdigest()
    assert rec.headers["x-kktmon-signature"] == f"sha256={expected}"
    assert rec.headers["idempotency-key"] == opened.idempotency_key
    body = json.loads(rec.body)
    assert body["action"] == "open"
    assert body["ticket"]["block_at"] == "2026-05-13T00:00:00Z"
    assert rec.body == WebhookSink.body(opened)


def test_follow_up_returns_no_reference(receiver: WebhookReceiver, sink: WebhookSink) -> None:
    assert sink.deliver(call(CallAction.COMMENT, comment="still failing")) is None
    assert next(iter(receiver.accepted.values()))["comment"] == "still failing"


def test_a_repeated_key_answered_409_counts_as_delivered(
    receiver: WebhookReceiver, sink: WebhookSink
) -> None:
    opened = call(CallAction.OPEN)
    first = sink.deliver(opened)
    assert sink.deliver(opened) == first
    assert [r.headers["idempotency-key"] for r in receiver.requests] == [opened.idempotency_key] * 2
    assert len(receiver.accepted) == 1


def test_wrong_secret_is_refused_and_not_retried(receiver: WebhookReceiver) -> None:
    wrong = WebhookSink("hook", receiver.url, "other-secret", retry=FAST)
    with wrong, pytest.raises(SinkError) as caught:
        wrong.deliver(call())
    assert caught.value.retryable is False
    assert "HTTP 401" in str(caught.value)
    assert receiver.bad_signatures == 1


def test_5xx_is_retried_with_the_same_bytes(receiver: WebhookReceiver, sink: WebhookSink) -> None:
    receiver.inject(2, 503)
    assert sink.deliver(call()) == "wh-1"
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1


def test_5xx_beyond_the_budget_is_retryable(receiver: WebhookReceiver, sink: WebhookSink) -> None:
    receiver.inject(5, 500)
    with pytest.raises(RetryLaterError) as caught:
        sink.deliver(call())
    assert caught.value.retryable is True
    assert len(receiver.requests) == FAST.attempts


@pytest.mark.parametrize(("status", "retryable"), [(400, False), (404, False), (408, True)])
def test_4xx_classes(
    receiver: WebhookReceiver, sink: WebhookSink, status: int, retryable: bool
) -> None:
    receiver.inject(5, status)
    with pytest.raises(SinkError) as caught:
        sink.deliver(call())
    assert caught.value.retryable is retryable


def test_short_retry_after_is_slept_in_the_sink(
    receiver: WebhookReceiver, sink: WebhookSink
) -> None:
    receiver.inject(1, 429, retry_after="0.05")
    assert sink.deliver(call()) == "wh-1"
    assert len(receiver.requests) == 2


def test_long_retry_after_goes_back_to_the_dispatcher(
    receiver: WebhookReceiver, sink: WebhookSink
) -> None:
    receiver.inject(1, 429, retry_after="120")
    with pytest.raises(RetryLaterError) as caught:
        sink.deliver(call())
    assert caught.value.retry_after_s == 120.0
    assert len(receiver.requests) == 1


def test_a_stalled_receiver_times_out_and_is_retried(
    receiver: WebhookReceiver, sink: WebhookSink
) -> None:
    receiver.inject(1, 200, stall_s=2.0)
    assert sink.deliver(call()) == "wh-1"
    assert len(receiver.requests) == 2


def test_nobody_listening_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = WebhookSink("hook", f"http://127.0.0.1:{port}/x", SECRET, retry=FAST)
    with sink, pytest.raises(RetryLaterError, match="ConnectError"):
        sink.deliver(call())


def test_unsigned_when_no_secret_and_extra_headers_sent() -> None:
    with WebhookReceiver(None) as receiver:
        headers = {"X-Tenant": "north"}
        with WebhookSink("hook", receiver.url, None, headers=headers, retry=FAST) as sink:
            sink.deliver(call())
        (rec,) = receiver.requests
    assert "x-kktmon-signature" not in rec.headers
    assert rec.headers["x-tenant"] == "north"


def test_an_empty_secret_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="hook"):
        WebhookSink("hook", "http://127.0.0.1:9/", "")


def test_retry_after_reads_seconds_and_http_dates() -> None:
    def answer(value: str) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": value})

    assert retry_after_s(answer("7")) == 7.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    assert 80.0 < (retry_after_s(answer(later)) or 0.0) <= 90.0
    assert retry_after_s(answer("soon")) is None
    assert retry_after_s(httpx.Response(503)) is None


def test_local_sink_records_and_references_opened_tickets() -> None:
    local = LocalSink()
    assert local.deliver(call(CallAction.OPEN, ticket_id=42)) == "local-42"
    assert local.deliver(call(CallAction.RESOLVE, ticket_id=42)) is None
    assert [c.action for c in local.calls] == [CallAction.OPEN, CallAction.RESOLVE]
