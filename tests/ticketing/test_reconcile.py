"""The reconciler against a real Mosquitto and both stores (SQLite, PostgreSQL).

Retained alerts and statuses are published as an agent leaves them on the broker, but
without their events, as if those were lost; the reconciler must repair the store.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from mqtt_broker import shipped_config
from paho.mqtt.enums import CallbackAPIVersion
from pki import make_pki

from kktmon.protocol.contract import AgentState, AgentStatus
from kktmon.protocol.health import Owner, Problem, Severity
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing.config import TicketingConfig
from kktmon.ticketing.intake import Intake
from kktmon.ticketing.reconcile import LEASE, Reconciler, ReconcileReport
from kktmon.ticketing.retained import read_retained
from kktmon.ticketing.store import TicketStore, open_store

PREFIX = "kktmon/v1"
#: The shipped broker's queue limit (deploy/mosquitto/kktmon.conf).
SHIPPED_LIMITS = "max_inflight_messages 20\nmax_queued_messages 100000\n"
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)


class Clock:
    """A settable clock for the reconciler and the lease."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Publisher:
    """Leaves retained alerts and statuses on the broker, as agents do."""

    def __init__(self, broker: Any) -> None:
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def retain(self, topic: str, payload: bytes) -> mqtt.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=1, retain=True)

    def alert(self, site: str, kkt: str, problem: Problem) -> None:
        topic = f"{PREFIX}/{site}/kkt/{kkt}/alert/{problem.code}"
        self.retain(topic, problem.model_dump_json().encode()).wait_for_publish(5)

    def clear(self, site: str, kkt: str, code: str) -> None:
        self.retain(f"{PREFIX}/{site}/kkt/{kkt}/alert/{code}", b"").wait_for_publish(5)

    def status(self, site: str, state: AgentState, session: int = 1) -> None:
        status = AgentStatus(state=state, session=session, version="t", started_at=T0)
        self.retain(f"{PREFIX}/{site}/agent/status", status.to_bytes()).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def problem(
    code: str, since: datetime = T0, severity: Severity = Severity.WARNING, **facts: Any
) -> Problem:
    return Problem(
        code=code,
        severity=severity,
        owner=Owner.SERVICE,
        message=f"{code} here",
        since=since,
        facts=facts,
    )


def raised(
    code: str, at: datetime, site: str = "store-1", kkt: str = "shtrih-1"
) -> lc.ProblemRaised:
    return lc.ProblemRaised(
        site=site, kkt=kkt, problem=problem(code, at), event_id=uuid.uuid4().hex, at=at
    )


def live(store: TicketStore, code: str) -> list[lc.Ticket]:
    return [
        t for t in store.tickets() if t.problem == code and t.state is not lc.TicketState.RESOLVED
    ]


def config(broker: Any, store_url: str, **ticketing: Any) -> TicketingConfig:
    return TicketingConfig.model_validate(
        {
            "mqtt": {"url": f"mqtt://{broker.host}:{broker.port}"},
            "ticketing": {"store": store_url, "reconcile_interval_s": 300, **ticketing},
        }
    )


@pytest.fixture
def broker(mosquitto_factory: Callable[..., Any]) -> Any:
    return mosquitto_factory(SHIPPED_LIMITS)


@pytest.fixture
def publisher(broker: Any) -> Iterator[Publisher]:
    client = Publisher(broker)
    yield client
    client.close()


@pytest.fixture
def store(store_url: str) -> Iterator[TicketStore]:
    with open_store(store_url) as opened:
        yield opened


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(minutes=30))


@pytest.fixture
def reconciler(
    broker: Any, store_url: str, store: TicketStore, clock: Clock
) -> Callable[..., Reconciler]:
    def make(holder: str = "kktmon-ticketing-a", on: TicketStore | None = None) -> Reconciler:
        cfg = config(broker, store_url)
        return Reconciler(cfg, on or store, Intake(PREFIX), holder, clock)

    return make


def _open(store: TicketStore, code: str, at: datetime, now: datetime) -> lc.Ticket:
    """A ticket raised live and opened after its hold-down."""
    store.apply(raised(code, at), at)
    store.tick(now)
    [ticket] = live(store, code)
    assert ticket.state is lc.TicketState.OPEN
    return ticket


