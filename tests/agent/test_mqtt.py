"""The agent's MQTT side against a real Mosquitto: birth and will, outbox drain, outages,
commands, and the MQTT 5 -> 3.1.1 fallback (DESIGN.md sections 4-5)."""

from __future__ import annotations

import json
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from kktmon.agent.outbox import Outbox
from kktmon.protocol.contract import (
    AgentState,
    AgentStatus,
    CommandRequest,
    CommandResponse,
    Event,
    EventKind,
)
from kktmon.protocol.health import DeviceInfo, HealthSnapshot, Owner, Problem, Severity
from kktmon.protocol.topics import Topics, kkt_id

if TYPE_CHECKING:  # conftest is not importable at run time under importlib mode; mypy
    # reads the tests with explicit package bases, where it is tests.agent.conftest
    from tests.agent.conftest import Rig

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
KKT = kkt_id("shtrih", "0001")
TOPICS = Topics("kktmon/v1", "store-1")


def event(seq: int) -> bytes:
    problem = Problem(
        code="FN_EXPIRING", severity=Severity.WARNING, owner=Owner.SERVICE, message="FN expires"
    )
    at = T0 + timedelta(seconds=seq)
    return Event(seq=seq, kind=EventKind.RAISED, problem=problem, at=at).to_bytes()


def snapshot(minute: int) -> tuple[bytes, datetime]:
    taken_at = T0 + timedelta(minutes=minute)
    snap = HealthSnapshot(taken_at=taken_at, device=DeviceInfo(vendor="shtrih", serial="0001"))
    return snap.to_json().encode(), taken_at


def status(seen: Any) -> AgentStatus:
    return AgentStatus.model_validate_json(seen.payload)


def current_status(statuses: list[AgentStatus]) -> AgentStatus:
    """What a consumer believes: the newest status of the highest session seen."""
    best = statuses[0]
    for item in statuses[1:]:
        if item.supersedes(best):
            best = item
    return best


# -- birth, goodbye, will ---------------------------------------------------------------


def test_birth_is_retained_and_carries_the_session(rig: Rig) -> None:
    agent = rig.agent(rig.config(), session=7)
    rig.until(lambda: agent.connected, what="connected")
    seen = rig.watch(TOPICS.status()).wait_topic(TOPICS.status())
    assert seen.retain
    birth = status(seen)
    assert (birth.state, birth.session, birth.version) == (AgentState.ONLINE, 7, "test")
    assert birth.started_at == datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    assert agent.stats().protocol == "5"


def test_clean_stop_leaves_offline_and_no_will(rig: Rig) -> None:
    live = rig.watch(TOPICS.status())
    agent = rig.agent(rig.config(), session=4)
    live.wait_topic(TOPICS.status(), lambda s: status(s).state is AgentState.ONLINE)
    agent.stop()
    assert not agent.connected
    retained = rig.watch(TOPICS.status()).wait_topic(TOPICS.status())
    assert (status(retained).state, status(retained).session) == (AgentState.OFFLINE, 4)
    marker = f"{TOPICS.root}/marker"  # the broker handled the goodbye before this round trip
    live.client.subscribe(marker, 1)
    live.client.publish(marker, b"x", qos=1)
    live.wait_topic(marker)
    assert [status(s).state for s in live.on(TOPICS.status())] == ["online", "offline"]


KILLED_AGENT = """
import sys, time
from datetime import UTC, datetime
from kktmon.agent.config import load_config
from kktmon.agent.mqtt import MqttPublisher
from kktmon.agent.outbox import Outbox

config = load_config(sys.argv[1])
agent = MqttPublisher(config, Outbox(sys.argv[2]), session=int(sys.argv[3]), version="test",
                      started_at=datetime.now(UTC), will_delay_s=1)
agent.start()
while not agent.connected:
    time.sleep(0.01)
print("connected", flush=True)
time.sleep(60)
"""


