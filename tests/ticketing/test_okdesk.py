"""OkdeskSink against a local Okdesk that checks every request (tests/helpers/okdesk_server)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from helpdesk_calls import call
from okdesk_server import OkdeskServer

from kktmon.protocol.errors import ConfigError
from kktmon.ticketing.calls import CallAction, SinkError
from kktmon.ticketing.okdesk import OkdeskSink
from kktmon.ticketing.sinks import HttpRetry, RetryLaterError

FAST = HttpRetry(attempts=3, total_s=5.0, backoff_s=0.01, max_wait_s=0.5)
REGISTER = {
    "id": 31,
    "serial_number": "0012345678",
    "inventory_number": "INV-77",
    "maintenance_entity_id": 15,
    "company": {"id": 45, "name": "Магазин 12"},
    "equipment_kind": {"id": 2, "code": "kkt", "name": "ККТ"},
}
PRIORITIES = {"low": "low", "normal": "normal", "high": "high", "critical": "critical"}


@pytest.fixture
def okdesk() -> Iterator[OkdeskServer]:
    with OkdeskServer(equipments=[REGISTER]) as server:
        yield server


def make_sink(server: OkdeskServer, token: str | None = None) -> OkdeskSink:
    return OkdeskSink(
        "okdesk",
        server.base_url + "/api/v1/",
        token or server.token,
        author_id=1,
        issue_type="incident",
        priorities=PRIORITIES,
        timeout_s=0.5,
        retry=FAST,
    )


@pytest.fixture
def sink(okdesk: OkdeskServer) -> Iterator[OkdeskSink]:
    with make_sink(okdesk) as made:
        yield made


def opened(okdesk: OkdeskSink) -> str:
    ref = okdesk.deliver(call(CallAction.OPEN))
    assert ref is not None
    return ref


def test_open_creates_an_issue_with_the_register_attached(
    okdesk: OkdeskServer, sink: OkdeskSink
) -> None:
    assert sink.deliver(call(CallAction.OPEN)) == "1"
    (create,) = okdesk.creates
    fields = create.json()["issue"]
    assert fields["title"].startswith("store-12 / shtrih-0012345678")
    assert fields["equipment_ids"] == [31]
    assert fields["maintenance_entity_id"] == 15
    assert fields["company_id"] == 45
    assert fields["priority"] == "high"
    assert fields["type"] == "incident"
    assert fields["deadline_at"] == "2026-05-13T00:00:00+00:00"
    assert "ФН valid until 2026-05-13" in fields["description"]
    assert "kktmon-key: t7:open:1" in fields["description"]
    assert create.query["api_token"] == [okdesk.token]


def test_open_without_a_registry_match_attaches_nothing(
    okdesk: OkdeskServer, sink: OkdeskSink
) -> None:
    sink.deliver(call(CallAction.OPEN, device_serial="9999"))
    fields = okdesk.creates[0].json()["issue"]
    assert not {"equipment_ids", "company_id", "maintenance_entity_id"} & set(fields)


def test_equipment_hits_are_cached_per_serial(okdesk: OkdeskServer, sink: OkdeskSink) -> None:
    sink.deliver(call(CallAction.OPEN, call_id=1, ticket_id=1))
    sink.deliver(call(CallAction.OPEN, call_id=2, ticket_id=2))
    assert len(okdesk.recorded("GET", "/api/v1/equipments")) == 1
    assert len(okdesk.issues) == 2


def test_a_repeated_open_finds_the_issue_instead_of_creating_another(
    okdesk: OkdeskServer, sink: OkdeskSink
) -> None:
    first = sink.deliver(call(CallAction.OPEN))
    again = sink.deliver(call(CallAction.OPEN, attempts=1))
    assert again == first
    assert len(okdesk.issues) == 1
    assert len(okdesk.creates) == 1


def test_a_repeated_open_reads_the_description_when_the_list_omits_it() -> None:
    with OkdeskServer(brief_list=True) as okdesk, make_sink(okdesk) as sink:
        sink.deliver(call(CallAction.OPEN, call_id=1, ticket_id=1))
        sink.deliver(call(CallAction.OPEN, call_id=2, ticket_id=2))  # same title, other key
        assert sink.deliver(call(CallAction.OPEN, call_id=2, ticket_id=2)) == "2"
        assert len(okdesk.creates) == 2
        single = [r.path for r in okdesk.recorded("GET", "/api/v1/issues/") if "list" not in r.path]
        # Same title: each candidate is read in full; the key tells them apart.
        assert single == ["/api/v1/issues/1", "/api/v1/issues/2"]


def test_a_lost_create_answer_is_not_retried_blindly(
    okdesk: OkdeskServer, sink: OkdeskSink
) -> None:
    okdesk.inject(1, 502, match="POST /api/v1/issues", after=True)
    with pytest.raises(RetryLaterError):
        sink.deliver(call(CallAction.OPEN))
    assert len(okdesk.issues) == 1  # Okdesk did create it
    assert sink.deliver(call(CallAction.OPEN, attempts=1)) == "1"
    assert len(okdesk.issues) == 1


def test_a_rate_limited_create_is_retried_in_the_sink(
    okdesk: OkdeskServer, sink: OkdeskSink
) -> None:
    okdesk.inject(1, 429, match="POST /api/v1/issues", retry_after="0")
    assert sink.deliver(call(CallAction.OPEN)) == "1"


def test_comment_has_the_documented_shape_and_is_not_repeated(
    okdesk: OkdeskServer, sink: OkdeskSink
) -> None:
    ref = opened(sink)
    text = "Unsent: 41\nsince 2026-05-01"
    comment = call(CallAction.COMMENT, call_id=2, comment=text, external_ref=ref)
    sink.deliver(comment)
    sink.deliver(comment.model_copy(update={"attempts": 1}))
    (posted,) = okdesk.recorded("POST", f"/api/v1/issues/{ref}/comments")
    body = posted.json()["comment"]
    assert body["author_id"] == 1
    assert body["public"] is False
    assert body["content"].startswith("Unsent: 41<br>since 2026-05-01")
    assert len(okdesk.comments[int(ref)]) == 1


def test_escalate_comments_because_priority_cannot_be_changed(
    okdesk: OkdeskServer, sink: OkdeskSink
) -> None:
    ref = opened(sink)
    worse = call(
        CallAction.ESCALATE, call_id=2, external_ref=ref, severity="critical", priority="critical"
    )
    sink.deliver(worse)
    (comment,) = okdesk.comments[int(ref)]
    assert "priority should be critical" in comment["content"]


def test_resolve_then_reopen_change_the_status_with_a_comment(
    okdesk: OkdeskServer, sink: OkdeskSink
) -> None:
    ref = opened(sink)
    resolve = call(CallAction.RESOLVE, call_id=2, external_ref=ref, comment="FN replaced")
    sink.deliver(resolve)
    sink.deliver(resolve.model_copy(update={"attempts": 1}))  # already completed: skipped
    assert okdesk.issues[int(ref)]["status"] == {"code": "completed"}
    sink.deliver(call(CallAction.REOPEN, call_id=3, external_ref=ref, comment="back again"))
    assert okdesk.issues[int(ref)]["status"] == {"code": "opened"}
    bodies = [r.json() for r in okdesk.recorded("POST", f"/api/v1/issues/{ref}/statuses")]
    assert [b["code"] for b in bodies] == ["completed", "opened"]
    assert bodies[0]["comment"].startswith("FN replaced")
    assert bodies[0]["comment_public"] is False


def test_a_follow_up_before_the_issue_exists_waits(sink: OkdeskSink) -> None:
    with pytest.raises(RetryLaterError, match="no Okdesk issue yet"):
        sink.deliver(call(CallAction.COMMENT, external_ref=None))


def test_a_refused_request_is_final(okdesk: OkdeskServer, sink: OkdeskSink) -> None:
    okdesk.inject(1, 400, match="POST /api/v1/issues")
    with pytest.raises(SinkError) as caught:
        sink.deliver(call(CallAction.OPEN))
    assert caught.value.retryable is False


def test_5xx_on_reads_is_retried_inside_the_sink(okdesk: OkdeskServer, sink: OkdeskSink) -> None:
    okdesk.inject(2, 500, match="GET /api/v1/equipments")
    okdesk.inject(1, 503, match="GET /api/v1/issues/list")
    assert sink.deliver(call(CallAction.OPEN)) == "1"


def test_the_token_never_reaches_logs_or_errors(
    okdesk: OkdeskServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with make_sink(okdesk) as sink:
        okdesk.inject(1, 200, match="GET /api/v1/equipments", stall_s=2.0)
        okdesk.inject(1, 400, match="POST /api/v1/issues")
        with pytest.raises(SinkError) as refused:
            sink.deliver(call(CallAction.OPEN))
    with make_sink(okdesk, token="wrong-token-a91c") as wrong, pytest.raises(SinkError) as denied:
        wrong.deliver(call(CallAction.OPEN))
    assert okdesk.unauthorised == 1 and denied.value.retryable is False
    assert "HTTP Request" in caplog.text  # httpx did log its requests
    for text in (caplog.text, str(refused.value), str(denied.value)):
        assert okdesk.token not in text and "wrong-token-a91c" not in text
    assert all(r.query["api_token"] for r in okdesk.requests)


def test_an_empty_token_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="api_token"):
        OkdeskSink("okdesk", "https://acme.okdesk.ru", "", author_id=1)