def test_a_retained_alert_whose_event_was_lost_opens_its_ticket(
    publisher: Publisher, reconciler: Callable[..., Reconciler], store: TicketStore
) -> None:
    publisher.alert("store-1", "shtrih-1", problem("PAPER_OUT"))
    full = problem("FN_MEMORY_FULL", severity=Severity.BLOCKED, fn_serial="7380440700000001")
    publisher.alert("store-2", "atol-7", full)

    report = reconciler().run_now()

    assert (report.alerts, report.raised, report.cleared, report.complete) == (2, 2, 0, True)
    [paper] = live(store, "PAPER_OUT")
    assert (paper.site, paper.kkt, paper.first_seen_at) == ("store-1", "shtrih-1", T0)
    [blocked] = live(store, "FN_MEMORY_FULL")
    assert (blocked.state, blocked.fn_serial) == (lc.TicketState.OPEN, "7380440700000001")
    again = reconciler().run_now()
    assert (again.raised, again.cleared) == (0, 0), "a converged store is left alone"


def test_an_alert_emptied_without_its_cleared_event_starts_clearing(
    publisher: Publisher, reconciler: Callable[..., Reconciler], store: TicketStore, clock: Clock
) -> None:
    _open(store, "COVER_OPEN", T0, clock())
    _open(store, "PAPER_OUT", T0, clock())
    publisher.alert("store-1", "shtrih-1", problem("COVER_OPEN"))
    publisher.alert("store-1", "shtrih-1", problem("PAPER_OUT"))
    publisher.clear("store-1", "shtrih-1", "COVER_OPEN")  # the cleared event never came

    report = reconciler().run_now()

    assert (report.alerts, report.cleared, report.raised) == (1, 1, 0)
    [cover] = live(store, "COVER_OPEN")
    assert cover.state is lc.TicketState.CLEARING
    assert [t.state for t in live(store, "PAPER_OUT")] == [lc.TicketState.OPEN]


def test_a_retained_alert_reopens_a_ticket_cleared_before_the_read(
    publisher: Publisher, reconciler: Callable[..., Reconciler], store: TicketStore, clock: Clock
) -> None:
    _open(store, "COVER_OPEN", T0, clock())
    cleared_at = clock() - timedelta(minutes=1)
    store.apply(
        lc.ProblemCleared(site="store-1", kkt="shtrih-1", code="COVER_OPEN", at=cleared_at),
        cleared_at,
    )
    # Raised again later, since before the clear (as the agent's streak had it): the
    # raise was lost, the alert is retained.
    publisher.alert("store-1", "shtrih-1", problem("COVER_OPEN", since=T0))

    report = reconciler().run_now()

    assert report.raised == 1
    assert [t.state for t in live(store, "COVER_OPEN")] == [lc.TicketState.OPEN]


def test_two_reconcilers_on_one_store_run_once_per_interval(
    publisher: Publisher,
    reconciler: Callable[..., Reconciler],
    store: TicketStore,
    store_url: str,
    clock: Clock,
) -> None:
    publisher.alert("store-1", "shtrih-1", problem("PAPER_OUT"))
    with open_store(store_url) as other_store:
        workers = {
            "a": reconciler("kktmon-ticketing-a"),
            "b": reconciler("kktmon-ticketing-b", other_store),
        }
        runs: list[tuple[datetime, str]] = []
        for _ in range(int(3 * 300 / 10) + 1):  # three intervals, each worker every 10 s
            for name, worker in workers.items():
                if worker.run_if_due() is not None:
                    runs.append((clock(), name))
            clock.advance(10)

    starts = [at for at, _ in runs]
    assert len(runs) == 4, runs  # at 0, 300, 600 and 900 s
    assert all(later - earlier == timedelta(seconds=300) for earlier, later in pairwise(starts))


