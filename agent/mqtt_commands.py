"""Read-only commands from the centre: ``<root>/<site>/cmd/<name>`` -> ``.../response``.

:class:`CommandDesk` runs in its own thread so a slow register poll never holds up the
outbox. ``poll`` and ``identify`` go to the service's handler; any other name, a payload
that is not JSON or not a valid :class:`CommandRequest`, or a handler that raises gets
a refusal ``{"transaction", "ok": false, "detail": reason}``.

MQTT 5 extras: a request whose message expiry passed while it waited here is dropped
(the requester gave up); the response carries a message expiry, goes to the request's
response topic when it names one, and echoes its correlation data. Retained requests
are ignored: they are replays of old commands, not someone asking now.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from paho.mqtt.packettypes import PacketTypes
from pydantic import ValidationError

from kktmon.agent.mqtt_link import properties
from kktmon.protocol.contract import COMMANDS, CommandRequest, CommandResponse, refusal
from kktmon.protocol.topics import Topics

if TYPE_CHECKING:
    from kktmon.agent.mqtt_link import Link, LinkEvent

log = logging.getLogger(__name__)

CommandHandler = Callable[[str, CommandRequest], CommandResponse]

#: How long a response stays deliverable (MQTT 5 message expiry).
RESPONSE_EXPIRY_S = 300
_JOIN_S = 5.0


class CommandDesk:
    """Answers command messages one at a time on its own thread."""

    def __init__(self, topics: Topics, handler: CommandHandler | None) -> None:
        self._topics = topics
        self._handler = handler
        self._jobs: queue.SimpleQueue[LinkEvent | None] = queue.SimpleQueue()
        self._link: Link | None = None
        self._thread: threading.Thread | None = None
        self.answered = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kktmon-mqtt-cmd", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._jobs.put(None)
        self._thread.join(_JOIN_S)
        if self._thread.is_alive():
            log.error("command thread is still busy with a handler; not waiting longer")
        self._thread = None

    def attach(self, link: Link | None) -> None:
        """The connection responses go out on (None while disconnected)."""
        self._link = link

    def submit(self, event: LinkEvent) -> None:
        self._jobs.put(event)

    def _run(self) -> None:
        while (event := self._jobs.get()) is not None:
            try:
                self._serve(event)
            except Exception:  # one bad request must not end command handling
                log.exception("command on %s failed", event.topic)

    def _serve(self, event: LinkEvent) -> None:
        if event.retain:
            log.info("ignoring a retained command on %s", event.topic)
            return
        expiry = getattr(event.properties, "MessageExpiryInterval", None)
        if isinstance(expiry, int) and time.monotonic() > event.received_at + expiry:
            log.info("ignoring an expired command on %s", event.topic)
            return
        parsed = self._topics.parse(event.topic)
        name = parsed.command if parsed is not None and parsed.command else "?"
        response = self.respond(name, event.payload)
        self._send(event, response)

    def respond(self, name: str, payload: bytes) -> CommandResponse:
        """The answer to one request payload on ``cmd/<name>``."""
        try:
            data = json.loads(payload)
        except ValueError as exc:
            return refusal(None, f"malformed request: not JSON ({exc})")
        transaction = data.get("transaction") if isinstance(data, dict) else None
        if not isinstance(transaction, str) or not transaction:
            transaction = None
        try:
            request = CommandRequest.model_validate(data)
        except ValidationError as exc:
            return refusal(transaction, f"malformed request: {_describe(exc)}")
        if name not in COMMANDS:
            known = ", ".join(COMMANDS)
            return refusal(request.transaction, f"unknown command {name!r}; known: {known}")
        if self._handler is None:
            return refusal(request.transaction, "commands are not enabled on this agent")
        try:
            response = self._handler(name, request)
        except Exception as exc:
            log.exception("command %s (transaction %s) failed", name, request.transaction)
            return refusal(request.transaction, f"{name} failed: {type(exc).__name__}: {exc}")
        return response.model_copy(update={"transaction": request.transaction})

    def _send(self, event: LinkEvent, response: CommandResponse) -> None:
        link = self._link
        if link is None:
            log.warning("no connection for the response to %s; dropped", event.topic)
            return
        topic = f"{event.topic}/response"
        props = None
        if link.v5:
            props = properties(PacketTypes.PUBLISH)
            props.MessageExpiryInterval = RESPONSE_EXPIRY_S
            asked = getattr(event.properties, "ResponseTopic", None)
            if isinstance(asked, str) and asked and not set(asked) & set("+#"):
                topic = asked
            correlation = getattr(event.properties, "CorrelationData", None)
            if isinstance(correlation, bytes):
                props.CorrelationData = correlation
        link.publish(topic, response.to_bytes(), retain=False, properties=props)
        self.answered += 1


def _describe(exc: ValidationError) -> str:
    """``key: message`` clauses without the offending input values."""
    clauses = []
    for error in exc.errors(include_url=False, include_input=False):
        key = ".".join(str(part) for part in error["loc"])
        clauses.append(f"{key}: {error['msg']}" if key else error["msg"])
    return "; ".join(clauses)
