"""ATOL "АТОЛ 3.0" FE transport: packets, the task buffer and the host's link machine.

Sans-I/O, reference atol.md section 3 (the factory default link layer; the legacy
STX/ETX one is :mod:`kktmon.protocol.atol.legacy`). A packet is::

    FE | LEN_LO | LEN_HI | ID | esc(DATA) | esc(CRC)

with ``LEN`` the unescaped DATA length (7 bits per header byte), ``FE`` -> ``FD EE`` and
``FD`` -> ``FD ED`` in DATA and CRC, and CRC-8 (poly 31h, init FFh, no reflection) over
``ID`` + the *unescaped* DATA. :func:`decode_packet` also accepts the CRC over the escaped
DATA that one implementation sends (section 3.1, discrepancy [L]).

Host packets drive a task buffer (``C1`` add, ``C2`` ack, ``C3`` request state, ``C4``
abort); the register answers with the same ID and a status byte (``A1``..``A8``,
``B1``..``B4``); a slow task's result arrives unsolicited with ID ``F0`` as ``A6 TID``.

:class:`FeLink` runs one command the way section 3.4 recommends for a poller and speaks
the vendor-neutral actions of :mod:`kktmon.protocol.link`::

    session = FeSession()                 # one per open connection: ids, Abort once
    link = FeLink(request_fn(FN_STATUS), session)
    actions = link.start()                # [Purge, Send(C1 packet), Wait(CONTROL)]
    ... run the actions; feed link.receive(data) or link.timeout() ...
    link.answer                           # the command answer, e.g. b"\\x55\\x00..."

Flow: ``C1 01 TID body`` -> ``A3``/``A4`` + answer (done), or ``A1``/``A2``/``A8``
(``Wait(ANSWER)`` for the ``F0 A6 TID`` packet, then poll with ``C3`` on timeout) ->
``C2 TID`` -> ``Done``. Silence or a garbled reply resends the same packet; ``B2`` on a
resent ``C1`` means the first copy arrived (poll with ``C3``), on a first ``C1`` that
the TID is taken (re-add under the next TID); ``B3`` on ``C3`` re-adds. ``F0`` packets
for other TIDs and replies to other packet ids are ignored (quirk Q3) and counted in
``foreign_async`` / ``ignored_packets``: a steady ``foreign_async`` means somebody else
(the vendor's OFD relay, quirk Q3) uses the same connection.

Timeouts, mapped by the driver: ``CONTROL`` is the wait for the reply to a packet
(0.5 s in the sources); ``ANSWER`` is the wait while the task runs, which the ``F0``
result ends as soon as it arrives and whose expiry only triggers a ``C3`` poll (the
reference polls after ~0.5 s; up to the command's T5 works, bounded by
``FeLimits.status_polls``); ``BYTE`` is the rest of a started packet. Probing for FE
(quirk Q1): ``FeLink(request_status_code(), session, FeLimits(resends=0))`` raises
:class:`LinkTimeoutError` after one silent ``CONTROL`` wait.

Register side (emulators): :func:`parse_host_task` reads a host packet's DATA,
:func:`encode_task_reply` builds a status reply, :func:`encode_packet` frames it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kktmon.protocol.atol.commands import Request
from kktmon.protocol.errors import (
    ChecksumError,
    FrameError,
    MalformedAnswerError,
)

START = 0xFE
ESC = 0xFD
ESC_START = 0xEE  # FD EE = FE
ESC_ESC = 0xED  # FD ED = FD
ASYNC_ID = 0xF0
MAX_ID = 0xDF  # ids and TIDs run 00..DF and wrap (quirk Q9)
MAX_LEN = 0x3FFF

# ------------------------------------------------------------------ CRC and escaping


def crc8(data: bytes, crc: int = 0xFF) -> int:
    """CRC-8 poly 31h, init FFh, MSB first, no final XOR ("123456789" -> F7h)."""
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc << 1 ^ 0x31 if crc & 0x80 else crc << 1) & 0xFF
    return crc


def escape(data: bytes) -> bytes:
    return data.replace(b"\xfd", b"\xfd\xed").replace(b"\xfe", b"\xfd\xee")


def unescape(wire: bytes) -> bytes:
    """Inverse of :func:`escape`; a raw FE or a bad/dangling FD is a :class:`FrameError`."""
    out = bytearray()
    pending = False
    for byte in wire:
        if pending:
            if byte not in (ESC_START, ESC_ESC):
                raise FrameError(f"FD {byte:02X} is not an escape")
            out.append(START if byte == ESC_START else ESC)
            pending = False
        elif byte == ESC:
            pending = True
        elif byte == START:
            raise FrameError("raw FE inside a packet")
        else:
            out.append(byte)
    if pending:
        raise FrameError("packet ends inside an escape")
    return bytes(out)


# ------------------------------------------------------------------ packets


@dataclass(frozen=True)
class Packet:
    id: int
    data: bytes


def encode_packet(packet_id: int, data: bytes) -> bytes:
    if not 0 <= packet_id <= 0xFF or packet_id in (START, ESC):
        raise FrameError(f"packet id {packet_id} cannot be sent")
    if len(data) > MAX_LEN:
        raise FrameError(f"packet DATA of {len(data)} bytes exceeds {MAX_LEN}")
    header = bytes([START, len(data) & 0x7F, len(data) >> 7, packet_id])
    return header + escape(data) + escape(bytes([crc8(bytes([packet_id]) + data)]))


def _header_ok(header: bytes | bytearray) -> bool:
    return header[0] < 0x80 and header[1] < 0x80 and header[2] not in (START, ESC)


def decode_packet(raw: bytes) -> Packet:
    """One complete packet; raises :class:`FrameError` or :class:`ChecksumError`."""
    if len(raw) < 5 or raw[0] != START or not _header_ok(raw[1:4]):
        raise FrameError(f"not an FE packet: {raw[:8].hex(' ')}")
    length, packet_id = raw[1] | raw[2] << 7, raw[3]
    body = unescape(raw[4:])
    if len(body) != length + 1:
        raise FrameError(f"LEN {length} does not match {len(body) - 1} data bytes")
    data, crc = body[:-1], body[-1]
    if crc not in (crc8(bytes([packet_id]) + data), crc8(bytes([packet_id]) + escape(data))):
        raise ChecksumError(f"CRC {crc:02X}h, expected {crc8(bytes([packet_id]) + data):02X}h")
    return Packet(packet_id, data)


class PacketReader:
    """Delimits packets in a byte stream; any raw FE starts a new one (section 3.1)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._left = 0  # data bytes still to come, then the CRC
        self._escaped = False
        self.skipped = 0  # bytes outside any packet, including abandoned partial packets

    @property
    def started(self) -> bool:
        return bool(self._buf)

    def reset(self) -> None:
        self.skipped += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> tuple[bytes | None, bytes]:
        """Take bytes; return (complete raw packet or None, bytes left after it)."""
        for index, byte in enumerate(data):
            if byte == START:
                self.reset()
                self._buf.append(byte)
            elif not self._buf:
                self.skipped += 1
            elif self._take(byte):
                raw = bytes(self._buf)
                self._buf.clear()
                return raw, data[index + 1 :]
        return None, b""

    def _take(self, byte: int) -> bool:
        """Append one byte of a started packet; True when the packet is complete."""
        self._buf.append(byte)
        if len(self._buf) < 4:
            return False
        if len(self._buf) == 4:
            if not _header_ok(self._buf[1:4]):
                self.reset()
                return False
            self._left = self._buf[1] | self._buf[2] << 7
            self._escaped = False
            return False
        if byte == ESC and not self._escaped:
            self._escaped = True
            return False
        self._escaped = False
        self._left -= 1
        return self._left < 0  # the byte after the data is the CRC