def test_a_worker_that_loses_the_lease_race_waits_and_takes_over_a_dead_holder(
    publisher: Publisher, reconciler: Callable[..., Reconciler], store: TicketStore, clock: Clock
) -> None:
    a, b = reconciler("kktmon-ticketing-a"), reconciler("kktmon-ticketing-b")
    assert isinstance(a.run_if_due(), ReconcileReport)
    assert b.run_if_due() is None
    assert b.run_if_due(force=True) is None, "force skips the schedule, not the lease"
    clock.advance(299)
    assert b.run_if_due() is None
    clock.advance(31)  # a died: its lease lapsed at 300 s, b asks every 30 s
    assert isinstance(b.run_if_due(), ReconcileReport)
    assert a.run_if_due() is None


def test_a_failed_run_releases_the_lease(
    refusing_address: tuple[str, int],
    store_url: str,
    store: TicketStore,
    clock: Clock,
) -> None:
    host, port = refusing_address
    cfg = TicketingConfig.model_validate(
        {"mqtt": {"url": f"mqtt://{host}:{port}"}, "ticketing": {"store": store_url}}
    )
    failing = Reconciler(cfg, store, Intake(PREFIX), "kktmon-ticketing-a", clock)
    assert failing.run_if_due() is None
    assert store.acquire_lease(LEASE, "kktmon-ticketing-b", 300, clock())


def test_every_retained_message_is_read_when_there_are_thousands(
    broker: Any, publisher: Publisher, reconciler: Callable[..., Reconciler]
) -> None:
    payload = problem("PAPER_OUT").model_dump_json().encode()
    topics = {f"{PREFIX}/store-{n % 300}/kkt/shtrih-{n}/alert/PAPER_OUT" for n in range(3000)}
    infos = [publisher.retain(topic, payload) for topic in sorted(topics)]
    infos[-1].wait_for_publish(30)
    assert all(info.is_published() for info in infos)

    retained = reconciler().read_retained(timeout_s=60)

    assert retained.complete, "ended by the marker, not by the quiet period"
    assert set(retained) == topics
    assert all(value == payload for value in retained.values())


def test_an_mqtt_3_1_1_read_is_whole_too(broker: Any, publisher: Publisher) -> None:
    publisher.alert("store-1", "shtrih-1", problem("PAPER_OUT"))
    publisher.status("store-1", AgentState.ONLINE)
    cfg = TicketingConfig.model_validate(
        {"mqtt": {"url": f"mqtt://{broker.host}:{broker.port}", "protocol": "3.1.1"}}
    )

    retained = read_retained(cfg.mqtt, "kktmon-ticketing-a-reconcile")

    assert retained.complete
    assert set(retained) == {
        f"{PREFIX}/store-1/kkt/shtrih-1/alert/PAPER_OUT",
        f"{PREFIX}/store-1/agent/status",
    }


def test_a_ticket_raised_live_after_the_read_began_is_not_cleared(
    publisher: Publisher, reconciler: Callable[..., Reconciler], store: TicketStore, clock: Clock
) -> None:
    _open(store, "COVER_OPEN", T0, clock())  # its alert is gone: to be cleared
    worker = reconciler()
    started = clock()
    retained = worker.read_retained()
    clock.advance(1)
    # Raised live while the read went on; the agent's clock is a little behind ours.
    late = started - timedelta(seconds=5)
    store.apply(raised("PAPER_OUT", late), clock())

    report = worker.converge(retained, clock(), started)

    assert report.cleared == 1
    assert [t.state for t in live(store, "COVER_OPEN")] == [lc.TicketState.CLEARING]
    assert [t.state for t in live(store, "PAPER_OUT")] == [lc.TicketState.PENDING]
    clock.advance(300)
    assert worker.run_now().cleared == 1, "the next run clears it: its alert never came"
    assert not live(store, "PAPER_OUT"), "never opened: resolved silently"


def test_retained_statuses_start_and_stop_the_agent_lost_clock(
    publisher: Publisher, reconciler: Callable[..., Reconciler], store: TicketStore, clock: Clock
) -> None:
    publisher.status("store-lost", AgentState.LOST)  # the will, whose delivery was lost
    publisher.status("store-back", AgentState.ONLINE, session=2)
    back_lost = lc.AgentSeen(site="store-back", state=AgentState.LOST, session=1, at=T0)
    store.apply(back_lost, T0)
    store.tick(T0 + timedelta(hours=1))
    assert live(store, "AGENT_LOST"), "store-back's agent was lost and got a ticket"

    report = reconciler().run_now()

    assert (report.statuses, report.agents) == (2, 2)
    agents = {agent.site: agent for agent in store.agents()}
    assert agents["store-lost"].state is AgentState.LOST
    assert agents["store-lost"].last_status_at == clock(), "its clock starts at the read"
    assert [
        t.site for t in live(store, "AGENT_LOST") if t.state is not lc.TicketState.CLEARING
    ] == []
    store.tick(clock() + timedelta(hours=1))
    assert {t.site for t in live(store, "AGENT_LOST")} == {"store-lost"}
    assert reconciler().run_now().agents == 0, "a status applied once changes nothing again"


