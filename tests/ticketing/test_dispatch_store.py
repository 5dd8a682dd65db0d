"""The dispatcher over the real stores: one help-desk issue per ticket, whatever crashes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from okdesk_server import OkdeskServer
from ticket_facts import T0, StoreFactory, cleared, raised

from kktmon.cli.main import main
from kktmon.ticketing.calls import HelpdeskCall, Sink
from kktmon.ticketing.dispatch import Backoff, Dispatcher
from kktmon.ticketing.okdesk import OkdeskSink
from kktmon.ticketing.sinks import HttpRetry

ONCE = HttpRetry(attempts=1, total_s=2.0, backoff_s=0.01, max_wait_s=0.1)


class Crash(BaseException):
    """The worker dying after the help desk answered, before the store recorded it."""


class CrashAfterDelivery:
    def __init__(self, inner: Sink) -> None:
        self.name, self.inner = inner.name, inner

    def deliver(self, call: HelpdeskCall) -> str | None:
        self.inner.deliver(call)
        raise Crash


@pytest.fixture
def okdesk() -> Iterator[OkdeskServer]:
    register = {"id": 31, "serial_number": "0012345678", "company": {"id": 45}}
    with OkdeskServer(equipments=[register]) as server:
        yield server


@pytest.fixture
def sink(okdesk: OkdeskServer) -> Iterator[OkdeskSink]:
    with OkdeskSink("okdesk", okdesk.base_url, okdesk.token, author_id=1, retry=ONCE) as made:
        yield made


def test_crash_between_help_desk_and_store_opens_one_issue(
    make_store: StoreFactory, okdesk: OkdeskServer, sink: OkdeskSink
) -> None:
    store = make_store(sinks=("okdesk",), claim_ttl_s=60)
    store.apply(raised(T0, code="OFD_QUEUE_STALE"), T0)
    store.tick(T0 + timedelta(minutes=10))  # past the hold-down: OPEN queued
    later = T0 + timedelta(minutes=11)
    with pytest.raises(Crash):
        Dispatcher(store, {"okdesk": CrashAfterDelivery(sink)}).run_once(later)
    assert len(okdesk.issues) == 1

    second_worker = make_store(sinks=("okdesk",), claim_ttl_s=60)
    dispatcher = Dispatcher(second_worker, {"okdesk": sink}, backoff=Backoff(first_s=1))
    assert dispatcher.run_once(later).claimed == 0, "the dead worker's claim still holds"
    assert dispatcher.run_once(later + timedelta(minutes=2)).delivered == 1
    assert len(okdesk.issues) == 1 and len(okdesk.creates) == 1
    (ticket,) = second_worker.tickets()
    rows = [c for c in second_worker.calls(ticket.id) if c.action.value == "open"]
    assert rows and rows[0].state == "done"

    second_worker.apply(cleared(later, code="OFD_QUEUE_STALE"), later)
    second_worker.tick(later + timedelta(hours=1))  # past the grace: RESOLVE queued
    assert dispatcher.run_once(later + timedelta(hours=1)).delivered == 1
    assert len(okdesk.issues) == 1
    assert next(iter(okdesk.issues.values()))["status"]["code"] == "completed"


def test_tickets_command_lists_by_block_at(
    make_store: StoreFactory,
    store_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store = make_store()
    soon, later = T0 + timedelta(days=2), T0 + timedelta(days=20)
    store.apply(
        raised(
            T0,
            code="FN_EXPIRING",
            fn_serial="9999",
            snapshot={"block_at": later.isoformat(), "block_reason": "fn_expiry"},
        ),
        T0,
    )
    store.apply(
        raised(
            T0,
            code="OFD_QUEUE_STALE",
            snapshot={"block_at": soon.isoformat(), "block_reason": "ofd_30_days"},
        ),
        T0,
    )
    store.tick(T0 + timedelta(minutes=10))
    config = tmp_path / "ticketing.toml"
    config.write_text(f'[ticketing]\nstore = "{store_url}"\n', encoding="utf-8")
    assert main(["tickets", "--config", str(config), "--json"]) == 0
    items = json.loads(capsys.readouterr().out)
    assert [item["problem"] for item in items][:2] == ["OFD_QUEUE_STALE", "FN_EXPIRING"]
    for key in (
        "site",
        "kkt",
        "problem",
        "state",
        "severity",
        "opened_at",
        "resolved_at",
        "block_at",
        "helpdesk_ref",
    ):
        assert key in items[0]
    assert items[0]["state"] == "open" and items[0]["kkt"] == "shtrih-0012345678"
    assert main(["tickets", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert table.index("OFD_QUEUE_STALE") < table.index("FN_EXPIRING")