def test_killed_agent_leaves_lost_with_its_session(rig: Rig, tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    url = f"mqtt://{rig.broker.host}:{rig.broker.port}"
    config.write_text(f'site = "store-1"\n[mqtt]\nurl = "{url}"\n[[devices]]\nurl = "x:1"\n')
    live = rig.watch(TOPICS.status())
    argv = [sys.executable, "-c", KILLED_AGENT, str(config), str(tmp_path / "o.sqlite3"), "5"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "connected\n"
            live.wait_topic(TOPICS.status(), lambda s: status(s).state is AgentState.ONLINE)
        finally:
            child.send_signal(signal.SIGKILL)
    lost = live.wait_topic(TOPICS.status(), lambda s: status(s).state is AgentState.LOST)
    assert lost.retain and status(lost).session == 5


def test_the_will_delay_comes_from_the_config(rig: Rig) -> None:
    """An hour's delay holds session 1's will; session 2, configured with none, is lost at once.

    Both links drop without a goodbye, session 1's first: had its will not been held,
    ``lost`` of session 1 would reach the watcher before ``lost`` of session 2.
    """
    live = rig.watch(TOPICS.status())
    held = rig.agent(rig.config(client_id="held", will_delay_s=3600), session=1, will_delay_s=None)
    live.wait_topic(TOPICS.status(), lambda s: status(s).session == 1)
    held.stop(clean=False)
    prompt = rig.agent(rig.config(client_id="prompt", will_delay_s=0), session=2, will_delay_s=None)
    live.wait_topic(TOPICS.status(), lambda s: status(s).session == 2)
    prompt.stop(clean=False)
    live.wait_topic(TOPICS.status(), lambda s: status(s).state is AgentState.LOST)
    seen = [(status(s).state, status(s).session) for s in live.on(TOPICS.status())]
    assert seen == [("online", 1), ("online", 2), ("lost", 2)]


def test_a_stale_will_is_told_apart_and_repaired(rig: Rig) -> None:
    """Session 1 dies; its delayed will lands after session 2's birth (another client id).

    A consumer keeping the highest session ignores ``lost`` of session 1, and the agent of
    session 2 republishes its birth so the retained status ends up true again.
    """
    live = rig.watch(TOPICS.status())
    old = rig.agent(rig.config(client_id="agent-old"), session=1, will_delay_s=1)
    live.wait_topic(TOPICS.status(), lambda s: status(s).session == 1)
    old.stop(clean=False)  # like a crash: no goodbye, the (delayed) will is pending
    new = rig.agent(rig.config(client_id="agent-new"), session=2)
    rig.until(lambda: new.connected, what="session 2 connected")
    live.wait_topic(TOPICS.status(), lambda s: status(s).state is AgentState.LOST)
    seen = live.wait_for(
        lambda msgs: status([m for m in msgs if m.topic == TOPICS.status()][-1]).session == 2,
        what="the birth of session 2 after the stale will",
    )
    statuses = [status(s) for s in seen if s.topic == TOPICS.status()]
    assert [(s.state, s.session) for s in statuses] == [
        ("online", 1),
        ("online", 2),
        ("lost", 1),  # stale: session 1's will, delayed past session 2's birth
        ("online", 2),  # the repair
    ]
    for believed in (current_status(statuses[:3]), current_status(statuses)):
        assert (believed.state, believed.session) == (AgentState.ONLINE, 2)
    retained = rig.watch(TOPICS.status()).wait_topic(TOPICS.status())
    assert (status(retained).state, status(retained).session) == (AgentState.ONLINE, 2)


# -- the outbox -------------------------------------------------------------------------


def test_outbox_is_published_in_order_and_acked_rows_go(rig: Rig, outbox: Outbox) -> None:
    """Rows spooled before the connection: replayed, in put order, superseded states skipped."""
    expected: list[tuple[str, bytes]] = []
    for i in range(30):
        expected.append((TOPICS.event(KKT), event(i)))
        outbox.put_event(*expected[-1])
        if i % 10 == 9:  # a newer snapshot replaces the queued one: only the newest is sent
            payload, taken_at = snapshot(i)
            outbox.put_state(TOPICS.state(KKT), payload, taken_at)
            expected = [row for row in expected if row[0] != TOPICS.state(KKT)]
            expected.append((TOPICS.state(KKT), payload))
    expected.append((TOPICS.alert(KKT, "FN_EXPIRING"), b'{"code":"FN_EXPIRING"}'))
    expected.append((TOPICS.alert(KKT, "PAPER_OUT"), b""))  # an empty retained payload clears
    for topic, payload in expected[-2:]:
        outbox.put_retained(topic, payload)
    live = rig.watch(f"{TOPICS.root}/kkt/#")
    agent = rig.agent(rig.config(), outbox=outbox)
    seen = live.wait_for(lambda msgs: len(msgs) >= len(expected), what="every row")
    assert [(s.topic, s.retain) for s in seen] == [(t, "/event" not in t) for t, _ in expected]
    for (topic, payload), got in zip(expected, seen, strict=True):
        if topic.endswith("/event"):
            assert got.json() == {**json.loads(payload), "replayed": True}
        else:
            assert got.payload == payload
    rig.until(lambda: outbox.stats().depth == 0, what="acked rows deleted")
    assert agent.stats().published == len(expected) and agent.stats().publish_errors == 0


def test_broker_outage_loses_and_reorders_nothing(rig: Rig, outbox: Outbox) -> None:
    live = rig.watch(f"{TOPICS.root}/kkt/#", persistent=True)
    newest: dict[str, tuple[bytes, datetime]] = {}

    def republish_current_state() -> None:  # what the service does on every (re)connect
        for topic, (payload, taken_at) in newest.items():
            outbox.put_state(topic, payload, taken_at)

    def put_state(minute: int) -> None:
        payload, taken_at = snapshot(minute)
        assert outbox.put_state(TOPICS.state(KKT), payload, taken_at) is not None
        newest[TOPICS.state(KKT)] = (payload, taken_at)

    agent = rig.agent(rig.config(), outbox=outbox, on_connect=republish_current_state)
    rig.until(lambda: agent.connected, what="connected")
    ids: list[str] = []

    def put_events(seqs: range) -> None:
        for seq in seqs:
            payload = event(seq)
            ids.append(json.loads(payload)["id"])
            outbox.put_event(TOPICS.event(KKT), payload)
        agent.wake()

    put_state(0)
    put_events(range(10))
    live.wait_for(lambda m: len(events_in(m)) == 10, what="events before the outage")
    rig.broker.save()  # the watcher's session survives the crash below; nothing else needed
    rig.broker.signal(signal.SIGSTOP)
    put_events(range(10, 20))
    rig.until(lambda: agent.stats().in_flight > 0, what="events sent, never acknowledged")
    rig.broker.stop(signal.SIGKILL)  # a crash: the frozen broker never read them
    rig.until(lambda: not agent.connected, what="disconnected")
    put_events(range(20, 40))
    put_state(1)
    put_state(3)
    assert outbox.put_state(TOPICS.state(KKT), *snapshot(2)) is None  # older: refused
    rig.broker.start()
    rig.until(lambda: agent.connected, what="reconnected")
    rig.until(lambda: outbox.stats().depth == 0, what="backlog drained")
    put_events(range(40, 45))
    put_state(4)

    seen = live.wait_for(lambda m: len({s.json()["id"] for s in events_in(m)}) == 45, 10)
    first: dict[str, dict[str, Any]] = {}
    for message in events_in(seen):
        first.setdefault(message.json()["id"], message.json())
    assert list(first) == ids  # zero lost, zero reordered (duplicates carry the same id)
    # 10-19 were in flight when the broker died: sent again, after the birth, as replays.
    assert [first[i]["replayed"] for i in ids] == [False] * 10 + [True] * 30 + [False] * 5
    live.wait_topic(
        TOPICS.state(KKT), lambda s: s.json()["taken_at"].startswith("2026-05-01T12:04")
    )
    taken = [s.json()["taken_at"] for s in live.on(TOPICS.state(KKT))]
    assert taken == sorted(taken)  # the retained state never went back in time
    assert agent.stats().reconnects == 1
    retained = rig.watch(TOPICS.state(KKT)).wait_topic(TOPICS.state(KKT))
    assert retained.json()["taken_at"] == "2026-05-01T12:04:00Z"


def events_in(messages: list[Any]) -> list[Any]:
    return [m for m in messages if m.topic.endswith("/event")]


def test_broker_absent_at_start_then_everything_arrives(rig: Rig, outbox: Outbox) -> None:
    rig.broker.stop()
    for seq in range(5):
        outbox.put_event(TOPICS.event(KKT), event(seq))
    agent = rig.agent(rig.config(), outbox=outbox)
    rig.until(lambda: agent.stats().connect_failures >= 2, what="failed attempts")
    assert not agent.connected and outbox.stats().depth == 5
    rig.broker.start()
    live = rig.watch(f"{TOPICS.root}/kkt/#")  # subscribes before the agent's backoff ends
    seen = live.wait_for(lambda m: len(events_in(m)) >= 5)
    assert [m.json()["seq"] for m in events_in(seen)] == [0, 1, 2, 3, 4]
    assert all(m.json()["replayed"] for m in events_in(seen))


def test_unsendable_rows_are_kept_and_counted(rig: Rig, outbox: Outbox) -> None:
    outbox.put_event(f"{TOPICS.root}/kkt/+/event", event(0))  # a wildcard: paho refuses it
    outbox.put_event(TOPICS.event(KKT), event(1))
    agent = rig.agent(rig.config(), outbox=outbox)
    rig.until(lambda: agent.stats().published == 1, what="the good row")
    assert agent.stats().publish_errors == 1 and outbox.stats().depth == 1


# -- commands ---------------------------------------------------------------------------


def test_commands_are_answered_or_refused_with_a_reason(rig: Rig) -> None:
    calls: list[tuple[str, str]] = []

    def handler(name: str, request: CommandRequest) -> CommandResponse:
        calls.append((name, request.transaction))
        # A wrong transaction here is overridden: the response always echoes the request's.
        return CommandResponse(transaction="wrong", ok=True, detail=f"{name} done")

    requester = rig.watch(f"{TOPICS.root}/cmd/+/response", "replies/#")
    requester.client.publish(TOPICS.command("poll"), b'{"transaction":"old"}', qos=1, retain=True)
    agent = rig.agent(rig.config(), on_command=handler)
    rig.until(lambda: agent.connected, what="connected")

    def ask(name: str, payload: bytes, props: Properties | None = None) -> None:
        requester.client.publish(TOPICS.command(name), payload, qos=1, properties=props)

    ask("poll", b'{"transaction":"t1"}')
    ask("identify", b'{"transaction":"t2","device":"shtrih-0001"}')
    ask("reboot", b'{"transaction":"t3"}')
    ask("poll", b"{not json")
    ask("poll", b'{"device":"shtrih-0001"}')
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic, props.CorrelationData = "replies/abc", b"corr-1"
    ask("poll", b'{"transaction":"t6"}', props)
    responses = requester.wait_for(lambda m: len(m) >= 6, what="six responses")

    by_topic = [(m.topic.rsplit("/", 2)[-2], m.json()) for m in responses[:5]]
    assert by_topic[0] == (
        "poll",
        {"transaction": "t1", "ok": True, "detail": "poll done", "result": None},
    )
    assert by_topic[1][1]["transaction"] == "t2" and by_topic[1][1]["ok"]
    assert by_topic[2][0] == "reboot" and not by_topic[2][1]["ok"]
    assert "unknown command 'reboot'" in by_topic[2][1]["detail"]
    assert by_topic[3][1]["transaction"] is None and "not JSON" in by_topic[3][1]["detail"]
    assert "transaction" in by_topic[4][1]["detail"] and not by_topic[4][1]["ok"]
    reply = responses[5]
    assert reply.topic == "replies/abc" and reply.json()["transaction"] == "t6"
    assert reply.properties.CorrelationData == b"corr-1"
    assert reply.properties.MessageExpiryInterval > 0
    assert calls == [("poll", "t1"), ("identify", "t2"), ("poll", "t6")]  # not "old": retained


def test_a_command_that_expired_while_queued_is_ignored(rig: Rig) -> None:
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def slow(name: str, request: CommandRequest) -> CommandResponse:
        started.set()
        release.wait(5)
        calls.append(request.transaction)
        return CommandResponse(transaction=request.transaction, ok=True)

    requester = rig.watch(f"{TOPICS.root}/cmd/+/response")
    agent = rig.agent(rig.config(), on_command=slow)
    rig.until(lambda: agent.connected, what="connected")
    requester.client.publish(TOPICS.command("poll"), b'{"transaction":"busy"}', qos=1)
    assert started.wait(5)
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.MessageExpiryInterval = 1
    requester.client.publish(TOPICS.command("poll"), b'{"transaction":"late"}', 1, properties=props)
    time.sleep(1.1)  # the request's expiry passes while the handler is busy
    release.set()
    requester.wait_for(lambda m: len(m) >= 1)
    requester.client.publish(TOPICS.command("identify"), b'{"transaction":"next"}', qos=1)
    responses = requester.wait_for(lambda m: len(m) >= 2)
    assert [m.json()["transaction"] for m in responses] == ["busy", "next"]
    assert calls == ["busy", "next"]


# -- protocol fallback ------------------------------------------------------------------


class V311OnlyBroker:
    """A TCP front for Mosquitto that behaves like a 3.1.1-only broker (Mosquitto 1.x):
    an MQTT 5 CONNECT gets CONNACK "unacceptable protocol version" and a close; every
    other connection is relayed to the real broker."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.refused = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, name="v311-front")]
        self._threads[0].start()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            worker = threading.Thread(target=self._serve, args=(conn,), name="v311-relay")
            self._threads.append(worker)
            worker.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            connect = conn.recv(4096)  # a CONNECT is small and arrives in one segment here
            if protocol_level(connect) == 5:
                self.refused += 1
                conn.sendall(b"\x20\x02\x00\x01")
                return
            with socket.create_connection(self.upstream) as upstream:
                upstream.sendall(connect)
                self._relay(conn, upstream)

    def _relay(self, a: socket.socket, b: socket.socket) -> None:
        peers = {a: b, b: a}
        while not self._stop.is_set():
            ready, _, _ = select.select(list(peers), [], [], 0.05)
            for sock in ready:
                data = sock.recv(65536)
                if not data:
                    return
                peers[sock].sendall(data)

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(2)
        self.listener.close()


def protocol_level(connect: bytes) -> int:
    """The protocol level of a CONNECT packet: after the header, its length and "\\0\\4MQTT"."""
    start = 1
    while connect[start] & 0x80:  # the remaining length is a variable-length integer
        start += 1
    return connect[start + 7]


def test_auto_protocol_falls_back_to_3_1_1(rig: Rig, outbox: Outbox) -> None:
    front = V311OnlyBroker((rig.broker.host, rig.broker.port))
    try:
        outbox.put_event(TOPICS.event(KKT), event(0))
        config = rig.config(url=f"mqtt://127.0.0.1:{front.port}")
        agent = rig.agent(config, outbox=outbox, will_delay_s=5)
        rig.until(lambda: agent.connected, what="connected over 3.1.1")
        assert front.refused >= 1 and agent.stats().protocol == "3.1.1"
        rig.until(lambda: outbox.stats().depth == 0, what="drained over 3.1.1")
        retained = rig.watch(TOPICS.status()).wait_topic(TOPICS.status())
        assert status(retained).state is AgentState.ONLINE
        agent.stop(clean=False)  # a 3.1.1 will has no delay
        rig.watch(TOPICS.status()).wait_topic(
            TOPICS.status(), lambda s: status(s).state is AgentState.LOST
        )
    finally:
        front.close()


# -- topics -----------------------------------------------------------------------------


def test_topics_follow_the_contract_and_parse_back() -> None:
    built = {
        TOPICS.status(): ("status", None, None, None),
        TOPICS.health(): ("health", None, None, None),
        TOPICS.state(KKT): ("state", KKT, None, None),
        TOPICS.event(KKT): ("event", KKT, None, None),
        TOPICS.alert(KKT, "FN_EXPIRING"): ("alert", KKT, "FN_EXPIRING", None),
        TOPICS.command("poll"): ("command", None, None, "poll"),
        TOPICS.response("poll"): ("response", None, None, "poll"),
    }
    assert TOPICS.state(KKT) == "kktmon/v1/store-1/kkt/shtrih-0001/state"
    for topic, (kind, kkt, code, command) in built.items():
        parsed = TOPICS.parse(topic)
        assert parsed is not None and parsed.site == "store-1", topic
        assert (parsed.kind, parsed.kkt, parsed.code, parsed.command) == (kind, kkt, code, command)
    assert TOPICS.parse("kktmon/v1/store-1/kkt/x/unknown") is None
    assert TOPICS.parse("other/v1/store-1/agent/status") is None


@pytest.mark.parametrize("bad", ["a/b", "a+b", "#", "", "a b", "a\x00"])
def test_topic_levels_refuse_separators_and_wildcards(bad: str) -> None:
    with pytest.raises(ValueError):
        kkt_id("shtrih", bad)
    with pytest.raises(ValueError):
        Topics("kktmon/v1", bad)
