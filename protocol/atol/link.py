"""The host's half of ATOL's FE transport (atol.md 3.4), sans-I/O.

:class:`FeLink` runs one command through the task buffer of :mod:`.frame`; the
flow and its timeouts are described there.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from kktmon.protocol.atol.commands import VENDOR, Request
from kktmon.protocol.atol.frame import (
    ASYNC_ID,
    FINISHED,
    MAX_ID,
    RUNNING,
    STATUS_MEANINGS,
    PacketReader,
    TaskReply,
    TaskStatus,
    decode_packet,
    encode_packet,
    parse_task_reply,
    task_abort,
    task_ack,
    task_add,
    task_req,
)
from kktmon.protocol.errors import (
    ChecksumError,
    ConfigError,
    DeviceError,
    KktmonError,
    LinkTimeoutError,
    ProtocolError,
)
from kktmon.protocol.link import Action, Done, Purge, Send, Wait, WaitKind

# ------------------------------------------------------------------ the host's link


class IdSequence:
    """Packet ids or task ids of one connection: 00..DF, wrapping (quirk Q9)."""

    def __init__(self, first: int = 0) -> None:
        if not 0 <= first <= MAX_ID:
            raise ConfigError(f"ATOL ids run 0..{MAX_ID:#x}, got {first}")
        self.next = first

    def take(self) -> int:
        value = self.next
        self.next = 0 if value >= MAX_ID else value + 1
        return value


@dataclass
class FeSession:
    """State of one open connection shared by its :class:`FeLink` exchanges.

    ``abort_pending``: send ``C4`` before the first task (section 3.4 step 1). Set it only
    when this agent owns the link: Abort empties tasks anybody queued on it.
    """

    packet_ids: IdSequence = field(default_factory=IdSequence)
    task_ids: IdSequence = field(default_factory=IdSequence)
    abort_pending: bool = False


@dataclass(frozen=True)
class FeLimits:
    resends: int = 3  # the same packet again after silence or a garbled reply
    status_polls: int = 20  # C3 while the task runs, one per expired Wait(ANSWER)
    readds: int = 2  # C1 again after B3, or under the next TID after B2


class _Step(enum.Enum):
    ABORT = "abort"  # C4 sent
    ADD = "add"  # C1 sent
    POLL = "poll"  # C3 sent
    RUNNING = "running"  # A1/A2/A8 seen: waiting for F0 A6 TID
    ACK = "ack"  # C2 sent after the result
    DONE = "done"


class FeLink:
    """One command over the FE transport, host side (see the module docstring)."""

    def __init__(
        self, request: Request, session: FeSession | None = None, limits: FeLimits | None = None
    ) -> None:
        self.request = Request(request.code, request.data, request.password)  # re-gated
        self.session = session or FeSession()
        self.limits = limits or FeLimits()
        self.tid = self.session.task_ids.take()
        self.retries = 0
        self.polls = 0
        self.ignored_packets = 0  # valid packets for other ids / TIDs
        self.foreign_async = 0  # of which F0 packets for TIDs that are not ours
        self.status: TaskStatus | None = None  # A3/A4/A6/A7 once the result is in
        self.answer: bytes | None = None
        self._reader = PacketReader()
        self._step = _Step.ADD
        self._packet = b""
        self._packet_id = -1
        self._task_packet_ids: set[int] = set()  # C1/C3 ids: their replies concern our task
        self._resends = 0
        self._readds = 0
        self._adds_of_tid = 0
        self._result = b""
        self._failure: ProtocolError | None = None

    @property
    def done(self) -> bool:
        return self._step is _Step.DONE

    @property
    def noise_bytes(self) -> int:
        return self._reader.skipped

    def start(self) -> list[Action]:
        if self.session.abort_pending:
            self.session.abort_pending = False
            return [Purge(), *self._finish(self._send(_Step.ABORT, task_abort()))]
        return [Purge(), *self._finish(self._add())]

    def receive(self, data: bytes) -> list[Action]:
        """Feed bytes that arrived; returns what to do next."""
        actions: list[Action] = []
        while data and not self.done:
            raw, data = self._reader.feed(data)
            if raw is None:
                break
            actions.extend(self._on_packet(raw))
        return self._finish(actions)

    def timeout(self) -> list[Action]:
        """The last wait expired with nothing (or only part of a packet) received."""
        if self._reader.started:
            self._reader.reset()
            return self._finish(self._on_garbled("reply cut off mid-packet"))
        if self._step is _Step.ACK:
            return self._finish(self._complete())
        if self._step is _Step.RUNNING:
            return self._finish(self._poll())
        return self._finish(self._resend(LinkTimeoutError, "no reply"))

    # ------------------------------------------------------------------ internals

    def _finish(self, actions: list[Action]) -> list[Action]:
        if not self.done:
            kind = WaitKind.ANSWER if self._step is _Step.RUNNING else WaitKind.CONTROL
            actions.append(Wait(WaitKind.BYTE if self._reader.started else kind))
        return actions

    def _send(self, step: _Step, data: bytes) -> list[Action]:
        self._packet_id = self.session.packet_ids.take()
        self._packet = encode_packet(self._packet_id, data)
        self._step = step
        self._resends = 0
        if step in (_Step.ADD, _Step.POLL):
            self._task_packet_ids.add(self._packet_id)
        return [Send(self._packet)]

    def _add(self) -> list[Action]:
        self._adds_of_tid += 1
        return self._send(_Step.ADD, task_add(self.tid, self.request))

    def _poll(self) -> list[Action]:
        self.polls += 1
        if self.polls > self.limits.status_polls:
            raise LinkTimeoutError(f"task {self.tid:02X}h still running after {self.polls} polls")
        return self._send(_Step.POLL, task_req(self.tid))

    def _resend(self, error: type[KktmonError], reason: str) -> list[Action]:
        self._resends += 1
        self.retries += 1
        if self._resends > self.limits.resends:
            raise error(f"{reason} to packet {self._packet_id:02X}h after {self._resends} tries")
        if self._step is _Step.ADD:
            self._adds_of_tid += 1
        return [Send(self._packet)]

    def _readd(self, new_tid: bool) -> list[Action]:
        self._readds += 1
        self.retries += 1
        if self._readds > self.limits.readds:
            status = TaskStatus.TID_EXISTS if new_tid else TaskStatus.TID_NOT_FOUND
            raise _status_error(status)
        if new_tid:
            self.tid = self.session.task_ids.take()
            self._adds_of_tid = 0
        return self._add()

    def _on_garbled(self, reason: str) -> list[Action]:
        if self._step is _Step.ACK:
            return self._complete()
        if self._step is _Step.RUNNING:  # perhaps our F0 result: ask for it
            self.retries += 1
            return self._poll()
        return self._resend(ChecksumError, reason)

    def _on_packet(self, raw: bytes) -> list[Action]:
        try:
            packet = decode_packet(raw)
        except ProtocolError as exc:
            return self._on_garbled(str(exc))
        if packet.id == ASYNC_ID:
            return self._on_async(packet.data)
        if packet.id == self._packet_id:
            return self._on_reply(packet.data)
        if packet.data and packet.id in self._task_packet_ids and self._step in _TASK_STEPS:
            return self._on_task_reply(parse_task_reply(packet.data), current=False)
        self.ignored_packets += 1
        return []

    def _on_reply(self, data: bytes) -> list[Action]:
        """The register's reply to the packet we sent last."""
        if not data:  # the register asks for our packet again
            return self._resend(ChecksumError, "resend requested")
        if self._step is _Step.ACK:
            return self._complete()
        if self._step is _Step.ABORT:
            return self._add()  # whatever the reply: Abort is best effort
        return self._on_task_reply(parse_task_reply(data), current=True)

    def _on_async(self, data: bytes) -> list[Action]:
        try:
            reply = parse_task_reply(data)
        except ProtocolError:
            reply = None
        ours = reply is not None and reply.tid == self.tid and reply.status in FINISHED
        if reply is not None and ours and self._step in _TASK_STEPS:
            return self._finish_task(reply.status, reply.answer)
        self.ignored_packets += 1
        self.foreign_async += reply is None or reply.tid != self.tid
        return []

    def _on_task_reply(self, reply: TaskReply, current: bool) -> list[Action]:
        """A reply to one of our C1/C3 packets; ``current``: to the last one sent."""
        status = reply.status
        if status in FINISHED and reply.tid in (None, self.tid):
            return self._finish_task(status, reply.answer)
        if status in RUNNING:
            self._step = _Step.RUNNING
            return []
        if current and status not in FINISHED:
            return self._on_refusal(status)
        self.ignored_packets += 1  # a late duplicate, or another TID's result
        return []

    def _on_refusal(self, status: TaskStatus) -> list[Action]:
        """A5 or B1..B4 in reply to the packet we sent last."""
        if status is TaskStatus.STOPPED:
            return self._finish_task(status, b"", _status_error(status))
        if status is TaskStatus.TID_EXISTS and self._step is _Step.ADD:
            # A resent C1 already arrived: ask for its state; else the TID is taken.
            return self._poll() if self._adds_of_tid > 1 else self._readd(new_tid=True)
        if status is TaskStatus.TID_EXISTS and self._step is _Step.RUNNING:
            return []  # the second copy of a resent C1
        if status is TaskStatus.TID_NOT_FOUND and self._step is not _Step.ADD:
            return self._readd(new_tid=False)
        raise _status_error(status)

    def _finish_task(
        self, status: TaskStatus, answer: bytes, failure: ProtocolError | None = None
    ) -> list[Action]:
        """Free the TID with ``C2`` whatever the outcome (section 3.4 step 4)."""
        self.status = status
        self._result = answer
        self._failure = failure
        return self._send(_Step.ACK, task_ack(self.tid))

    def _complete(self) -> list[Action]:
        if self._failure is not None:
            raise self._failure
        self._step = _Step.DONE
        self.answer = self._result
        return [Done(self._result)]


_TASK_STEPS = frozenset({_Step.ADD, _Step.POLL, _Step.RUNNING})


def _status_error(status: TaskStatus) -> DeviceError:
    return DeviceError(VENDOR, "task buffer", int(status), STATUS_MEANINGS[status])
