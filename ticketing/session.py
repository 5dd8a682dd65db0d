"""A ticketing worker's MQTT connection: its persistent session under its stable client id.

:class:`WorkerSession` wraps one paho client (reading its socket ahead:
:mod:`mqtt_buffered`) that keeps reconnecting (1 s, doubling to 60 s) to resume the same
session: MQTT 5 with ``clean_start=False`` and a session expiry of a week (3.1.1:
``clean_session=False``), so the broker queues the worker's share of events while it
restarts. Messages are acknowledged by the service (manual PUBACK), only
once the store has them.

What goes wrong is logged, rate-limited per reason (:class:`~kktmon.ticketing.faults.Throttle`):
every failed attempt with its reason (refused, unreachable, the TLS error, a CONNACK
refusal, the broker's DISCONNECT reason) and when the next attempt comes; a reconnect
says how many attempts it took. A session taken over by another client with the same id
(a worker on another host with this id) is an ERROR naming the id, and the session stops
reconnecting and reports it through ``on_fatal``: two workers fighting over one session
lose the events in between, every time. A takeover is MQTT 5's DISCONNECT 0x8E, or, from
brokers that just close the old connection (Mosquitto 2.0.11), :data:`TAKEOVER_DROPS`
drops within :data:`TAKEOVER_WINDOW_S`, each reconnect accepted at once with the session
present: the pattern of two clients taking one session in turn.

:func:`end_session` ends a session for good (``kktmon ticketing --retire``): clean start
with a session expiry of 0, then disconnect.
"""

from __future__ import annotations

import logging
import socket
import ssl
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from kktmon.protocol.errors import KktmonError
from kktmon.ticketing.config import MqttSection
from kktmon.ticketing.faults import Retry, Throttle
from kktmon.ticketing.mqtt_buffered import client_class
from kktmon.ticketing.mqtt_client import connect_properties, is_v5, new_client

log = logging.getLogger(__name__)

SESSION_EXPIRY_S = 7 * 24 * 3600  # queued messages survive a worker down for a week
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 60
#: Once the backoff reached its maximum, a failing reason is logged this often.
STEADY_LOG_S = 600.0
SESSION_TAKEN_OVER = 0x8E
#: Brokers that just close a taken-over connection (Mosquitto 2.0.11 sends no DISCONNECT):
#: this many drops in this window, each reconnect accepted at once with the session still
#: there, is two clients taking one session from each other.
TAKEOVER_DROPS, TAKEOVER_WINDOW_S = 3, 30.0


def failure_reason(exc: BaseException | None, tls: bool = False) -> str:
    """Why a connection attempt failed, in words an operator can act on."""
    if tls and isinstance(exc, ConnectionResetError):
        return "TLS handshake failed: the peer reset the connection (is that port TLS?)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS: the broker's certificate was not accepted: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    for kind, words in _REASONS:
        if isinstance(exc, kind):
            return words
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return "connection failed" if exc is None else f"{type(exc).__name__}: {exc}"


_REASONS: tuple[tuple[type[BaseException], str], ...] = (
    (ConnectionRefusedError, "connection refused (is the broker running and listening there?)"),
    (socket.gaierror, "cannot resolve the broker's host name"),
    (TimeoutError, "timed out"),
)


