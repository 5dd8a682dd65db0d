"""One MQTT connection: a paho client used for exactly one connect, and what it reports.

:class:`Link` wraps a paho 2.x client created for a single connection attempt, with
automatic reconnection switched off: when the connection ends the link is closed and
the publisher builds a new one. Paho's callbacks run in its ``loop_start()`` thread
and do nothing but post a :class:`LinkEvent` to the publisher's queue.

TLS (``mqtts://``) verifies the broker against ``tls_ca_file`` (the system store when
unset) and checks its host name; a client certificate is optional. The password is a
``SecretStr`` handed to paho only, never logged.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from kktmon.agent.config import MqttConfig
from kktmon.protocol.errors import ConfigError

if TYPE_CHECKING:
    from kktmon.agent.outbox import Entry

log = logging.getLogger(__name__)

#: Bound on waiting for the network thread to notice a DISCONNECT before cutting the socket.
_CLOSE_WAIT_S = 1.0

EventKind = Literal["connack", "gone", "puback", "status", "command", "wake", "stop"]


@dataclass(frozen=True)
class LinkEvent:
    """What one connection (``gen``) reported, or a nudge from the publisher (gen 0)."""

    kind: EventKind
    gen: int
    reason: ReasonCode | None = None
    properties: Properties | None = None
    mid: int = 0
    topic: str = ""
    payload: bytes = b""
    retain: bool = False
    received_at: float = field(default_factory=time.monotonic)


def ssl_context(cfg: MqttConfig) -> ssl.SSLContext | None:
    """The TLS context for ``mqtts://`` (None for plain ``mqtt://``); ConfigError on bad files."""
    if not cfg.tls:
        return None
    try:
        context = ssl.create_default_context(
            cafile=None if cfg.tls_ca_file is None else str(cfg.tls_ca_file)
        )
        if cfg.tls_cert_file is not None:
            secret = cfg.tls_key_password
            context.load_cert_chain(
                cfg.tls_cert_file,
                cfg.tls_key_file,
                None if secret is None else secret.get_secret_value(),
            )
    except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
        raise ConfigError(f"mqtt TLS files: cannot load: {exc}") from exc
    return context


def properties(packet_type: int) -> Properties:
    """Empty MQTT 5 properties for one packet type (paho's constructor is untyped)."""
    return Properties(packet_type)  # type: ignore[no-untyped-call]


class Link:
    """A paho client for one connection; ``post`` receives its events from paho's thread."""

    def __init__(
        self,
        cfg: MqttConfig,
        gen: int,
        v5: bool,
        post: Callable[[LinkEvent], None],
        *,
        ssl: ssl.SSLContext | None,
        status_topic: str,
        will: bytes,
        will_delay_s: int,
        max_inflight: int,
    ) -> None:
        self.cfg, self.gen, self.v5 = cfg, gen, v5
        self.where = f"{cfg.host}:{cfg.port}"
        #: Outbox entries in flight by message id, and the highest entry id handed to paho.
        self.inflight: dict[int, Entry] = {}
        self.cursor = 0
        self.receive_max = max_inflight
        self._post = post
        self._status_topic = status_topic
        self._will_delay_s = will_delay_s
        self._started = False
        self._dropped = False
        self._gone = threading.Event()
        self.client = self._build(ssl, will, max_inflight)

    def _build(self, context: ssl.SSLContext | None, will: bytes, max_inflight: int) -> mqtt.Client:
        cfg = self.cfg
        client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=cfg.client_id or "",
            clean_session=None if self.v5 else True,
            protocol=MQTTProtocolVersion.MQTTv5 if self.v5 else MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
        )
        client.connect_timeout = cfg.connect_timeout_s
        client.max_inflight_messages_set(max_inflight)
        if cfg.username is not None:
            secret = cfg.password
            client.username_pw_set(
                cfg.username, None if secret is None else secret.get_secret_value()
            )
        if context is not None:
            client.tls_set_context(context)
        will_props = None
        if self.v5 and self._will_delay_s > 0:
            will_props = properties(PacketTypes.WILLMESSAGE)
            will_props.WillDelayInterval = self._will_delay_s
        client.will_set(self._status_topic, will, qos=1, retain=True, properties=will_props)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    # -- paho callbacks (network thread): post and return ------------------------------

    def _on_connect(
        self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, props: Properties | None
    ) -> None:
        self._post(LinkEvent("connack", self.gen, reason=reason, properties=props))

    def _on_disconnect(
        self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Properties | None
    ) -> None:
        self._gone.set()
        self._post(LinkEvent("gone", self.gen, reason=reason))

    def _on_publish(
        self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Properties | None
    ) -> None:
        self._post(LinkEvent("puback", self.gen, reason=reason, mid=mid))

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        kind: EventKind = "status" if message.topic == self._status_topic else "command"
        props = getattr(message, "properties", None)
        self._post(
            LinkEvent(
                kind,
                self.gen,
                properties=props,
                topic=message.topic,
                payload=bytes(message.payload),
                retain=bool(message.retain),
            )
        )

    def _on_subscribe(
        self, _c: Any, _u: Any, _mid: int, reasons: list[ReasonCode], _p: Properties | None
    ) -> None:
        if any(reason.is_failure for reason in reasons):
            log.warning("MQTT %s refused a subscription (ACL?): %s", self.where, reasons)

    # -- used by the publisher's worker thread ----------------------------------------

    def open(self) -> bool:
        """Connect the socket and send CONNECT; False (logged) when that already fails."""
        props = None
        if self.v5:
            props = properties(PacketTypes.CONNECT)
            # The will delay only acts while the session lives; clean_start drops it anyway.
            props.SessionExpiryInterval = self._will_delay_s
        try:
            self.client.connect(
                self.cfg.host,
                self.cfg.port,
                self.cfg.keepalive_s,
                clean_start=True if self.v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
                properties=props,
            )
        except (OSError, ValueError) as exc:
            log.warning("MQTT %s: cannot connect: %s", self.where, exc)
            return False
        self.client.loop_start()
        self._started = True
        return True

    def accepted(self, props: Properties | None) -> None:
        """CONNACK said yes: honour the broker's receive maximum (MQTT 5)."""
        limit = getattr(props, "ReceiveMaximum", None)
        if isinstance(limit, int) and limit > 0:
            self.receive_max = min(self.receive_max, limit)

    def publish(
        self, topic: str, payload: bytes, *, retain: bool, properties: Properties | None = None
    ) -> int:
        """Hand one QoS 1 message to paho; returns its message id. ValueError if unsendable."""
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise ValueError(f"paho refused the message: {mqtt.error_string(info.rc)}")
        return info.mid

    def publish_status(self, payload: bytes) -> int:
        return self.publish(self._status_topic, payload, retain=True)

    def subscribe(self, topics: list[str]) -> None:
        self.client.subscribe([(topic, 1) for topic in topics])

    def disconnect(self) -> None:
        """A clean DISCONNECT: the broker discards the will."""
        if not self._dropped:
            self.client.disconnect()

    def drop(self) -> None:
        """Cut the TCP connection without DISCONNECT, as a crash would: the will fires."""
        self._dropped = True
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            # socket.socket.shutdown, not SSLSocket's: leave the TLS object to paho.
            with contextlib.suppress(OSError):  # already gone
                socket.socket.shutdown(sock, socket.SHUT_RDWR)

    def close(self) -> None:
        """Make sure the connection is over and paho's thread has ended."""
        if not self._started:
            return
        self.disconnect()
        if not self._gone.wait(_CLOSE_WAIT_S):
            self.drop()
        self.client.loop_stop()
        self._started = False
