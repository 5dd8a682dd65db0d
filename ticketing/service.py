"""``kktmon ticketing``: the central subscriber that turns agents' messages into tickets.

Threads, each with one job:

* paho's network thread receives messages and only queues them;
* the intake worker takes queued messages in batches, translates them (:mod:`intake`),
  applies the facts in one store transaction and only then acknowledges them to the
  broker (manual PUBACK), so a killed worker loses nothing: the broker redelivers;
* the ticker runs the store's clock (hold-downs, grace periods, lost agents);
* the dispatcher delivers help-desk calls from the store's outbox to the sinks.

Several workers share the load through MQTT 5 shared subscriptions
(``$share/<group>/...``). Shared subscriptions do not get retained messages (MQTT 5;
Mosquitto needs telling, with retain handling 2), so each worker reconciles on start:
it reads the retained alerts and agent statuses through a plain subscription, raises
what is retained and clears live tickets whose alert is gone.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from kktmon.protocol.errors import KktmonError
from kktmon.ticketing import lifecycle as lc
from kktmon.ticketing.calls import Sink
from kktmon.ticketing.config import OkdeskSinkConfig, TicketingConfig, WebhookSinkConfig
from kktmon.ticketing.dispatch import Backoff, Dispatcher
from kktmon.ticketing.intake import Fact, Intake
from kktmon.ticketing.okdesk import OkdeskSink
from kktmon.ticketing.sinks import WebhookSink
from kktmon.ticketing.store import RegisterFacts, TicketStore, open_store

log = logging.getLogger(__name__)

BATCH = 500  # messages per store transaction
SESSION_EXPIRY_S = 7 * 24 * 3600  # queued messages survive a worker down for a week
RECONCILE_QUIET_S = 1.0  # retained messages arrive at once: this long with none = done
RECONCILE_MAX_S = 15.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def build_sinks(config: TicketingConfig) -> dict[str, Sink]:
    sinks: dict[str, Sink] = {}
    for entry in config.sink_configs():
        if isinstance(entry, WebhookSinkConfig):
            secret = entry.secret.get_secret_value() if entry.secret else None
            sinks[entry.name] = WebhookSink(
                entry.name, entry.url, secret, timeout_s=entry.timeout_s, headers=entry.headers
            )
        elif isinstance(entry, OkdeskSinkConfig):
            token = entry.api_token.get_secret_value() if entry.api_token else ""
            sinks[entry.name] = OkdeskSink(
                entry.name,
                entry.url,
                token,
                author_id=entry.author_id,
                issue_type=entry.issue_type,
                priorities={str(k): v for k, v in entry.priorities.items()},
                resolved_status=entry.resolved_status,
                reopened_status=entry.reopened_status,
                timeout_s=entry.timeout_s,
                find_equipment=entry.find_equipment,
            )
    return sinks


def _backoffs(config: TicketingConfig) -> dict[str, Backoff]:
    return {
        entry.name: Backoff(entry.retry_min_s, entry.retry_max_s, max_attempts=entry.max_attempts)
        for entry in config.sink_configs()
    }


@dataclass(frozen=True)
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime


class TicketingService:
    """One worker; run several against one PostgreSQL store to scale out."""

    def __init__(self, config: TicketingConfig, store: TicketStore | None = None) -> None:
        self.config = config
        section = config.ticketing
        self.store = store or open_store(section.store, policy=section, sinks=config.sink_names)
        self.intake = Intake(config.mqtt.topic_prefix)
        self.sinks = build_sinks(config)
        self.dispatcher = Dispatcher(self.store, self.sinks, per_sink=_backoffs(config))
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self.reconciled = threading.Event()
        self._inbox: queue.Queue[_Message] = queue.Queue()
        self._retained: dict[str, bytes] = {}
        self._last_retained = time.monotonic()
        self.applied = 0
        self._last_tick = 0.0
        self._connected_at = utc_now()
        self.client = self._client()
        self._threads = [
            threading.Thread(target=self._intake_loop, name="ticketing intake", daemon=True),
            threading.Thread(target=self._tick_loop, name="ticketing ticker", daemon=True),
            threading.Thread(
                target=self.dispatcher.run_forever,
                args=(self.stop_event,),
                name="ticketing dispatcher",
                daemon=True,
            ),
        ]

    # ------------------------------------------------------------------ lifecycle

    @property
    def v5(self) -> bool:
        """MQTT 5 (shared subscriptions, session expiry) unless the config says 3.1.1."""
        return self.config.mqtt.protocol != "3.1.1"

    def start(self) -> None:
        mqtt_config = self.config.mqtt
        if self.v5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = SESSION_EXPIRY_S
            self.client.connect_async(
                mqtt_config.host,
                mqtt_config.port,
                keepalive=mqtt_config.keepalive_s,
                clean_start=False,
                properties=properties,
            )
        else:  # a persistent 3.1.1 session: clean_session=False is set on the client
            self.client.connect_async(
                mqtt_config.host, mqtt_config.port, keepalive=mqtt_config.keepalive_s
            )
        self.client.loop_start()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(timeout=10)
        self.client.disconnect()
        self.client.loop_stop()
        self.store.close()
        for sink in self.sinks.values():
            close = getattr(sink, "close", None)
            if close is not None:
                close()

    def run(self) -> int:
        """Serve until ``stop_event`` (set by the CLI's signal handlers)."""
        self.start()
        self.stop_event.wait()
        self.stop()
        return 0

    # ------------------------------------------------------------------ MQTT

    def _client(self) -> mqtt.Client:
        cfg = self.config.mqtt
        client_id = cfg.client_id or f"kktmon-ticketing-{uuid.uuid4().hex[:8]}"
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
            clean_session=None if self.v5 else False,
            manual_ack=True,
        )
        if cfg.username:
            password = cfg.password.get_secret_value() if cfg.password else None
            client.username_pw_set(cfg.username, password)
        if cfg.tls:
            context = ssl.create_default_context(cafile=cfg.tls_ca_file)
            if cfg.tls_cert_file:
                context.load_cert_chain(cfg.tls_cert_file, cfg.tls_key_file)
            client.tls_set_context(context)
        client.reconnect_delay_set(1, 60)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = lambda *_: self.connected.clear()
        return client

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("MQTT refused the connection: %s", reason)
            return
        prefix, group = self.config.mqtt.topic_prefix, self.config.mqtt.shared_group
        live = [f"{prefix}/+/kkt/+/event", f"{prefix}/+/kkt/+/state", f"{prefix}/+/agent/status"]
        # Retained truth, which shared subscriptions never get: read on every connect.
        self.reconciled.clear()
        self._last_retained = time.monotonic()
        self._connected_at = utc_now()
        if self.v5:
            # Mosquitto 2.0 hands retained messages to a new $share subscription, contrary
            # to MQTT 5: every register's state to every worker on every connect, all held
            # and translated by the reconciler. The plain subscriptions below bring its input.
            options = SubscribeOptions(qos=1, retainHandling=SubscribeOptions.RETAIN_DO_NOT_SEND)
            client.subscribe([(f"$share/{group}/{topic}", options) for topic in live])
            retained = [f"{prefix}/+/kkt/+/alert/+", f"{prefix}/+/agent/status"]
            client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in retained])
        else:  # one worker: plain subscriptions also bring the retained messages
            client.subscribe([(topic, 1) for topic in [*live, f"{prefix}/+/kkt/+/alert/+"]])
        self.connected.set()
        log.info("ticketing connected to %s", self.config.mqtt.url)

    def _on_message(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        now = utc_now()
        if message.retain and not self.reconciled.is_set():
            self._retained[message.topic] = bytes(message.payload)
            self._last_retained = time.monotonic()
            client.ack(message.mid, message.qos)
            return
        self._inbox.put(
            _Message(message.topic, bytes(message.payload), message.mid, message.qos, now)
        )

    # ------------------------------------------------------------------ intake

    def _intake_loop(self) -> None:
        while not self.stop_event.is_set():
            if not self.reconciled.is_set():
                self._maybe_reconcile()
            batch = self._take_batch()
            if batch:
                self._apply_messages(batch)

    def _take_batch(self) -> list[_Message]:
        try:
            batch = [self._inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < BATCH:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        return batch

    def _apply_messages(self, batch: list[_Message]) -> None:
        facts: list[Fact] = []
        states: dict[tuple[str, str], RegisterFacts] = {}
        for message in batch:
            translated = self.intake.translate(message.topic, message.payload, message.received_at)
            if translated.fact is not None:
                facts.append(translated.fact)
            if translated.state is not None:
                states[(translated.state.site, translated.state.kkt)] = translated.state
        try:
            # States first, so raises in the same batch find their register's facts.
            self.store.record_states(list(states.values()))
            if facts:
                self.store.apply_batch([self._enriched(fact) for fact in facts], utc_now())
        except KktmonError as exc:
            # Not acknowledged: the broker redelivers after we reconnect.
            log.error("ticket store failed, %d message(s) left unacknowledged: %s", len(batch), exc)
            self.client.reconnect()
            return
        self.applied += len(facts)
        for message in batch:  # only now: a killed worker loses nothing the store lacks
            self.client.ack(message.mid, message.qos)

    def _enriched(self, fact: Fact) -> Fact:
        if isinstance(fact, lc.ProblemRaised) and not fact.snapshot_facts:
            stored = self.store.device_facts(fact.site, fact.kkt)
            if stored:
                return fact.model_copy(update={"snapshot_facts": stored})
        return fact

    def _maybe_reconcile(self) -> None:
        quiet = time.monotonic() - self._last_retained
        if not self.connected.is_set() or quiet < RECONCILE_QUIET_S:
            return
        self.reconcile(dict(self._retained))
        self._retained.clear()
        prefix = self.config.mqtt.topic_prefix
        if self.v5:  # 3.1.1 keeps its plain subscriptions: they are the live ones too
            self.client.unsubscribe([f"{prefix}/+/kkt/+/alert/+", f"{prefix}/+/agent/status"])
        self.reconciled.set()

    def reconcile(self, retained: dict[str, bytes]) -> None:
        """Raise every retained alert, clear live tickets whose alert is gone."""
        now = utc_now()
        facts: list[Fact] = []
        alive: set[tuple[str, str, str]] = set()
        for topic, payload in retained.items():
            fact = self.intake.translate(topic, payload, now).fact
            if fact is None:
                continue
            facts.append(self._enriched(fact))
            if isinstance(fact, lc.ProblemRaised):
                alive.add((fact.site, fact.kkt, fact.problem.code))
        for ticket in self.store.tickets():
            key = (ticket.site, ticket.kkt, ticket.problem)
            if (
                ticket.state is lc.TicketState.RESOLVED
                or ticket.kkt == lc.AGENT_KKT
                or key in alive
            ):
                continue
            if ticket.last_event_at >= self._connected_at:
                continue  # raised live after the retained set was read: not ours to judge
            facts.append(
                lc.ProblemCleared(site=ticket.site, kkt=ticket.kkt, code=ticket.problem, at=now)
            )
        if facts:
            self.store.apply_batch(facts, now)
        log.info("reconciled %d retained message(s), %d fact(s)", len(retained), len(facts))

    # ------------------------------------------------------------------ clock

    def _tick_loop(self) -> None:
        interval = self.config.ticketing.tick_interval_s
        while not self.stop_event.wait(min(interval, 1.0)):
            if self._tick_due(interval):
                try:
                    self.store.tick(utc_now())
                except KktmonError as exc:
                    log.error("ticket store tick failed: %s", exc)

    def _tick_due(self, interval: float) -> bool:
        now = time.monotonic()
        if now - self._last_tick >= interval:
            self._last_tick = now
            return True
        return False
