"""The shipped broker configuration (``deploy/mosquitto/``) with a real Mosquitto: the ACL
confines each store to its subtree, TLS verifies the broker, client certificates work.

The broker runs ``kktmon.conf`` itself with only paths and ports rewritten, and its ACL
files unchanged (``mqtt_broker.shipped_config``): stores on the TLS listener, ticketing on
the loopback one. Certificates are made per test run (``cryptography`` when installed,
else the ``openssl`` command). Client ids, listeners and size limits: ``tests/deploy/``.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import pytest
from mqtt_broker import Broker, shipped_config
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode
from pki import Pki, make_pki

from kktmon.agent.config import AgentConfig
from kktmon.agent.outbox import Outbox
from kktmon.protocol.contract import AgentState, AgentStatus, CommandRequest, CommandResponse
from kktmon.protocol.topics import Topics

if TYPE_CHECKING:  # conftest is not importable at run time under importlib mode; mypy
    # reads the tests with explicit package bases, where it is tests.agent.conftest
    from tests.agent.conftest import Rig

STORES = {"store-1": "pw-store-1", "store-2": "pw-store-2"}
WORKERS = {"kktmon-ticketing": "pw-central"}
PASSWORDS = {**STORES, **WORKERS}
A, B = Topics("kktmon/v1", "store-1"), Topics("kktmon/v1", "store-2")
CENTRAL = {"username": "kktmon-ticketing", "password": PASSWORDS["kktmon-ticketing"]}
STORE_A = {"username": "store-1", "password": PASSWORDS["store-1"]}


# -- the broker from deploy/ ------------------------------------------------------------


@dataclass
class Central:
    """The deployed configuration running: ``broker.port`` is the ticketing (loopback)
    listener, ``tls_port`` the stores' TLS listener."""

    rig: Rig
    tls_port: int
    pki: Pki

    @property
    def broker(self) -> Broker:
        return self.rig.broker

    def tls_config(self, **keys: Any) -> AgentConfig:
        """An agent configuration for store-1 over TLS (``mqtts://``) with the test CA."""
        keys = {
            "url": f"mqtts://127.0.0.1:{self.tls_port}",
            "tls_ca_file": self.pki.path("ca.crt"),
            **keys,
        }
        return self.rig.config(**keys)


def deploy_config(folder: Path, pki: Pki, tls_port: int, **switches: str) -> str:
    """``kktmon.conf`` with test paths and ports; ``switches`` override single settings."""
    return shipped_config(
        folder, pki.folder, tls_port, stores=STORES, workers=WORKERS, switches=switches
    )


@pytest.fixture
def central(
    tmp_path: Path,
    mosquitto_factory: Callable[..., Broker],
    rig_for: Callable[[Broker], Rig],
    tcp_port: Callable[[], int],
) -> Central:
    pki = make_pki(tmp_path / "certs")
    tls_port = tcp_port()
    text = deploy_config(tmp_path / "etc", pki, tls_port)
    broker = mosquitto_factory(raw=text, name="central")
    return Central(rig_for(broker), tls_port, pki)


