"""The agent's MQTT side: drain the outbox to the broker, answer commands (DESIGN.md 4-5).

Threads. One worker thread (``kktmon-mqtt``) owns the connection's life and the outbox
cursor: it connects, publishes, acks and reconnects. Each connection gets a fresh paho
client whose ``loop_start()`` network thread only posts what happened (CONNACK, PUBACK,
disconnect, status messages) to the worker's queue, so no outbox call ever runs under
paho's locks. A fresh client per connection matters: paho re-sends its unacked QoS 1
messages after a reconnect on its own, ahead of the birth and without the ``replayed``
flag; the worker re-sends them from the outbox instead, in order, after the birth. A
second thread (``kktmon-mqtt-cmd``) answers commands, so a slow register poll never
holds up the publishing.

Per connection: ``outbox.mark_replayed()``, the retained ``online`` birth, subscriptions
(commands, and our own status topic), the ``on_connect`` callback (the service re-puts
the current state and active alerts), then the outbox in id order with QoS 1 and a
bounded in-flight window; a PUBACK deletes the row. Events queued before the current
connection go out with ``"replayed": true``.

One bad row never blocks the rows behind it. A row over ``max_payload_bytes`` (queued by
an older agent, or grown by the ``replayed`` flag) is set aside instead of sent. A
failure PUBACK (MQTT 5, e.g. 0x87 not authorised) sets the row aside with the reason;
only 0x91 and 0x97 (packet id in use, quota exceeded: passing states) keep it for the
next connection. Some refusals end the connection instead: Mosquitto 2.0 answers an
oversize publish with PUBACK 0x95, which is no valid PUBACK code for paho, so paho drops
the link as a protocol error before we learn which message it was; a packet over the
broker's ``max_packet_size`` gets DISCONNECT 0x95. When a connection breaks like that
with rows in flight, those rows become suspects and the next connections send one row at
a time until each suspect is through; a suspect the link breaks on again, alone in
flight, is set aside. So a message the broker will never take costs two reconnects, not
a loop.

The last will is a retained ``lost`` with this process's session (MQTT 5: delayed a few
seconds, so a quick reconnect does not flap). Should a stale ``lost`` or ``offline``
(an older session's will, or ours after a half-open connection) land on the status
topic while we are connected, the birth is published again, so the retained status
ends up true. Reconnects use capped exponential backoff with jitter; no exception
leaves the worker, and during an outage the outbox simply grows.

Protocol ``auto`` tries MQTT 5 and falls back to 3.1.1 when the broker refuses the
protocol version (or drops the connection before any CONNACK); it probes 5 again after
a 3.1.1 attempt fails the same way.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from paho.mqtt.reasoncodes import ReasonCode

from kktmon.agent.config import AgentConfig
from kktmon.agent.mqtt_commands import CommandDesk, CommandHandler
from kktmon.agent.mqtt_link import Link, LinkEvent, ssl_context
from kktmon.agent.outbox import Entry, EntryKind, Outbox, SetAside
from kktmon.protocol.contract import AgentState, AgentStatus, PublisherStats
from kktmon.protocol.topics import Topics

log = logging.getLogger(__name__)

#: Re-read the outbox this often even without a ``wake()``: a missed wake costs latency only.
IDLE_POLL_S = 5.0
#: Publishes beyond the outbox window that may be in flight: birth, goodbye, responses.
_RESERVE = 4
#: CONNACK codes meaning "not this protocol version": MQTT 5's 0x84, and 3.1.1's 1 in
#: case paho passes a 3.1.1-style refusal through unconverted.
_PROTOCOL_REFUSED = {0x84, 0x01}
#: Failure PUBACKs that may pass (packet identifier in use, quota exceeded): keep the row.
_RETRY_LATER = {0x91, 0x97}
#: Why a connection may end because of one message in it: malformed packet, protocol
#: error (paho's word for a PUBACK code it does not know, such as Mosquitto's 0x95),
#: topic name invalid, packet too large, payload format invalid.
_MESSAGE_FAULTS = {0x81, 0x82, 0x90, 0x95, 0x99}


class MqttPublisher:
    """Publishes the outbox to the configured broker and answers commands.

    ``on_command(name, request)`` answers ``poll`` and ``identify`` (on the command
    thread); ``on_connect()`` runs on the worker after each birth, before the drain.

    ``session`` counts process starts (persisted by the service); birth, goodbye and
    will carry it. ``window`` bounds outbox rows in flight; ``will_delay_s`` overrides the
    configured MQTT 5 will delay (0: immediate); ``stop_timeout_s`` bounds the wait for
    the goodbye PUBACK.
    """

    def __init__(
        self,
        config: AgentConfig,
        outbox: Outbox,
        *,
        session: int,
        version: str,
        started_at: datetime,
        on_command: CommandHandler | None = None,
        on_connect: Callable[[], None] | None = None,
        window: int = 16,
        will_delay_s: int | None = None,
        stop_timeout_s: float = 5.0,
    ) -> None:
        self._mqtt = config.mqtt
        self.topics = Topics(config.mqtt.topic_prefix, config.site)
        self._outbox = outbox
        self._session = session
        self._status = {
            state: AgentStatus(
                state=state, session=session, version=version, started_at=started_at
            ).to_bytes()
            for state in AgentState
        }
        self._on_connect = on_connect
        self._window = max(1, window)
        self._will_delay_s = config.mqtt.will_delay_s if will_delay_s is None else will_delay_s
        self._stop_timeout_s = stop_timeout_s
        self._events: queue.SimpleQueue[LinkEvent] = queue.SimpleQueue()
        self._desk = CommandDesk(self.topics, on_command)
        self._stopping = threading.Event()
        self._clean_stop = True
        self._woken = threading.Event()
        self._is_connected = threading.Event()
        self._thread: threading.Thread | None = None
        self._ssl = ssl_context(self._mqtt)  # ConfigError here: start-up may fail, later not
        self._v311 = self._mqtt.protocol == "3.1.1"
        self._link: Link | None = None
        self._gen = 0
        #: Outbox rows in flight when a connection broke on a message (module docstring).
        self._suspects: set[int] = set()
        self._counts = dict.fromkeys(
            ("connects", "connect_failures", "published", "publish_errors"), 0
        )

    # -- public API ---------------------------------------------------------------------

    def start(self) -> None:
        """Start connecting in the background; returns at once."""
        if self._thread is not None:
            raise RuntimeError("MqttPublisher already started")
        self._desk.start()
        self._thread = threading.Thread(target=self._run, name="kktmon-mqtt", daemon=True)
        self._thread.start()

    def stop(self, clean: bool = True) -> None:
        """Stop; ``clean`` publishes the retained ``offline`` first (bounded wait) and
        disconnects so no will fires; otherwise the socket is dropped and the will fires."""
        if self._thread is None or self._stopping.is_set():
            return
        self._clean_stop = clean
        self._stopping.set()
        self._events.put(LinkEvent("stop", 0))
        self._thread.join(self._stop_timeout_s + self._mqtt.connect_timeout_s + 2.0)
        if self._thread.is_alive():
            log.error("MQTT worker did not stop in time; leaving it to exit with the process")
        self._desk.stop()

    def wake(self) -> None:
        """New rows are in the outbox: publish them now rather than at the next idle poll."""
        if not self._woken.is_set():
            self._woken.set()
            self._events.put(LinkEvent("wake", 0))

    @property
    def connected(self) -> bool:
        return self._is_connected.is_set()

    def stats(self) -> PublisherStats:
        """Counters since construction (``model_dump()`` for a plain dict)."""
        link = self._link
        return PublisherStats(
            connected=self.connected,
            protocol=None if link is None else ("5" if link.v5 else "3.1.1"),
            in_flight=0 if link is None else len(link.inflight),
            commands=self._desk.answered,
            reconnects=max(0, self._counts["connects"] - 1),
            **self._counts,
        )

    # -- the worker ---------------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            link: Link | None = None
            try:
                link = self._connect()
                if link is not None:
                    failures = 0
                    self._serve(link)
            except Exception:  # the worker must outlive any surprise, for weeks
                log.exception("MQTT worker error; reconnecting")
            finally:
                if link is not None:
                    self._teardown(link)
            if not self._stopping.is_set():
                failures += 1
                self._stopping.wait(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        """Capped exponential, jittered in [half, full] so a fleet does not reconnect at once."""
        low, high = self._mqtt.reconnect_min_s, self._mqtt.reconnect_max_s
        ceiling = min(high, low * 2.0 ** min(failures - 1, 30))
        return random.uniform(ceiling / 2, ceiling)

    def _connect(self) -> Link | None:
        v5 = not self._v311
        self._gen += 1
        link = Link(
            self._mqtt,
            self._gen,
            v5,
            self._events.put,
            ssl=self._ssl,
            status_topic=self.topics.status(),
            will=self._status[AgentState.LOST],
            will_delay_s=self._will_delay_s,
            max_inflight=self._window + _RESERVE,
        )
        accepted = False
        try:
            accepted = link.open() and self._await_connack(link)
        finally:
            if not accepted:
                self._counts["connect_failures"] += 1
                self._teardown(link)
        return link if accepted else None

    def _await_connack(self, link: Link) -> bool:
        deadline = time.monotonic() + self._mqtt.connect_timeout_s
        while not self._stopping.is_set():
            event = self._next(deadline - time.monotonic())
            if event is None:
                log.warning("MQTT %s: no CONNACK in time", link.where)
                return False
            if event.gen != link.gen or event.kind not in ("connack", "gone"):
                continue
            if event.kind == "connack" and not _failed(event.reason):
                link.accepted(event.properties)
                return True
            self._note_refusal(link, event)
            return False
        return False

    def _note_refusal(self, link: Link, event: LinkEvent) -> None:
        early = event.kind == "gone"  # closed before any CONNACK: an old broker may do that
        log.warning(
            "MQTT %s refused the connection: %s",
            link.where,
            "closed before CONNACK" if early else event.reason,
        )
        refused = early or (event.reason is not None and event.reason.value in _PROTOCOL_REFUSED)
        if self._mqtt.protocol == "auto" and refused:
            self._v311 = link.v5  # try the other protocol version next time
            log.info("MQTT %s: trying protocol %s next", link.where, "3.1.1" if link.v5 else "5")

    def _serve(self, link: Link) -> None:
        self._counts["connects"] += 1
        self._outbox.mark_replayed()
        link.publish_status(self._status[AgentState.ONLINE])
        link.subscribe([self.topics.commands(), self.topics.status()])
        self._link = link
        self._desk.attach(link)
        self._is_connected.set()
        log.info("MQTT connected to %s (protocol %s)", link.where, "5" if link.v5 else "3.1.1")
        if self._on_connect is not None:
            try:
                self._on_connect()
            except Exception:
                log.exception("on_connect callback failed; publishing the outbox anyway")
        while not self._stopping.is_set():
            self._fill(link)
            event = self._next(IDLE_POLL_S)
            if event is None or event.gen != link.gen:
                continue
            if event.kind == "gone":
                log.warning("MQTT connection to %s lost: %s", link.where, event.reason)
                self._lost(link, event.reason)
                return
            self._handle(link, event)
        self._goodbye(link)

    def _lost(self, link: Link, reason: ReasonCode | None) -> None:
        """The connection broke: if on a message, narrow down which one (module docstring)."""
        if reason is None or reason.value not in _MESSAGE_FAULTS or not link.inflight:
            return
        ids = sorted(entry.id for entry in link.inflight.values())
        if len(ids) == 1 and ids[0] in self._suspects:
            detail = f"the connection broke on it twice, then with it alone in flight ({reason})"
            self._outbox.set_aside(ids[0], SetAside.DISCONNECT, detail)
            self._through(ids[0])
            return
        self._suspects = set(ids)
        log.warning(
            "MQTT: the connection broke on a message (%s); sending one at a time until "
            "outbox rows %s are through",
            reason,
            ", ".join(map(str, ids)),
        )

    def _through(self, entry_id: int) -> None:
        """Row ``entry_id`` is acked or set aside; one at a time, so are the suspects before it."""
        if self._suspects:
            self._suspects = {suspect for suspect in self._suspects if suspect > entry_id}
            if not self._suspects:
                log.info("MQTT: the suspect rows are through; back to the full window")

    def _handle(self, link: Link, event: LinkEvent) -> None:
        if event.kind == "puback":
            self._acked(link, event.mid, event.reason)
        elif event.kind == "command":
            self._desk.submit(event)
        elif event.kind == "status" and not self._stopping.is_set():
            self._check_status(link, event.payload)

    def _next(self, timeout: float) -> LinkEvent | None:
        try:
            event = self._events.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if event.kind == "wake":
            self._woken.clear()
        return event

    def _fill(self, link: Link) -> None:
        """Publish pending rows until the window is full (one at a time while in doubt)."""
        while (room := self._window_for(link) - len(link.inflight)) > 0:
            entries = self._outbox.pending(limit=room, after=link.cursor)
            if not entries:
                return
            for entry in entries:
                link.cursor = entry.id
                self._send(link, entry)

    def _window_for(self, link: Link) -> int:
        if self._suspects:
            return 1
        return min(self._window, max(1, link.receive_max - _RESERVE))

    def _send(self, link: Link, entry: Entry) -> None:
        payload = _wire_payload(entry)
        limit = self._outbox.limits.max_payload_bytes
        if len(payload) > limit:  # queued before the check, or under a bigger limit
            self._outbox.set_aside(entry.id, SetAside.OVERSIZE, f"over max_payload_bytes {limit}")
            self._through(entry.id)
            return
        try:
            mid = link.publish(entry.topic, payload, retain=entry.kind is not EntryKind.EVENT)
        except ValueError as exc:  # paho refuses wildcard topics
            self._counts["publish_errors"] += 1
            log.error("outbox entry %d cannot be published (kept): %s", entry.id, exc)
            return
        link.inflight[mid] = entry

    def _acked(self, link: Link, mid: int, reason: ReasonCode | None) -> None:
        entry = link.inflight.pop(mid, None)
        if entry is None:
            return
        if _failed(reason):
            self._counts["publish_errors"] += 1
            if reason is None or reason.value in _RETRY_LATER:
                log.warning("broker refused %s (entry %d, kept): %s", entry.topic, entry.id, reason)
                return
            detail = f"the broker answered PUBACK 0x{reason.value:02X} {reason}"
            self._outbox.set_aside(entry.id, SetAside.REFUSED, detail)
        else:
            self._outbox.ack(entry.id)
            self._counts["published"] += 1
        self._through(entry.id)

    def _check_status(self, link: Link, payload: bytes) -> None:
        try:
            seen = AgentStatus.model_validate_json(payload)
        except ValueError:
            seen = None
        if seen is not None and seen.state is AgentState.ONLINE:
            if seen.session != self._session:
                log.warning("another agent (session %d) is online for this site", seen.session)
            return
        what = "an empty payload" if seen is None else f"{seen.state} of session {seen.session}"
        log.info("status topic holds %s while we are online; republishing the birth", what)
        link.publish_status(self._status[AgentState.ONLINE])

    def _goodbye(self, link: Link) -> None:
        if not self._clean_stop:
            link.drop()  # no DISCONNECT: the broker publishes the will
            return
        mid = link.publish_status(self._status[AgentState.OFFLINE])
        deadline = time.monotonic() + self._stop_timeout_s
        while (event := self._next(deadline - time.monotonic())) is not None:
            if event.gen != link.gen:
                continue
            if event.kind == "gone":
                break
            if event.kind == "puback":
                self._acked(link, event.mid, event.reason)
                if event.mid == mid:
                    break
        else:
            log.warning("MQTT: no PUBACK for the offline status in time")
        link.disconnect()

    def _teardown(self, link: Link) -> None:
        if self._link is link:
            self._is_connected.clear()
            self._desk.attach(None)
            self._link = None
        link.close()


def _failed(reason: ReasonCode | None) -> bool:
    return reason is None or reason.is_failure


def _wire_payload(entry: Entry) -> bytes:
    """The payload as sent: events queued before this connection say ``replayed``."""
    if entry.kind is not EntryKind.EVENT or not entry.replayed:
        return entry.payload
    try:
        data: Any = json.loads(entry.payload)
    except ValueError:
        return entry.payload
    if not isinstance(data, dict):
        return entry.payload
    data["replayed"] = True
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


__all__ = ["CommandHandler", "MqttPublisher", "PublisherStats", "Topics"]
