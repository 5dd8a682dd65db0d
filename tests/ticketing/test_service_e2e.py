"""The ticketing service against a real Mosquitto and both stores (SQLite, PostgreSQL).

Agents are played by a paho client publishing contract messages exactly as
``kktmon agent`` does; the store is inspected directly. Hold-down and grace are short.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ticketing_rig import PREFIX, Agent, config_text
from ticketing_rig import live as _live
from ticketing_rig import wait_for as _wait
from webhook_receiver import WebhookReceiver

from kktmon.protocol.health import Owner, Problem, Severity
from kktmon.ticketing.config import parse_config
from kktmon.ticketing.lifecycle import TicketState
from kktmon.ticketing.service import TicketingService
from kktmon.ticketing.store import TicketStore, open_store


@pytest.fixture
def agent(mosquitto: Any) -> Iterator[Agent]:
    publisher = Agent(mosquitto)
    yield publisher
    publisher.close()


@pytest.fixture
def services(
    mosquitto: Any, store_url: str, tmp_path: Path
) -> Iterator[Callable[..., TicketingService]]:
    started: list[TicketingService] = []

    def start(hook: str | None = None, mqtt: str = "", **ticketing: str) -> TicketingService:
        text = config_text(mosquitto, store_url, hook, mqtt, tmp_path / "locks", **ticketing)
        config = parse_config(text)
        service = TicketingService(config)
        service.start()
        started.append(service)
        assert service.connected.wait(10) and service.reconciled.wait(10)
        return service

    yield start
    for service in started:
        if not service.stop_event.is_set():
            service.stop()


@pytest.fixture
def reader(store_url: str) -> Iterator[TicketStore]:
    store = open_store(store_url)
    yield store
    store.close()


def test_raise_hold_down_open_clear_grace_resolve_with_a_webhook(
    services: Callable[..., TicketingService], agent: Agent, reader: TicketStore
) -> None:
    with WebhookReceiver("s3cret") as hook:
        services(hook.url)
        now = datetime.now(UTC)
        agent.event("raised", "OFD_QUEUE_STALE", now, unsent_count=3)
        _wait(lambda: any(t.state is TicketState.OPEN for t in _live(reader)), "ticket opened")
        _wait(lambda: any(p["action"] == "open" for p in hook.accepted.values()), "OPEN sent")
        agent.event("cleared", "OFD_QUEUE_STALE", now + timedelta(seconds=1))
        _wait(lambda: not _live(reader), "ticket resolved after the grace period")
        _wait(lambda: any(p["action"] == "resolve" for p in hook.accepted.values()), "RESOLVE")
        assert hook.bad_signatures == 0
        assert len([t for t in reader.tickets() if t.problem == "OFD_QUEUE_STALE"]) == 1


def test_duplicates_and_reordering_never_make_a_second_ticket(
    services: Callable[..., TicketingService], agent: Agent, reader: TicketStore
) -> None:
    service = services()
    now = datetime.now(UTC)
    raised = agent.event("raised", "PAPER_OUT", now)
    for _ in range(3):
        agent.send_event(raised)
    # A clear that happened later arrives before an older raise of another problem.
    agent.event("cleared", "COVER_OPEN", now + timedelta(seconds=5))
    agent.event("raised", "COVER_OPEN", now)
    _wait(lambda: service.applied >= 6, "all messages applied")
    _wait(
        lambda: (
            len(_live(reader, "PAPER_OUT")) == 1
            and _live(reader, "PAPER_OUT")[0].state is TicketState.OPEN
        ),
        "PAPER_OUT open",
    )
    time.sleep(0.5)  # a hold-down and more: the stale raise must not have opened anything
    assert _live(reader, "COVER_OPEN") == []
    assert len([t for t in reader.tickets() if t.problem == "PAPER_OUT"]) == 1


def test_two_workers_share_the_load_and_open_one_ticket_per_problem(
    services: Callable[..., TicketingService], agent: Agent, reader: TicketStore
) -> None:
    first, second = services(), services()
    now = datetime.now(UTC)
    codes = [f"PRINTER_FAULT_{n}" for n in range(20)]
    for code in codes:
        event = agent.event("raised", code, now)
        agent.send_event(event)  # every problem twice, likely to both workers
    _wait(lambda: first.applied + second.applied >= 40, "all events applied")
    _wait(lambda: {t.problem for t in _live(reader)} >= set(codes), "tickets for all")
    tickets = [t for t in reader.tickets() if t.problem in codes]
    assert len(tickets) == len(codes), "exactly one ticket per problem"
    assert first.applied and second.applied, "the shared subscription split the load"


def test_reconcile_raises_retained_alerts_and_clears_vanished_ones(
    services: Callable[..., TicketingService],
    agent: Agent,
    reader: TicketStore,
    store_url: str,
) -> None:
    now = datetime.now(UTC) - timedelta(minutes=5)
    with open_store(store_url) as store:  # a ticket left live by an earlier run
        from kktmon.ticketing.lifecycle import ProblemRaised

        old = Problem(
            code="CLOCK_SKEW",
            severity=Severity.WARNING,
            owner=Owner.SERVICE,
            message="skew",
            since=now,
        )
        store.apply(ProblemRaised(site="store-1", kkt="shtrih-0001", problem=old, at=now), now)
    agent.alert(
        Problem(
            code="FN_EXPIRING",
            severity=Severity.CRITICAL,
            owner=Owner.SERVICE,
            message="5 days",
            since=now,
            facts={"fn_serial": "9999"},
        )
    )
    services()
    _wait(lambda: bool(_live(reader, "FN_EXPIRING")), "retained alert became a ticket")
    _wait(lambda: not _live(reader, "CLOCK_SKEW"), "vanished alert cleared")


def test_lost_agent_opens_agent_lost_and_a_clean_offline_never_does(
    services: Callable[..., TicketingService], mosquitto: Any, reader: TicketStore
) -> None:
    services()
    lost, clean = Agent(mosquitto, site="store-lost"), Agent(mosquitto, site="store-clean")
    try:
        lost.status("online", 1)
        clean.status("online", 1)
        lost.status("lost", 1)
        clean.status("offline", 1)
        _wait(
            lambda: any(
                t.site == "store-lost" and t.problem == "AGENT_LOST" for t in _live(reader)
            ),
            "AGENT_LOST opened",
        )
        time.sleep(0.6)
        assert not [t for t in reader.tickets() if t.site == "store-clean"]
        lost.status("online", 2)
        _wait(lambda: not any(t.site == "store-lost" for t in _live(reader)), "agent back")
    finally:
        lost.close()
        clean.close()


def test_killed_worker_loses_nothing(
    mosquitto: Any, agent: Agent, reader: TicketStore, store_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "ticketing.toml"
    text = config_text(mosquitto, store_url, mqtt='client_id = "tk-1"\n', lock_dir=tmp_path)
    config.write_text(text)
    command = [sys.executable, "-m", "kktmon.cli", "ticketing", "--config", str(config)]
    worker = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        now = datetime.now(UTC)
        first = agent.event("raised", "SHIFT_TOO_LONG", now)

        def applied() -> bool:  # resent (same id) until the starting worker subscribed
            agent.send_event(first)
            return bool(_live(reader, "SHIFT_TOO_LONG"))

        _wait(applied, "first worker applied", timeout=20)
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        for n in range(5):  # published while no worker runs: the broker keeps them
            agent.event("raised", f"DEVICE_BUSY_{n}", now)
        worker = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        _wait(lambda: len({t.problem for t in _live(reader)}) >= 6, "queued events applied")
        assert len(_live(reader, "SHIFT_TOO_LONG")) == 1
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(15) == 0


def test_malformed_messages_are_dropped_not_fatal(
    services: Callable[..., TicketingService], agent: Agent, reader: TicketStore
) -> None:
    service = services()
    topic = f"{PREFIX}/store-1/kkt/shtrih-0001/event"
    agent.client.publish(topic, b"{not json", qos=1).wait_for_publish(5)
    agent.event("raised", "COVER_OPEN", datetime.now(UTC), note=str(uuid.uuid4()))
    _wait(lambda: bool(_live(reader, "COVER_OPEN")), "later message still applied")
    assert not service.stop_event.is_set()


def test_mqtt_3_1_1_brokers_get_one_worker_with_plain_subscriptions(
    services: Callable[..., TicketingService], agent: Agent, reader: TicketStore
) -> None:
    now = datetime.now(UTC)
    agent.alert(
        Problem(
            code="PAPER_OUT",
            severity=Severity.WARNING,
            owner=Owner.STORE,
            message="paper",
            since=now,
        )
    )
    service = services(mqtt='protocol = "3.1.1"\n')
    assert not service.v5
    agent.event("raised", "COVER_OPEN", now)
    _wait(lambda: bool(_live(reader, "COVER_OPEN")), "live event applied over 3.1.1")
    _wait(lambda: bool(_live(reader, "PAPER_OUT")), "retained alert reconciled over 3.1.1")