def test_a_broker_that_lost_its_retained_set_clears_nothing(
    publisher: Publisher, reconciler: Callable[..., Reconciler], store: TicketStore, clock: Clock
) -> None:
    # The store knows store-1's agent and one live ticket; the broker restarted without
    # its persistence file: no status, no alert. Clearing would resolve every ticket.
    store.apply(lc.AgentSeen(site="store-1", state=AgentState.ONLINE, session=1, at=T0), T0)
    _open(store, "COVER_OPEN", T0, clock())
    publisher.alert("store-2", "shtrih-9", problem("PAPER_OUT"))  # what did survive

    report = reconciler().run_now()

    assert report.statuses == 0
    assert (report.raised, report.cleared) == (1, 0)
    assert [t.state for t in live(store, "COVER_OPEN")] == [lc.TicketState.OPEN]
    # Once the agent's status is back, an alert still missing is cleared as usual.
    publisher.status("store-1", AgentState.ONLINE)
    assert reconciler().run_now().cleared == 1


def test_without_its_end_marker_a_read_raises_but_clears_nothing(
    mosquitto_factory: Callable[..., Any],
    tmp_path: Path,
    store_url: str,
    store: TicketStore,
    clock: Clock,
) -> None:
    acl = tmp_path / "no-commands.acl"
    acl.write_text(f"topic read {PREFIX}/#\ntopic write {PREFIX}/+/kkt/#\n")
    broker = mosquitto_factory(f"{SHIPPED_LIMITS}acl_file {acl}\n", name="acl-broker")
    agent = Publisher(broker)
    try:
        agent.alert("store-1", "shtrih-1", problem("PAPER_OUT"))
    finally:
        agent.close()
    _open(store, "COVER_OPEN", T0, clock())
    worker = Reconciler(
        config(broker, store_url), store, Intake(PREFIX), "kktmon-ticketing-a", clock
    )

    report = worker.run_now()

    assert not report.complete
    assert (report.raised, report.cleared) == (1, 0)
    assert [t.state for t in live(store, "COVER_OPEN")] == [lc.TicketState.OPEN]


def test_the_shipped_broker_and_acl_let_a_worker_read_to_the_marker(
    tmp_path: Path, mosquitto_factory: Callable[..., Any], tcp_port: Callable[[], int]
) -> None:
    pki = make_pki(tmp_path / "certs")
    tls_port = tcp_port()
    text = shipped_config(
        tmp_path / "etc",
        pki.folder,
        tls_port,
        stores={"store-1": "pw-store"},
        workers={"kktmon-ticketing": "pw-ticketing"},
    )
    broker = mosquitto_factory(raw=text, name="central")
    agent = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="store-1")
    agent.tls_set_context(ssl.create_default_context(cafile=pki.path("ca.crt")))
    agent.username_pw_set("store-1", "pw-store")
    agent.connect(broker.host, tls_port)
    agent.loop_start()
    try:
        topic = f"{PREFIX}/store-1/kkt/shtrih-1/alert/PAPER_OUT"
        payload = problem("PAPER_OUT").model_dump_json().encode()
        agent.publish(topic, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        agent.disconnect()
        agent.loop_stop()
    cfg = TicketingConfig.model_validate(
        {
            "mqtt": {
                "url": f"mqtt://{broker.host}:{broker.port}",
                "username": "kktmon-ticketing",
                "password": "pw-ticketing",
            }
        }
    )

    retained = read_retained(cfg.mqtt, "kktmon-ticketing-1-reconcile")

    assert retained.complete, "the ticketing ACL lets the worker write its marker"
    assert retained == {topic: payload}