# ------------------------------------------------------------------ task buffer

TASK_ADD, TASK_ACK, TASK_REQ, TASK_ABORT = 0xC1, 0xC2, 0xC3, 0xC4
NEED_RESULT, IGNORE_ERROR, WAIT_ASYNC = 0x01, 0x02, 0x04


class TaskStatus(enum.IntEnum):
    """First DATA byte of a register packet (section 3.3)."""

    PENDING = 0xA1
    IN_PROGRESS = 0xA2
    RESULT = 0xA3
    ERROR = 0xA4
    STOPPED = 0xA5
    ASYNC_RESULT = 0xA6
    ASYNC_ERROR = 0xA7
    WAITING = 0xA8
    OVERFLOW = 0xB1
    TID_EXISTS = 0xB2
    TID_NOT_FOUND = 0xB3
    ILLEGAL_VALUE = 0xB4


RUNNING = frozenset({TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.WAITING})
FINISHED = frozenset(
    {TaskStatus.RESULT, TaskStatus.ERROR, TaskStatus.ASYNC_RESULT, TaskStatus.ASYNC_ERROR}
)
STATUS_MEANINGS: dict[TaskStatus, str] = {
    TaskStatus.STOPPED: "task stopped: a task queued before it failed",
    TaskStatus.OVERFLOW: "task buffer overflow",
    TaskStatus.TID_EXISTS: "task id already in the buffer",
    TaskStatus.TID_NOT_FOUND: "task id not found",
    TaskStatus.ILLEGAL_VALUE: "illegal value in the task command",
}