class WorkerSession:
    """The worker's paho client: connects, resumes its session, logs what goes wrong."""

    def __init__(
        self,
        cfg: MqttSection,
        client_id: str,
        *,
        on_connected: Callable[[mqtt.Client, bool], None],
        on_message: Callable[[mqtt.MQTTMessage], None],
        on_fatal: Callable[[str], None],
    ) -> None:
        self.cfg = cfg
        self.client_id = client_id
        self.v5 = is_v5(cfg)
        self.where = f"MQTT {cfg.url} as {client_id}"
        self.connected = threading.Event()
        #: A CONNACK accepted this session at least once.
        self.ever_connected = False
        self.taken_over = False
        self._on_connected = on_connected
        self._on_message = on_message
        self._on_fatal = on_fatal
        self._stopping = False
        self._refused = False
        #: Unexplained drops since the last connect that was not an immediate resume.
        self._drops: deque[float] = deque()
        self._retry = Retry(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self._throttle = Throttle(interval_s=30.0)
        self._steady = Throttle(interval_s=STEADY_LOG_S)
        self.client = self._build()

    def _build(self) -> mqtt.Client:
        client = new_client(
            self.cfg, self.client_id, persistent=True, manual_ack=True, client_class=client_class()
        )
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        # A callback that raised would end paho's network thread, and with it the worker's
        # session, silently: paho logs it (ERROR) and carries on instead.
        client.suppress_exceptions = True
        client.enable_logger(logging.getLogger(f"{__name__}.paho"))
        client.on_connect = self._connected
        client.on_connect_fail = self._connect_failed
        client.on_disconnect = self._disconnected
        client.on_message = lambda _c, _u, message: self._on_message(message)
        return client

    def start(self) -> None:
        """Connect in paho's thread, which keeps reconnecting until :meth:`stop`."""
        props = connect_properties(SESSION_EXPIRY_S) if self.v5 else None
        self.client.connect_async(
            self.cfg.host,
            self.cfg.port,
            keepalive=self.cfg.keepalive_s,
            clean_start=False if self.v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )
        self.client.loop_start()

    def stop(self) -> None:
        """Disconnect normally: the broker keeps the session for the next start."""
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()

    def ack(self, mid: int, qos: int) -> None:
        self.client.ack(mid, qos)

    # -- paho callbacks (its network thread) ------------------------------------------

    def _connected(
        self, client: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        if reason.is_failure:
            self._refused = True
            self._attempt_failed(f"the broker refused the connection: {reason}")
            return
        attempts, self._retry.failures = self._retry.failures, 0
        if attempts > 1 or not flags.session_present:
            self._drops.clear()  # an outage or a new session: not two clients in turn
        after = f" after {attempts} failed attempt(s)" if attempts else ""
        resumed = "resumed its session" if flags.session_present else "a new session"
        log.info("%s: connected%s, %s", self.where, after, resumed)
        try:
            self._on_connected(client, bool(flags.session_present))
        except Exception:  # a bug, not the broker: say so rather than end paho's thread
            log.exception("%s: setting up the session (subscriptions) failed", self.where)
        self.ever_connected = True
        self.connected.set()

    def _fighting(self) -> bool:
        """Count an unexplained drop; whether the drops now look like a takeover fight."""
        now = time.monotonic()
        self._drops.append(now)
        while self._drops and now - self._drops[0] > TAKEOVER_WINDOW_S:
            self._drops.popleft()
        return len(self._drops) >= TAKEOVER_DROPS

    def _connect_failed(self, _c: Any, _u: Any) -> None:
        # paho passes no reason, but calls this while handling the OSError it caught.
        self._attempt_failed(failure_reason(sys.exception(), self.cfg.tls))

    def _disconnected(
        self, client: mqtt.Client, _u: Any, flags: Any, reason: ReasonCode, _p: Any
    ) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if self._stopping or self.taken_over:
            return
        if flags.is_disconnect_packet_from_server and reason.value == SESSION_TAKEN_OVER:
            self._taken_over(client, "MQTT 5 reason 0x8E, session taken over")
            return
        if self._refused:  # the refusal was logged; paho reports it again as a disconnect
            self._refused = False
            return
        if was_connected and not flags.is_disconnect_packet_from_server and self._fighting():
            self._taken_over(
                client,
                f"the broker closed this connection {len(self._drops)} times in "
                f"{TAKEOVER_WINDOW_S:g} s without a reason, each time accepting the reconnect "
                f"at once with the session still there",
            )
            return
        if was_connected:
            delay = self._retry.next_s()
            self._throttle.log(
                log,
                logging.WARNING,
                f"lost:{reason}",
                "%s: connection lost (%s); reconnecting in %g s",
                self.where,
                reason,
                delay,
            )
        else:
            self._attempt_failed(f"the connection closed before the broker accepted it: {reason}")

    def _attempt_failed(self, why: str) -> None:
        delay = self._retry.next_s()
        args = (self.where, self._retry.failures, why, delay)
        if delay < RECONNECT_MAX_S:  # the backoff itself spaces these out
            log.warning("%s: attempt %d failed: %s; retrying in %g s", *args)
            return
        self._steady.log(  # a long outage: one line per reason every few minutes
            log, logging.WARNING, why, "%s: attempt %d failed: %s; retrying in %g s", *args
        )

    def _taken_over(self, client: mqtt.Client, evidence: str) -> None:
        self.taken_over = True
        client.disconnect()  # paho must not reconnect and take the session back
        message = (
            f"{self.where}: another client with the same id took this session over "
            f"({evidence}); stopping instead of fighting for it. Give every worker its own "
            f"[mqtt] client_id, or leave it unset (kktmon-ticketing-<hostname>-<slot>)"
        )
        log.error("%s", message)
        self._on_fatal(message)


def end_session(cfg: MqttSection, client_id: str, timeout_s: float = 15.0) -> None:
    """Connect as ``client_id`` with a clean start and no session expiry, then disconnect:
    the broker drops the session and its place in the shared subscription group."""
    accepted = threading.Event()
    result: list[ReasonCode] = []
    v5 = is_v5(cfg)
    client = new_client(cfg, client_id, persistent=False)

    def connected(_c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        result.append(reason)
        accepted.set()

    client.on_connect = connected
    props = connect_properties(0) if v5 else None
    where = f"MQTT {cfg.url} as {client_id}"
    try:
        client.connect(
            cfg.host,
            cfg.port,
            cfg.keepalive_s,
            clean_start=True if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY,
            properties=props,
        )
    except OSError as exc:
        raise KktmonError(f"{where}: cannot connect: {failure_reason(exc, cfg.tls)}") from exc
    client.loop_start()
    try:
        if not accepted.wait(timeout_s):
            raise KktmonError(f"{where}: no answer from the broker in {timeout_s:g} s")
        if result[0].is_failure:
            raise KktmonError(f"{where}: the broker refused the connection: {result[0]}")
    finally:
        client.disconnect()
        client.loop_stop()
