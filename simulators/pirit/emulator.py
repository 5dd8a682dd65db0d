"""A Pirit / Viki Print / Dreamkas-F register, device side: frames, ENQ and the faults.

Sans-I/O like :mod:`kktmon.simulators.shtrih.emulator`: :class:`PiritEmulator` holds the device
(a vendor-neutral :class:`~kktmon.simulators.scenario.DeviceState`, a clock, the
password, the logs); each connection gets a :class:`PiritLink` that is fed bytes and
returns :mod:`~kktmon.simulators.server` outputs. Frames come from
:mod:`kktmon.protocol.pirit`, answers from :mod:`kktmon.simulators.pirit.answers`.

Device-side link rules (pirit.md section 2):

* ``ENQ`` -> ``ACK`` whenever the register is not silent, also while a frame is arriving;
  during a (slow) reply the ``ACK`` follows the reply, as the reference says.
* A request frame -> one reply frame echoing its packet id and command; there is no
  per-frame ``ACK``/``NAK`` and the register never re-sends.
* Refused frames answer with an error code and no data (worked example 8): a bad
  checksum 07h; a frame stalled for ``byte_timeout_s`` (200 ms) 05h; an endless one 04h;
  a wrong password 06h; anything off the allowlist of
  :func:`kktmon.protocol.pirit.commands.is_allowed` 02h. Those error replies carry the
  packet id and command of the frame; a frame too short to show them gets no reply.
* Bytes outside frames are line noise and ignored, except a bare ``LF`` (paper feed,
  pirit.md 2.5), which is logged as command 0Ah in ``received`` and
  ``forbidden_received``.

``state.unsupported`` names what the model lacks: ``"78"`` a whole command (answered
02h), ``"78/18"`` one sub-request: hex command, ``/``, decimal sub, the reference's own
notation (answered 03h, extended reason 66, like worked example 8).

Faults (``state.faults``), Pirit semantics:

* ``silent``: nothing at all, not even ``ACK`` to ``ENQ``.
* ``garbage_before_stx``: that many printable bytes before each reply's STX.
* ``nak_frames``: the next n intact frames are refused as a Pirit refuses a frame, with
  error 07h (checksum error in the command); they are logged in ``received``.
* ``slow_answer_s``: each reply waits that long; ``busy_printing`` adds a short wait and
  shows a receipt still printing in 00h field 3 (sale, "closed in the FN, not fully
  printed", 82h), which pirit.md 4.6 names as the state in which replies are late.
* ``cut_answers``: the next n replies stop half way (nothing more follows).
* ``wrong_lrc_answers``: the next n replies carry a wrong (well-formed) checksum.
* ``disconnect_after``: TCP only, hang up after answering n commands on a connection.
* ``pending_answer``: each connection starts with a reply the register failed to deliver
  earlier (the recovery reply of quirk 4: packet id 20h, command 00h, error 05h); it goes
  out just before the first reply, so a host must drop it by packet id.
* ``stray_ff``: a Shtrih-M TCP-bridge quirk with no Pirit counterpart; ignored.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from kktmon.protocol.errors import ChecksumError, FrameError
from kktmon.protocol.pirit.commands import STATUS, is_allowed
from kktmon.protocol.pirit.errors import BAD_FUNCTION, BAD_PARAMETER, WRONG_PASSWORD, WRONG_STATE
from kktmon.protocol.pirit.frame import (
    ACK,
    DEFAULT_PASSWORD,
    ENQ,
    ETX,
    LF,
    RECOVERY_PACKET_ID,
    STX,
    FrameReader,
    Reply,
    Request,
    checksum,
    decode_request_frame,
    encode_reply_frame,
    hex2,
    parse_hex2,
)
from kktmon.simulators.pirit.answers import Context, RefusalError, Value, answer, text
from kktmon.simulators.scenario import DeviceState, Faults, default_state
from kktmon.simulators.server import Close, Output, Transport, Write

BYTE_TIMEOUT_S = 0.2  # the register's inter-byte limit (pirit.md 2.7)
BUSY_DELAY_S = 0.05  # extra reply delay while printing
BYTE_TIMEOUT = 0x05  # error: timeout while receiving a byte
BUFFER_OVERFLOW = 0x04
CHECKSUM_ERROR = 0x07
HEADER = 8  # STX, password (4), packet id, command (2): enough to address a reply
_REASON_CODES = frozenset({WRONG_STATE, BAD_PARAMETER})  # the errors 06h/1 explains


def _encode(value: Value) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("ascii") if isinstance(value, int) else text(value)


class PiritEmulator:
    """The register: state, clock, password and the logs of what arrived.

    ``received`` lists the command code of every intact frame, in order (frames the
    ``nak_frames`` fault refused included); ``requests`` the decoded frames themselves
    (packet id, fields, password). Codes of frames outside the allowlist go to
    ``forbidden_received`` too. ``clock`` is the host's clock (naive local); the device
    runs ``clock_offset_s`` ahead of it. ``seed`` makes the garbage repeatable.
    """

    def __init__(
        self,
        state: DeviceState | None = None,
        clock: Callable[[], datetime] = datetime.now,
        seed: int | None = None,
        password: str = DEFAULT_PASSWORD,
    ) -> None:
        self.state = state if state is not None else default_state()
        self.clock = clock
        self.password = password
        self.received: list[int] = []
        self.forbidden_received: list[int] = []
        self.requests: list[Request] = []
        self.error_reason = 0  # 06h/1: reason of the last 01h/03h error, any client
        self.rng = random.Random(seed)

    def open_link(self, transport: Transport) -> PiritLink:
        return PiritLink(self, transport)

    def device_time(self) -> datetime:
        return self.clock() + timedelta(seconds=self.state.clock_offset_s)

    def note(self, request: Request) -> None:
        """Log a frame that arrived intact (even one the link then refuses on purpose)."""
        self.received.append(request.command)
        self.requests.append(request)
        if not is_allowed(request.command, request.fields):
            self.forbidden_received.append(request.command)

    def note_line_feed(self) -> None:
        self.received.append(LF)
        self.forbidden_received.append(LF)

    def execute(self, request: Request) -> Reply:
        """The reply to an intact request frame."""
        try:
            values = self._answer(request)
        except RefusalError as refusal:
            if refusal.code in _REASON_CODES:
                self.error_reason = refusal.reason
            return Reply(request.packet_id, request.command, refusal.code)
        fields = tuple(_encode(value) for value in values)
        return Reply(request.packet_id, request.command, 0, fields)

    def _answer(self, request: Request) -> tuple[Value, ...]:
        if request.password != self.password:
            raise RefusalError(WRONG_PASSWORD)
        command, fields = request.command, request.fields
        if not is_allowed(command, fields) or self.state.lacks(command):
            raise RefusalError(BAD_FUNCTION)
        context = Context(
            self.state, self.device_time(), self.error_reason, self.state.faults.busy_printing
        )
        return answer(context, command, [int(field) for field in fields])

    def stale_reply(self) -> Reply:
        """The recovery reply of quirk 4: an answer the register failed to deliver."""
        return Reply(RECOVERY_PACKET_ID, STATUS, BYTE_TIMEOUT)


def _address(head: bytes) -> tuple[int, int] | None:
    """Packet id and command of a frame from its first 8 bytes, or None if unreadable.

    The codec decodes them: the head is closed with ETX and its own checksum.
    """
    if len(head) < HEADER:
        return None
    body = head[1:HEADER] + bytes([ETX])
    try:
        request = decode_request_frame(head[:1] + body + hex2(checksum(body)))
    except FrameError:
        return None
    return request.packet_id, request.command


class PiritLink:
    """Device side of one connection (pirit.md section 2), with the scenario's faults."""

    byte_timeout_s = BYTE_TIMEOUT_S

    def __init__(self, emulator: PiritEmulator, transport: Transport) -> None:
        # ``transport`` changes nothing but hanging up: the same frames run over both.
        self.transport = transport
        self._emulator = emulator
        self._reader = FrameReader()
        self._partial = b""  # the bytes of the frame in progress, from its STX
        self._stale: Reply | None = None
        self._commands = 0

    @property
    def _faults(self) -> Faults:
        return self._emulator.state.faults

    @property
    def mid_frame(self) -> bool:
        return self._reader.started

    def start(self) -> list[Output]:
        if self._faults.pending_answer:
            self._stale = self._emulator.stale_reply()
        return []

    def feed(self, data: bytes) -> list[Output]:
        if self._faults.silent:
            return []
        outputs: list[Output] = []
        while data:
            byte = data[0]
            if byte == ENQ:  # never part of a frame: always the link check
                outputs.append(Write(bytes([ACK])))
                data = data[1:]
            elif not self._reader.started and byte != STX:
                if byte == LF:
                    self._emulator.note_line_feed()
                data = data[1:]
            else:
                data = self._take(data, outputs)
        return outputs

    def timeout(self) -> list[Output]:
        """The host stalled inside a frame for more than 200 ms: error 05h."""
        if not self._reader.started:
            return []
        partial = self._drop_partial()
        return [] if self._faults.silent else self._refuse(partial, BYTE_TIMEOUT)

    def _take(self, data: bytes, outputs: list[Output]) -> bytes:
        """Feed frame bytes up to the next ENQ; returns what is left to look at."""
        end = data.find(bytes([ENQ]))
        chunk = data if end < 0 else data[:end]
        try:
            raw, rest = self._reader.feed(chunk)
        except FrameError:  # no ETX within the codec's frame limit
            outputs += self._refuse(self._drop_partial(), BUFFER_OVERFLOW)
            return data[len(chunk) :]
        if raw is None:
            start = chunk.rfind(bytes([STX]))
            self._partial = chunk[start:] if start >= 0 else self._partial + chunk
        else:
            self._partial = b""
            outputs += self._on_frame(raw)
        return rest + data[len(chunk) :]

    def _drop_partial(self) -> bytes:
        partial, self._partial = self._partial, b""
        self._reader.reset()
        return partial

    def _on_frame(self, raw: bytes) -> list[Output]:
        try:
            request = decode_request_frame(raw)
        except ChecksumError:
            return self._refuse(raw, CHECKSUM_ERROR)
        except FrameError:
            return []  # not addressable: nobody to answer
        self._emulator.note(request)
        if self._faults.take("nak_frames"):
            return [self._transmit(Reply(request.packet_id, request.command, CHECKSUM_ERROR))]
        reply = self._emulator.execute(request)
        self._commands += 1
        outputs: list[Output] = [self._transmit(reply)]
        limit = self._faults.disconnect_after
        if limit is not None and self._commands >= limit:
            outputs.append(Close())
        return outputs

    def _refuse(self, head: bytes, code: int) -> list[Output]:
        address = _address(head)
        if address is None:
            return []
        return [self._transmit(Reply(*address, error=code))]

    def _transmit(self, reply: Reply) -> Write:
        faults = self._faults
        frame = encode_reply_frame(reply)
        if faults.take("wrong_lrc_answers"):
            wrong = parse_hex2(frame[-2:], "checksum") ^ 0x55
            frame = frame[:-2] + hex2(wrong)
        if faults.take("cut_answers"):
            frame = frame[: len(frame) // 2]  # ETX is always in the second half
        rng = self._emulator.rng
        noise = bytes(rng.randrange(0x20, 0x7F) for _ in range(faults.garbage_before_stx))
        stale = b""
        if self._stale is not None:
            stale, self._stale = encode_reply_frame(self._stale), None
        delay = faults.slow_answer_s + (BUSY_DELAY_S if faults.busy_printing else 0.0)
        return Write(stale + noise + frame, delay)