class Probe:
    """A bare MQTT 5 client that reports the broker's reason codes."""

    def __init__(
        self,
        host: str,
        port: int,
        username: str,
        password: str,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self._cond = threading.Condition()
        self.replies: dict[int, list[ReasonCode]] = {}
        self.received: list[str] = []
        self.client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=f"probe-{username}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self.client.username_pw_set(username, password)
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self._reply(mid, [rc])
        self.client.on_subscribe = lambda _c, _u, mid, rcs, _p: self._reply(mid, rcs)
        self.client.on_message = self._on_message
        connected = threading.Event()
        self.client.on_connect = lambda *_: connected.set()
        self.client.connect(host, port)
        self.client.loop_start()
        assert connected.wait(5), "probe: no CONNACK"

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._cond:
            self.received.append(message.topic)
            self._cond.notify_all()

    def wait_received(self, topic: str) -> list[str]:
        with self._cond:
            assert self._cond.wait_for(lambda: topic in self.received, 5), f"no {topic}"
            return list(self.received)

    def _reply(self, mid: int, codes: list[ReasonCode]) -> None:
        with self._cond:
            self.replies[mid] = codes
            self._cond.notify_all()

    def _wait(self, mid: int) -> list[ReasonCode]:
        with self._cond:
            assert self._cond.wait_for(lambda: mid in self.replies, 5), "probe: no reply"
            return self.replies[mid]

    def publish(self, topic: str, payload: bytes = b"{}") -> ReasonCode:
        """Publish QoS 1; the PUBACK's reason code ("Not authorized" when the ACL says no)."""
        return self._wait(self.client.publish(topic, payload, qos=1).mid)[0]

    def subscribe(self, topic: str) -> ReasonCode:
        mid = self.client.subscribe(topic, qos=1)[1]
        assert mid is not None, "probe: not connected"
        return self._wait(mid)[0]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def probe(central: Central) -> Iterator[Callable[[str], Probe]]:
    probes: list[Probe] = []

    def factory(username: str) -> Probe:
        """Stores over TLS to their listener, ticketing to its loopback listener."""
        host, password = central.broker.host, PASSWORDS[username]
        if username in STORES:
            tls = ssl.create_default_context(cafile=central.pki.path("ca.crt"))
            probes.append(Probe(host, central.tls_port, username, password, tls))
        else:
            probes.append(Probe(host, central.broker.port, username, password))
        return probes[-1]

    yield factory
    for item in probes:
        item.close()


# -- the ACL ----------------------------------------------------------------------------


def test_a_store_cannot_publish_into_another_stores_subtree(
    central: Central, probe: Callable[[str], Probe]
) -> None:
    admin = central.rig.watch("kktmon/v1/#", **CENTRAL)
    store_a = probe("store-1")
    forbidden = [
        B.event("shtrih-0002"),
        B.state("shtrih-0002"),
        B.status(),
        B.response("poll"),
        B.command("poll"),  # commands come from the centre only, not even to itself
        A.command("poll"),
        "kktmon/v1/elsewhere",
    ]
    for topic in forbidden:
        assert store_a.publish(topic).getName() == "Not authorized", topic
    own = [A.event("shtrih-0001"), A.state("shtrih-0001"), A.status(), A.response("poll")]
    for topic in own:
        assert not store_a.publish(topic).is_failure, topic
    admin.wait_for(lambda m: {s.topic for s in m} >= set(own), what="store-1's own topics")
    assert {s.topic for s in admin.seen} == set(own)  # nothing reached store-2's subtree
    # Nor may it read store-2's commands: Mosquitto grants the subscription, then filters.
    store_a.subscribe(B.commands())
    store_a.subscribe(A.commands())
    ticketing = probe("kktmon-ticketing")
    assert not ticketing.publish(B.command("poll")).is_failure
    assert not ticketing.publish(A.command("poll")).is_failure
    assert store_a.wait_received(A.command("poll")) == [A.command("poll")]


def test_an_agent_works_within_the_acl_and_sets_refused_rows_aside(
    central: Central, probe: Callable[[str], Probe], outbox: Outbox
) -> None:
    def answer(name: str, request: CommandRequest) -> CommandResponse:
        return CommandResponse(transaction=request.transaction, ok=True, detail=name)

    shared = central.rig.watch("$share/kktmon-ticketing/kktmon/v1/#", **CENTRAL)
    admin = central.rig.watch("kktmon/v1/#", **CENTRAL)
    outbox.put_event(B.event("shtrih-0002"), b'{"misrouted":true}')  # a bug: B's subtree
    outbox.put_event(A.event("shtrih-0001"), b'{"seq":1}')
    agent = central.rig.agent(central.tls_config(**STORE_A), outbox=outbox, on_command=answer)
    central.rig.until(lambda: agent.stats().published == 1, what="the allowed row")
    assert agent.stats().publish_errors == 1  # MQTT 5 PUBACK "Not authorized"
    central.rig.until(lambda: outbox.stats().depth == 0, what="the refused row moved aside")
    # Kept, not lost, and out of the queue's way: test_oversize.py has the details.
    assert [(r.topic, r.reason) for r in outbox.rejected()] == [(B.event("shtrih-0002"), "refused")]
    admin.wait_topic(A.event("shtrih-0001"))
    shared.wait_topic(A.event("shtrih-0001"))  # shared subscriptions pass the ACL too
    birth = admin.wait_topic(A.status())
    assert AgentStatus.model_validate_json(birth.payload).state is AgentState.ONLINE
    probe("kktmon-ticketing").publish(A.command("identify"), b'{"transaction":"t-1"}')
    reply = admin.wait_topic(A.response("identify"))
    assert reply.json() == {"transaction": "t-1", "ok": True, "detail": "identify", "result": None}
    assert not any(s.topic.startswith("kktmon/v1/store-2/") for s in admin.seen)


def test_wrong_credentials_never_connect(central: Central) -> None:
    config = central.tls_config(username="store-1", password="not-the-password")
    agent = central.rig.agent(config)
    central.rig.until(lambda: agent.stats().connect_failures >= 2, what="refusals")
    assert not agent.connected


# -- TLS --------------------------------------------------------------------------------


def test_tls_verifies_the_broker_with_the_configured_ca(central: Central) -> None:
    pki = central.pki
    config = central.tls_config(
        **STORE_A, tls_cert_file=pki.path("store-1.crt"), tls_key_file=pki.path("store-1.key")
    )
    agent = central.rig.agent(config)
    central.rig.until(lambda: agent.connected, what="connected over TLS")
    retained = central.rig.watch(A.status(), **CENTRAL).wait_topic(A.status())
    assert AgentStatus.model_validate_json(retained.payload).session == 1


@pytest.mark.parametrize("ca", [None, "other-ca.crt"], ids=["system-store", "wrong-ca"])
def test_tls_without_our_ca_refuses_the_broker(central: Central, ca: str | None) -> None:
    keys: dict[str, Any] = dict(STORE_A)
    if ca is not None:
        keys["tls_ca_file"] = central.pki.path(ca)
    config = central.rig.config(url=f"mqtts://127.0.0.1:{central.tls_port}", **keys)
    agent = central.rig.agent(config)
    central.rig.until(lambda: agent.stats().connect_failures >= 2, what="failed handshakes")
    assert not agent.connected


def test_client_certificate_is_the_identity_when_required(
    central: Central,
    tmp_path: Path,
    mosquitto_factory: Callable[..., Broker],
    rig_for: Callable[[Broker], Rig],
    tcp_port: Callable[[], int],
) -> None:
    tls_port = tcp_port()
    switches = {"require_certificate": "true", "use_identity_as_username": "true"}
    text = deploy_config(tmp_path / "etc-cert", central.pki, tls_port, **switches)
    rig = rig_for(mosquitto_factory(raw=text, name="cert-only"))
    url = f"mqtts://127.0.0.1:{tls_port}"
    ca = central.pki.path("ca.crt")
    without = rig.agent(rig.config(url=url, tls_ca_file=ca, client_id="no-cert"))
    cert, key = central.pki.path("store-1.crt"), central.pki.path("store-1.key")
    config = rig.config(url=url, tls_ca_file=ca, tls_cert_file=cert, tls_key_file=key)
    agent = rig.agent(config, session=3)
    rig.until(lambda: agent.connected, what="connected with a client certificate")
    retained = rig.watch(A.status(), **CENTRAL).wait_topic(A.status())  # plain loopback listener
    assert AgentStatus.model_validate_json(retained.payload).session == 3  # CN store-1 = %u
    rig.until(lambda: without.stats().connect_failures >= 2, what="refusals without a cert")
    assert not without.connected
