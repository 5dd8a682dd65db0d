"""The register's side of the ATOL FE link ("АТОЛ 3.0"): packets and the task buffer.

Framing is the codec's (:mod:`kktmon.protocol.atol`); this module is the register's
behaviour (atol.md section 3). Every host packet gets a reply with the same ID:

* ``C1 flags TID body`` queues a task: ``A3``/``A4`` + answer when it finished at once,
  ``A2`` (running) or ``A1`` (queued) otherwise; the result then comes on its own as an
  ``F0`` packet ``A6``/``A7 TID answer``. ``B2`` for a TID still in the buffer, ``B1``
  when the buffer is full, ``B4 00``/``B4 01`` for bad flags or TID.
* Which path a fast task takes is the emulator's ``task_results``
  (:meth:`AtolEmulator.reports_async`): real firmware often answers even a quick read
  with ``A2`` and then its ``F0`` result, and some hosts (atol4j) read results only
  there. A task on the asynchronous path that finished at once gets ``A2`` all the
  same, its ``F0`` result right behind.
* ``C3 TID``: the task's status (the result again once finished), ``B3`` if unknown.
* ``C2 TID`` frees a finished task (reply ``A3``); ``C4`` empties the buffer (``A3``, E1).
* A packet with a bad CRC is answered with an empty packet of its ID, which asks the
  host to send it again [L, atol4j]; an empty host packet repeats our last reply.
  A packet cut off is dropped: the host resends it after its timeout.

Finished tasks stay in the buffer until ``C2`` or ``C4``, so a host that lost a reply
finds its result with ``C3`` (or ``B2`` on re-adding). A task that fails without the
IgnoreError flag stops those queued behind it (``A5``, quirk Q5); the states live in
:mod:`kktmon.simulators.atol.task_buffer`.

Faults: ``silent`` no reply at all; ``nak_frames`` an empty reply (resend request) to
good packets; ``slow_answer_s`` the task stays ``A2`` that long, then reports by ``F0``;
``busy_printing`` it first waits ``A1`` behind the printer; ``cut_answers`` /
``wrong_lrc_answers`` spoil packets carrying an answer (``C3`` or ``B2`` on the resend
gets it whole); ``garbage_before_stx`` printable noise before every packet;
``stray_ff`` an FFh after the reply to ``C2`` (only when switched on: ATOL has no such
quirk); ``disconnect_after`` the TCP connection drops after the n-th ``C2``;
``pending_answer`` a finished task 57h a POS program never acknowledged: its ``F0``
result (E3) arrives before the reply to the host's first packet and its TID is taken.
With ``ofd.via_host`` (quirk Q3) every result is followed by an ``F0`` packet for a
task this connection never queued, as the register's OFD relay traffic would be.

Time: slow and busy tasks run against the monotonic clock; while one is queued or
running :attr:`FeDeviceLink.mid_frame` stays true, so the runner calls :meth:`timeout`
every ``byte_timeout_s`` and the ``F0`` result leaves as soon as the task is done.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from kktmon.protocol.atol.frame import (
    ASYNC_ID,
    IGNORE_ERROR,
    MAX_ID,
    NEED_RESULT,
    TASK_ABORT,
    TASK_ACK,
    TASK_ADD,
    TASK_REQ,
    WAIT_ASYNC,
    HostTask,
    Packet,
    PacketReader,
    TaskStatus,
    crc8,
    decode_packet,
    encode_packet,
    encode_task_reply,
    escape,
    parse_host_task,
)
from kktmon.protocol.errors import ProtocolError
from kktmon.simulators.atol.answers import Answer
from kktmon.simulators.atol.task_buffer import Phase, Task, TaskBuffer
from kktmon.simulators.emulator import DeviceLink
from kktmon.simulators.server import Output, Transport, Write

if TYPE_CHECKING:
    from kktmon.simulators.atol.emulator import AtolEmulator

BYTE_TIMEOUT_S = 0.05  # gap that ends a started packet; also the tick of running tasks
STALE_TID = 0x57  # pending_answer: the task of E3, left unacknowledged by a POS program
STALE_ANSWER = b"\x55\x00\x00"
FOREIGN_TID_OFFSET = 0x70  # OFD relay packets use a TID far from the host's current one
_FLAGS = NEED_RESULT | IGNORE_ERROR | WAIT_ASYNC


class FeDeviceLink(DeviceLink["AtolEmulator"]):
    """Device side of one FE connection, with the scenario's faults."""

    byte_timeout_s = BYTE_TIMEOUT_S

    def __init__(self, emulator: AtolEmulator, transport: Transport) -> None:
        super().__init__(emulator, transport)
        self._reader = PacketReader()
        self._tasks = TaskBuffer()
        self._stale_due = False  # pending_answer: its F0 packet still to be sent
        self._acked = 0  # this connection's tasks freed by C2 (disconnect_after)
        self._last_reply: tuple[int, bytes] | None = None

    @property
    def mid_frame(self) -> bool:
        return self._reader.started or self._tasks.busy

    def hold_stale_answer(self) -> None:
        stale = Task(STALE_TID, NEED_RESULT, b"", time.monotonic(), Phase.DONE, stale=True)
        stale.answer = Answer(STALE_ANSWER)
        self._tasks.add(stale)
        self._stale_due = True

    def receive(self, data: bytes) -> list[Output]:
        outputs = self._advance()
        while data:
            raw, data = self._reader.feed(data)
            if raw is None:
                break
            outputs += self._on_packet(raw)
        return outputs

    def timeout(self) -> list[Output]:
        """Quiet line: drop a packet cut off by the host; run the tasks that are due."""
        if self._reader.started:
            self._reader.reset()
        return [] if self.faults.silent else self._advance()

    # ------------------------------------------------------------------ packets

    def _on_packet(self, raw: bytes) -> list[Output]:
        try:
            packet = decode_packet(raw)
        except ProtocolError:
            return [self._send(raw[3], b"")]  # garbled: ask for it again
        if not packet.data:
            return self._repeat_last(packet.id)
        self.emulator.buffer_commands.append(packet.data[0])
        try:
            task = parse_host_task(packet.data)
        except ProtocolError:
            self.emulator.note_forbidden(packet.data)  # C5 and anything unknown
            return [self._send(packet.id, encode_task_reply(TaskStatus.ILLEGAL_VALUE, b"\x00"))]
        if task.command == TASK_ADD:
            self.emulator.note(task.body)
        if self.faults.take("nak_frames"):
            return [self._send(packet.id, b"")]
        return self._stale_packet() + self._handle(packet, task)

    def _handle(self, packet: Packet, task: HostTask) -> list[Output]:
        if task.command == TASK_ADD:
            return self._add(packet.id, task)
        if task.command == TASK_REQ:
            return self._request(packet.id, task.tid)
        if task.command == TASK_ACK:
            return self._ack(packet.id, task.tid)
        if task.command == TASK_ABORT:
            self._tasks.clear()
            self._stale_due = False
            return [self._send(packet.id, encode_task_reply(TaskStatus.RESULT))]
        return []  # parse_host_task knows no other command

    def _add(self, packet_id: int, host: HostTask) -> list[Output]:
        flags, tid = host.flags or 0, host.tid or 0
        if flags & ~_FLAGS or not 0 <= tid <= MAX_ID:
            index = b"\x00" if flags & ~_FLAGS else b"\x01"
            return [self._send(packet_id, encode_task_reply(TaskStatus.ILLEGAL_VALUE, index))]
        if tid in self._tasks:
            return [self._send(packet_id, encode_task_reply(TaskStatus.TID_EXISTS))]
        if self._tasks.full:
            return [self._send(packet_id, encode_task_reply(TaskStatus.OVERFLOW))]
        deferred = self.emulator.reports_async(host.body)
        task = Task(tid, flags, host.body, time.monotonic(), deferred=deferred)
        self._tasks.add(task)
        outputs = self._advance(current=task)
        reply = task.added_reply()
        outputs.append(self._send(packet_id, reply, answer=task.carries_answer and not deferred))
        if task.reports_at_once:
            outputs.append(self._send(ASYNC_ID, task.async_result(), answer=True))
        if task.finished:
            outputs += self._relay_packet(tid)
            if not flags & NEED_RESULT:
                self._tasks.remove(tid)  # nobody will ask for it
        return outputs

    def _request(self, packet_id: int, tid: int | None) -> list[Output]:
        task = self._tasks.get(tid)
        if task is None:
            return [self._send(packet_id, encode_task_reply(TaskStatus.TID_NOT_FOUND))]
        return [self._send(packet_id, task.reply(), answer=task.carries_answer)]

    def _ack(self, packet_id: int, tid: int | None) -> list[Output]:
        task = self._tasks.get(tid)
        if task is None:
            return [self._send(packet_id, encode_task_reply(TaskStatus.TID_NOT_FOUND))]
        if not task.finished:
            return [self._send(packet_id, task.reply())]  # nothing to acknowledge yet
        self._tasks.remove(task.tid)
        self._acked += not task.stale
        done = self._send(packet_id, encode_task_reply(TaskStatus.RESULT))
        return [done, *self.stray(), *self.hang_up_after(self._acked)]

    def _repeat_last(self, packet_id: int) -> list[Output]:
        """An empty host packet asks for our reply to that ID again."""
        if self._last_reply is None or self._last_reply[0] != packet_id:
            return []
        return [Write(self._last_reply[1])]

    # ------------------------------------------------------------------ tasks

    def _advance(self, current: Task | None = None) -> list[Output]:
        """Run the buffer up to now; finished tasks other than ``current`` report via F0."""
        outputs: list[Output] = []
        for task in self._tasks.advance(time.monotonic(), self.faults, self._run):
            if task is not current and task.flags & NEED_RESULT:
                outputs.append(self._send(ASYNC_ID, task.async_result(), answer=True))
                outputs += self._relay_packet(task.tid)
        return outputs

    def _run(self, body: bytes) -> Answer:
        return self.emulator.execute(body, self.transport)

    def _stale_packet(self) -> list[Output]:
        """pending_answer: the stale F0 result arrives before our first reply (E3)."""
        if not self._stale_due:
            return []
        self._stale_due = False
        stale = self._tasks.get(STALE_TID)
        return [self._send(ASYNC_ID, stale.async_result(), answer=True)] if stale else []

    def _relay_packet(self, tid: int) -> list[Output]:
        """Quirk Q3: with the OFD channel through the host, the register's own traffic
        shows up as F0 packets for a task this connection never queued."""
        if not self.emulator.state.ofd.via_host:
            return []
        foreign = (tid + FOREIGN_TID_OFFSET) % (MAX_ID + 1)
        data = encode_task_reply(TaskStatus.ASYNC_RESULT, b"\x55\x00", foreign)
        return [self._send(ASYNC_ID, data)]

    # ------------------------------------------------------------------ faults on the way out

    def _send(self, packet_id: int, data: bytes, answer: bool = False) -> Write:
        """One packet; ``answer``: it carries a command answer, which the faults may spoil."""
        raw = encode_packet(packet_id, data)
        if packet_id != ASYNC_ID:
            self._last_reply = (packet_id, raw)
        if answer:
            raw = self.spoil(raw, lambda _: _bad_crc(packet_id, data), shortest=5)
        return Write(self.emulator.noise() + raw)


def _bad_crc(packet_id: int, data: bytes) -> bytes:
    """The packet with a CRC that neither the strict nor the tolerant check accepts."""
    good = crc8(bytes([packet_id]) + data)
    tolerated = crc8(bytes([packet_id]) + escape(data))
    bad = good ^ 0x55 if good ^ 0x55 != tolerated else good ^ 0xAA
    head = encode_packet(packet_id, data)[: 4 + len(escape(data))]
    return head + escape(bytes([bad]))
