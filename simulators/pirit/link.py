"""The Pirit register's side of the link (pirit.md section 2): frames, ENQ and the faults.

Framing is the codec's (:mod:`kktmon.protocol.pirit.frame`); this module is the
register's behaviour on one connection:

* ``ENQ`` -> ``ACK`` whenever the register is not silent, also while a frame is arriving;
  during a (slow) reply the ``ACK`` follows the reply, as the reference says.
* A request frame -> one reply frame echoing its packet id and command; there is no
  per-frame ``ACK``/``NAK`` and the register never re-sends.
* Frames refused below the command layer answer with an error code and no data: a bad
  checksum 07h; a frame stalled for ``byte_timeout_s`` (200 ms) 05h; an endless one 04h.
  Those error replies carry the packet id and command of the frame; a frame too short
  to show them gets no reply.
* Bytes outside frames are line noise and ignored, except a bare ``LF`` (paper feed,
  pirit.md 2.5), which is logged as command 0Ah in ``received`` and
  ``forbidden_received``.

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

from typing import TYPE_CHECKING

from kktmon.protocol.errors import ChecksumError, FrameError
from kktmon.protocol.pirit.frame import (
    ACK,
    ENQ,
    ETX,
    LF,
    STX,
    FrameReader,
    Reply,
    checksum,
    decode_request_frame,
    encode_reply_frame,
    hex2,
    parse_hex2,
)
from kktmon.simulators.emulator import DeviceLink
from kktmon.simulators.server import Output, Transport, Write

if TYPE_CHECKING:
    from kktmon.simulators.pirit.emulator import PiritEmulator

BYTE_TIMEOUT_S = 0.2  # the register's inter-byte limit (pirit.md 2.7)
BUSY_DELAY_S = 0.05  # extra reply delay while printing
BYTE_TIMEOUT = 0x05  # error: timeout while receiving a byte
BUFFER_OVERFLOW = 0x04
CHECKSUM_ERROR = 0x07
HEADER = 8  # STX, password (4), packet id, command (2): enough to address a reply


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


def _wrong_checksum(frame: bytes) -> bytes:
    """The reply with a well-formed but wrong checksum (two hex digits at its end)."""
    return frame[:-2] + hex2(parse_hex2(frame[-2:], "checksum") ^ 0x55)


class PiritLink(DeviceLink["PiritEmulator"]):
    """Device side of one connection (pirit.md section 2), with the scenario's faults.

    ``transport`` changes nothing but hanging up: the same frames run over both.
    """

    byte_timeout_s = BYTE_TIMEOUT_S
    busy_delay_s = BUSY_DELAY_S

    def __init__(self, emulator: PiritEmulator, transport: Transport) -> None:
        super().__init__(emulator, transport)
        self._reader = FrameReader()
        self._partial = b""  # the bytes of the frame in progress, from its STX
        self._stale: Reply | None = None
        self._commands = 0

    @property
    def mid_frame(self) -> bool:
        return self._reader.started

    def hold_stale_answer(self) -> None:
        self._stale = self.emulator.stale_reply()

    def receive(self, data: bytes) -> list[Output]:
        outputs: list[Output] = []
        while data:
            byte = data[0]
            if byte == ENQ:  # never part of a frame: always the link check
                outputs.append(Write(bytes([ACK])))
                data = data[1:]
            elif not self._reader.started and byte != STX:
                if byte == LF:
                    self.emulator.note_line_feed()
                data = data[1:]
            else:
                data = self._take(data, outputs)
        return outputs

    def timeout(self) -> list[Output]:
        """The host stalled inside a frame for more than 200 ms: error 05h."""
        if not self._reader.started:
            return []
        partial = self._drop_partial()
        return [] if self.faults.silent else self._refuse(partial, BYTE_TIMEOUT)

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
        self.emulator.note(request)
        if self.faults.take("nak_frames"):
            return [self._transmit(Reply(request.packet_id, request.command, CHECKSUM_ERROR))]
        reply = self.emulator.execute(request)
        self._commands += 1
        return [self._transmit(reply), *self.hang_up_after(self._commands)]

    def _refuse(self, head: bytes, code: int) -> list[Output]:
        address = _address(head)
        if address is None:
            return []
        return [self._transmit(Reply(*address, error=code))]

    def _transmit(self, reply: Reply) -> Write:
        # A cut reply loses its ETX: it is always in the second half.
        frame = self.spoil(encode_reply_frame(reply), _wrong_checksum, shortest=0)
        noise = self.emulator.noise()
        stale = b""
        if self._stale is not None:
            stale, self._stale = encode_reply_frame(self._stale), None
        return Write(stale + noise + frame, self.answer_delay())