def task_add(tid: int, request: Request, flags: int = NEED_RESULT) -> bytes:
    """``C1 flags TID password cmd params``: only a gated :class:`Request` can be added."""
    return bytes([TASK_ADD, flags, tid]) + request.body


def task_ack(tid: int) -> bytes:
    return bytes([TASK_ACK, tid])


def task_req(tid: int) -> bytes:
    return bytes([TASK_REQ, tid])


def task_abort() -> bytes:
    return bytes([TASK_ABORT])


@dataclass(frozen=True)
class TaskReply:
    """A register packet's DATA: status, the TID where it carries one, the answer."""

    status: TaskStatus
    tid: int | None
    answer: bytes


def parse_task_reply(data: bytes) -> TaskReply:
    if not data:
        raise FrameError("empty packet (a request to resend)")
    try:
        status = TaskStatus(data[0])
    except ValueError as exc:
        raise MalformedAnswerError(f"unknown task status {data[0]:02X}h") from exc
    if status in (TaskStatus.ASYNC_RESULT, TaskStatus.ASYNC_ERROR):
        if len(data) < 2:
            raise MalformedAnswerError(f"{status.name} without a TID")
        return TaskReply(status, data[1], data[2:])
    if status is TaskStatus.STOPPED:
        return TaskReply(status, data[1] if len(data) > 1 else None, b"")  # TID [L]
    return TaskReply(status, None, data[1:])


def encode_task_reply(status: TaskStatus, answer: bytes = b"", tid: int | None = None) -> bytes:
    """Register side (for emulators): DATA of a status packet."""
    return bytes([status]) + (b"" if tid is None else bytes([tid])) + answer


@dataclass(frozen=True)
class HostTask:
    """A host packet's DATA as the register reads it (for emulators)."""

    command: int  # C1..C4
    flags: int | None
    tid: int | None
    body: bytes  # password + command + params, C1 only


def parse_host_task(data: bytes) -> HostTask:
    if not data or data[0] not in (TASK_ADD, TASK_ACK, TASK_REQ, TASK_ABORT):
        raise FrameError(f"not a task command: {data[:4].hex(' ')}")
    command = data[0]
    if command == TASK_ABORT:
        return HostTask(command, None, None, b"")
    if command == TASK_ADD:
        if len(data) < 3:
            raise FrameError("C1 without flags and TID")
        return HostTask(command, data[1], data[2], data[3:])
    if len(data) < 2:
        raise FrameError(f"{command:02X}h without a TID")
    return HostTask(command, None, data[1], b"")
