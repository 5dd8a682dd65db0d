"""Reading the retained set: every retained alert and agent status, and knowing it is all.

    retained = read_retained(config.mqtt, "kktmon-ticketing-a-reconcile")
    retained.complete   # False: the read ended without its end marker

A read is a short-lived connection of its own (the reconciler's client id is
``<holder>-reconcile``; clean start, nothing left on the broker) subscribing at
QoS 0 to ``<prefix>/+/agent/status`` and then to ``<prefix>/+/kkt/+/alert/+``. Mosquitto
queues a subscription's retained messages at once, in one FIFO per client; after each
SUBSCRIBE the reader publishes one message to a private marker topic it subscribed to,
which arrives behind every retained message of that filter: that filter is read. The
marker is ``<prefix>/kktmon-ticketing/cmd/reconcile-<token>``, which the shipped ticketing
ACL lets the workers write (``topic write kktmon/v1/+/cmd/+``) and no store reads (stores
read their own ``cmd/+``; ``kktmon-ticketing`` is never a site id). When a marker does not
come (an ACL refusing it, or a broker that dropped messages because a filter's set
exceeded its ``max_queued_messages``) that filter's read ends after a quiet period and the
read counts as incomplete.

**Broker limits**: Mosquitto drops, per client, QoS 0 messages beyond
``max_queued_messages`` waiting to be written (the shipped ``kktmon.conf`` says 100,000).
Filters are read one at a time, so the retained alerts (and, apart, the statuses) must
stay below it, or the read is incomplete (logged) and nothing is cleared.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from kktmon.protocol.errors import ServerRefusedError, TransportClosedError, UnreachableError
from kktmon.protocol.settings import MqttSettings
from kktmon.ticketing.mqtt_client import is_v5, new_client

log = logging.getLogger(__name__)

__all__ = ["MARKER_SITE", "RetainedSet", "read_retained"]

#: The site level of marker topics: the workers' own name, never a store's.
MARKER_SITE = "kktmon-ticketing"
#: With no marker, a filter's read ends after this long without a message.
QUIET_S = 2.0


class RetainedSet(dict[str, bytes]):
    """Topic -> payload of every retained alert and status read.

    ``complete`` is False when the read ended without its end marker; ``read_s`` is how
    long it took.
    """

    complete: bool = True
    read_s: float = 0.0

    def size_bytes(self) -> int:
        """What the set holds in memory: the dict, its topics and its payloads."""
        items = sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in self.items())
        return sys.getsizeof(self) + items


def read_retained(cfg: MqttSettings, client_id: str, timeout_s: float = 15.0) -> RetainedSet:
    """Every retained alert and agent status under ``cfg.topic_prefix``, through a
    connection of its own as ``client_id``.

    Raises :class:`~kktmon.protocol.errors.TransportError` subclasses when the broker
    cannot be reached, refuses, or drops the connection; a read that ends without
    its marker (quiet period, or ``timeout_s``) returns with ``complete`` False.
    """
    token = uuid.uuid4().hex[:16]
    reader = _Reader(
        filters=[f"{cfg.topic_prefix}/+/agent/status", f"{cfg.topic_prefix}/+/kkt/+/alert/+"],
        marker=f"{cfg.topic_prefix}/{MARKER_SITE}/cmd/reconcile-{token}",
        token=token,
        v5=is_v5(cfg),
    )
    client = new_client(cfg, client_id, persistent=False)
    reader.attach(client)
    begun = time.monotonic()
    deadline = begun + timeout_s
    try:
        clean = True if is_v5(cfg) else mqtt.MQTT_CLEAN_START_FIRST_ONLY
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s, clean_start=clean)
    except (OSError, ValueError) as exc:  # ssl.SSLError and socket.timeout are OSErrors
        raise UnreachableError(f"reconcile: cannot connect to {cfg.url}: {exc}") from exc
    try:
        while not reader.finished(now := time.monotonic()) and now < deadline:
            rc = client.loop(timeout=0.05)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS and not (reader.done or reader.refused):
                raise TransportClosedError(f"reconcile: {cfg.url} dropped the connection")
    finally:
        client.disconnect()
        client.loop(timeout=0.01)
    reader.check()
    retained = reader.result()
    retained.read_s = time.monotonic() - begun
    if not retained.complete:
        log.warning(
            "reconcile: the end marker %s never came (%s); the read of %d message(s) "
            "ended after %s, so nothing is cleared this run. Let the ticketing user write "
            "it, and keep the broker's max_queued_messages above the retained count",
            reader.marker,
            reader.marker_problem or "dropped by the broker, or a full queue",
            len(retained),
            "a quiet period" if time.monotonic() < deadline else f"{timeout_s:g} s",
        )
    return retained


class _Reader:
    """The paho callbacks of one read, and what they saw.

    The filters are read one after the other, each closed by its own marker message, so
    the broker queues one filter's retained messages at a time (statuses, then alerts):
    its ``max_queued_messages`` bounds each burst, not their sum.
    """

    def __init__(self, filters: list[str], marker: str, token: str, *, v5: bool) -> None:
        self.filters = filters
        self.v5 = v5
        self.marker = marker
        self.token = token
        self.retained = RetainedSet()
        self.phase = -1  # index of the filter being read
        self.phase_at = 0.0  # when its SUBACK came (0: not yet)
        self.last_message_at = 0.0
        self.missed = 0  # phases ended by the quiet period, not by their marker
        self.done = False
        self.marker_problem = ""
        self.refused = ""
        self._client: mqtt.Client | None = None
        self._subscribe_mid = -1

    def attach(self, client: mqtt.Client) -> None:
        self._client = client
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        client.on_message = self._on_message

    def finished(self, now: float) -> bool:
        """Whether the read is over; moves on to the next filter after a quiet period."""
        if self.done or self.refused:
            return True
        if self.phase_at and now - max(self.phase_at, self.last_message_at) >= QUIET_S:
            self.missed += 1
            self._next()
        return self.done

    def check(self) -> None:
        if self.refused:
            raise ServerRefusedError("reconcile_refused", f"reconcile: {self.refused}")

    def result(self) -> RetainedSet:
        self.retained.complete = self.done and not self.missed
        return self.retained

    def _marker_payload(self, phase: int) -> bytes:
        return json.dumps({"transaction": self.token, "phase": phase}).encode()

    def _next(self) -> None:
        self.phase += 1
        self.phase_at = 0.0
        if self.phase == len(self.filters):
            self.done = True
            return
        assert self._client is not None
        names = [self.filters[self.phase], *([self.marker] if self.phase == 0 else [])]
        # The broker queues the filter's retained messages while handling the SUBSCRIBE,
        # before it reads the marker's PUBLISH that follows: the marker comes after them.
        # QoS 0: MQTT 5 takes options, 3.1.1 a bare number.
        if self.v5:
            _rc, mid = self._client.subscribe([(n, SubscribeOptions(qos=0)) for n in names])
        else:
            _rc, mid = self._client.subscribe([(n, 0) for n in names])
        self._subscribe_mid = -1 if mid is None else mid
        self._client.publish(self.marker, self._marker_payload(self.phase), qos=1)

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused = f"the broker refused the connection: {reason}"
            return
        self._next()

    def _on_subscribe(
        self, _c: mqtt.Client, _u: Any, mid: int, reasons: list[ReasonCode], _p: Any
    ) -> None:
        if mid != self._subscribe_mid:
            return
        self.phase_at = time.monotonic()
        if reasons and reasons[0].is_failure:
            self.refused = f"the broker refused the subscription to {self.filters[self.phase]}"
        elif len(reasons) > 1 and reasons[1].is_failure:
            self.marker_problem = "its subscription was refused"

    def _on_publish(self, _c: mqtt.Client, _u: Any, _mid: int, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:  # MQTT 5 says why; 3.1.1 brokers drop it silently
            self.marker_problem = f"the broker refused it: {reason}"

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.last_message_at = time.monotonic()
        if message.topic == self.marker:
            if message.payload == self._marker_payload(self.phase):
                self._next()
        elif self.done:
            return  # live traffic after the set: the next run's business
        elif message.payload:
            self.retained[message.topic] = bytes(message.payload)
        else:  # emptied while we read: the alert is gone
            self.retained.pop(message.topic, None)
