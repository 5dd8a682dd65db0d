"""A real Mosquitto per test, on a free loopback port, never the system broker on 1883.

``mosquitto`` is an anonymous broker with persistence in ``tmp_path``; ``mosquitto_factory``
starts one with extra configuration lines (passwords, ACL, TLS listeners). Both skip with
the reason when no ``mosquitto`` binary exists (``apt-get install mosquitto``). The
:class:`Broker` can be stopped and started again on the same port for outage tests.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from mqtt_broker import Broker
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from kktmon.agent.config import AgentConfig, parse_config
from kktmon.agent.mqtt import MqttPublisher
from kktmon.agent.outbox import Outbox

STARTED_AT = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


# -- MQTT helpers shared by test_mqtt.py and test_mqtt_acl_tls.py ---------------------------


@dataclass(frozen=True)
class Seen:
    """One message a :class:`Watcher` received."""

    topic: str
    payload: bytes
    retain: bool
    properties: Any = None

    def json(self) -> Any:
        return json.loads(self.payload)


class Watcher:
    """A recording MQTT 5 subscriber; ``persistent`` keeps its session across broker restarts."""

    def __init__(
        self,
        broker: Broker,
        topics: tuple[str, ...] = ("kktmon/#",),
        *,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        persistent: bool = False,
    ) -> None:
        self.seen: list[Seen] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        client_id = f"watcher-{uuid.uuid4().hex[:8]}"
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        # paho's stub says int; the fractions work and keep the tests fast.
        self.client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 300 if persistent else 0
        self.client.connect(
            broker.host, broker.port, keepalive=5, clean_start=not persistent, properties=props
        )
        self.client.loop_start()
        options = SubscribeOptions(qos=1, retainAsPublished=True)
        self.client.subscribe([(topic, options) for topic in topics])
        if not self._subscribed.wait(5):
            raise RuntimeError("watcher: no SUBACK")

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        seen = Seen(message.topic, bytes(message.payload), bool(message.retain), message.properties)
        with self._cond:
            self.seen.append(seen)
            self._cond.notify_all()

    def on(self, topic: str) -> list[Seen]:
        with self._cond:
            return [s for s in self.seen if s.topic == topic]

    def wait_for(
        self, predicate: Callable[[list[Seen]], bool], timeout: float = 5.0, what: str = ""
    ) -> list[Seen]:
        """Block until ``predicate(all messages so far)`` holds; fail the test at ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.seen):
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [(s.topic, s.payload[:120]) for s in self.seen[-10:]]
                    pytest.fail(f"watcher: timed out waiting for {what or predicate}; last: {got}")
                self._cond.wait(left)
            return list(self.seen)

    def wait_topic(
        self, topic: str, predicate: Callable[[Seen], bool] = lambda _: True, timeout: float = 5.0
    ) -> Seen:
        """The first message on ``topic`` that satisfies ``predicate``."""
        found = self.wait_for(
            lambda seen: any(s.topic == topic and predicate(s) for s in seen), timeout, topic
        )
        return next(s for s in found if s.topic == topic and predicate(s))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def watch() -> Iterator[Callable[..., Watcher]]:
    """``watch(broker, *topics, **options)``: a subscriber closed at teardown."""
    watchers: list[Watcher] = []

    def factory(broker: Broker, *topics: str, **options: Any) -> Watcher:
        watcher = Watcher(broker, topics or ("kktmon/#",), **options)
        watchers.append(watcher)
        return watcher

    yield factory
    for watcher in watchers:
        watcher.close()


def agent_config(
    broker: Broker, site: str = "store-1", scheme: str = "mqtt", **mqtt_keys: object
) -> AgentConfig:
    """A validated agent configuration pointing at ``broker`` with quick reconnects."""
    keys: dict[str, object] = {
        "url": f"{scheme}://{broker.host}:{broker.port}",
        "reconnect_min_s": 0.05,
        "reconnect_max_s": 0.3,
        "connect_timeout_s": 2.0,
        "keepalive_s": 5,
        **mqtt_keys,
    }
    lines = [
        f"{key} = {json.dumps(str(v) if isinstance(v, Path) else v)}" for key, v in keys.items()
    ]
    text = "\n".join(
        [f'site = "{site}"', "[mqtt]", *lines, "[[devices]]", 'url = "socket://127.0.0.1:9"']
    )
    return parse_config(text, env={})


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    """A spool for tests that fill it themselves; closed after every publisher stopped."""
    with Outbox(tmp_path / "state" / "outbox.sqlite3") as box:
        yield box


@pytest.fixture
def make_agent(tmp_path: Path, outbox: Outbox) -> Iterator[Callable[..., MqttPublisher]]:
    """``make_agent(config, session=1, outbox=None, start=True, **publisher_options)``.

    Without ``outbox`` each publisher gets a fresh spool. Every publisher is stopped at
    teardown (clean, with a short bound), before ``outbox`` closes.
    """
    publishers: list[MqttPublisher] = []
    outboxes: list[Outbox] = []

    def factory(
        config: AgentConfig,
        session: int = 1,
        outbox: Outbox | None = None,
        start: bool = True,
        **options: Any,
    ) -> MqttPublisher:
        if outbox is None:
            outbox = Outbox(tmp_path / f"outbox-{len(outboxes)}.sqlite3")
            outboxes.append(outbox)
        options.setdefault("will_delay_s", 0)
        options.setdefault("stop_timeout_s", 1.0)
        options.setdefault("started_at", STARTED_AT)
        publisher = MqttPublisher(config, outbox, session=session, version="test", **options)
        publishers.append(publisher)
        if start:
            publisher.start()
        return publisher

    yield factory
    for publisher in publishers:
        publisher.stop()
    for own in outboxes:
        own.close()


def wait_until(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail the test at ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what or condition}")
        time.sleep(0.01)


@dataclass
class Rig:
    """A broker plus the factories a test needs: configs, agents, watchers, waits."""

    broker: Broker
    make_agent: Callable[..., MqttPublisher]
    make_watcher: Callable[..., Watcher]

    def config(
        self, site: str = "store-1", scheme: str = "mqtt", **mqtt_keys: object
    ) -> AgentConfig:
        return agent_config(self.broker, site, scheme, **mqtt_keys)

    def agent(self, config: AgentConfig | None = None, **options: Any) -> MqttPublisher:
        """A started publisher (see ``make_agent``), on this broker unless ``config`` says."""
        return self.make_agent(config or self.config(), **options)

    def watch(self, *topics: str, **options: Any) -> Watcher:
        return self.make_watcher(self.broker, *topics, **options)

    until = staticmethod(wait_until)


@pytest.fixture
def rig_for(
    make_agent: Callable[..., MqttPublisher], watch: Callable[..., Watcher]
) -> Callable[[Broker], Rig]:
    """``rig_for(broker)``: a :class:`Rig` around a broker the test started itself."""
    return lambda broker: Rig(broker, make_agent, watch)


@pytest.fixture
def rig(mosquitto: Broker, rig_for: Callable[[Broker], Rig]) -> Rig:
    """A :class:`Rig` around the anonymous ``mosquitto`` broker."""
    return rig_for(mosquitto)
