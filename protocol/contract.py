"""Pydantic models of the MQTT payloads (DESIGN.md section 4, contract version 1).

The agent publishes these and the ticketing side validates what it receives with the
same classes, so this module imports nothing but pydantic and the health model. Every
payload is UTF-8 JSON; datetimes are timezone-aware ISO 8601. Unknown keys are errors
(``extra="forbid"``): a change of shape is a new contract version, not a silent drift.

* :class:`AgentStatus` on ``<root>/<site>/agent/status`` (retained): ``online`` at every
  connect, ``offline`` on a clean stop, ``lost`` as the last will. ``session`` counts the
  agent's process starts, so a will left by an older session is recognisable: a
  consumer keeps the highest session it has seen and ignores statuses of lower ones.
* :class:`AgentHealth` on ``<root>/<site>/agent/health`` (retained).
* :class:`Event` on ``<root>/<site>/kkt/<kkt>/event``: ``id`` deduplicates, ``seq``
  orders per device, ``replayed`` marks events queued before the connection that
  delivered them (they may be late, not wrong).
* :class:`CommandRequest` on ``<root>/<site>/cmd/<name>`` and :class:`CommandResponse`
  on ``<root>/<site>/cmd/<name>/response`` (or the MQTT 5 response topic of the request).
"""

from __future__ import annotations

from enum import StrEnum
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue

from kktmon.protocol.health import Problem, Severity

CONTRACT_VERSION = 1

#: Commands an agent answers; every other name under ``cmd/`` is refused with a reason.
COMMANDS = ("poll", "identify")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode("utf-8")


class AgentState(StrEnum):
    ONLINE = "online"
    OFFLINE = "offline"
    LOST = "lost"


class AgentStatus(_Payload):
    """Birth, clean goodbye and last will of one agent process."""

    state: AgentState
    session: int = Field(ge=0)
    version: str
    started_at: AwareDatetime

    def supersedes(self, other: AgentStatus) -> bool:
        """Whether this status is at least as new as ``other`` (same or later session)."""
        return self.session >= other.session


class PublisherStats(_Payload):
    """The MQTT side's counters (``MqttPublisher.stats()``), part of :class:`AgentHealth`."""

    connected: bool
    #: "5" or "3.1.1" while connected, else None.
    protocol: str | None = None
    connects: int = Field(0, ge=0)
    reconnects: int = Field(0, ge=0)
    connect_failures: int = Field(0, ge=0)
    #: Outbox rows the broker acknowledged.
    published: int = Field(0, ge=0)
    #: Rows the MQTT client refused or the broker answered with a failure PUBACK (kept for later).
    publish_errors: int = Field(0, ge=0)
    in_flight: int = Field(0, ge=0)
    commands: int = Field(0, ge=0)


class AgentHealth(_Payload):
    """The agent's own figures, so the centre sees a struggling agent before a lost one."""

    at: AwareDatetime
    session: int | None = Field(None, ge=0)
    uptime_s: float = Field(ge=0)
    rss_bytes: int | None = None
    cpu_s: float | None = None
    polls: int = Field(0, ge=0)
    failed_polls: int = Field(0, ge=0)
    #: Median poll duration per register (configured name or URL).
    poll_median_ms: dict[str, float] = Field(default_factory=dict)
    #: Answer fields read as null because they did not validate, per register, since start
    #: (DESIGN.md section 3: one odd field never loses a poll, but it is counted).
    invalid_fields: dict[str, int] = Field(default_factory=dict)
    outbox_depth: int = Field(ge=0)
    outbox_bytes: int = Field(0, ge=0)
    outbox_oldest_age_s: float | None = None
    #: Entries the outbox dropped over its limits, by kind (only state snapshots drop).
    outbox_drops: dict[str, int] = Field(default_factory=dict)
    publisher: PublisherStats | None = None


class EventKind(StrEnum):
    RAISED = "raised"
    CLEARED = "cleared"
    CHANGED = "changed"


class Event(_Payload):
    """One problem transition of one register."""

    id: UUID = Field(default_factory=uuid4)
    seq: int = Field(ge=0)
    kind: EventKind
    problem: Problem
    at: AwareDatetime
    #: The severity before a ``changed`` event; None for raised and cleared.
    previous_severity: Severity | None = None
    replayed: bool = False


class CommandRequest(_Payload):
    """A read-only request from the centre; ``transaction`` is echoed in the response."""

    transaction: str = Field(min_length=1, max_length=128)
    #: Which register (``<vendor>-<serial>`` or configured name); None means all.
    device: str | None = Field(None, min_length=1, max_length=128)


class CommandResponse(_Payload):
    """The answer to one request; ``ok`` false with ``detail`` giving the reason."""

    #: None only when the request was too malformed to carry one.
    transaction: str | None
    ok: bool
    detail: str = ""
    result: JsonValue = None


def refusal(transaction: str | None, detail: str) -> CommandResponse:
    """A negative response naming the reason."""
    return CommandResponse(transaction=transaction, ok=False, detail=detail)
