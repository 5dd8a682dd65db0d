"""The Shtrih-M register's side of the ENQ/ACK/NAK link (shtrih-m.md 3.1), with faults.

Framing is the codec's (:mod:`kktmon.protocol.shtrih.frame`); this module is the
register's behaviour on one connection:

* ENQ -> NAK when idle, ACK + the answer again while an answer is unacknowledged;
* a good frame -> ACK, then the answer; a bad LRC, or a frame (or line noise) that
  stops for ``byte_timeout_s`` -> NAK;
* a host NAK of an answer is not answered: the register waits for ENQ and then resends;
* the host's ACK of an answer is followed by a stray FFh on TCP (quirk 11.1).

Faults, Shtrih-M semantics: ``silent`` nothing at all; ``nak_frames`` NAK to good
frames (still logged); ``wrong_lrc_answers`` / ``cut_answers`` a spoiled answer, sent
whole on the next ENQ; ``garbage_before_stx`` printable noise before each answer;
``slow_answer_s`` a late answer, ``busy_printing`` a little later still (quirk 11.3);
``stray_ff`` forces the stray byte on or off (unset: on for TCP only);
``disconnect_after`` TCP only, hang up once that many answers were acknowledged;
``pending_answer`` each connection starts with the 10h answer a POS program left
unacknowledged, which the first ENQ collects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kktmon.protocol.errors import ChecksumError, FrameError
from kktmon.protocol.shtrih.frame import (
    ACK,
    ENQ,
    NAK,
    STX,
    FrameReader,
    decode_frame,
    encode_frame,
)
from kktmon.simulators.emulator import DeviceLink, flip_last_byte
from kktmon.simulators.server import Output, Transport, Write

if TYPE_CHECKING:
    from kktmon.simulators.shtrih.emulator import ShtrihEmulator

BYTE_TIMEOUT_S = 0.05  # the register's own inter-byte timeout (section 1)
BUSY_DELAY_S = 0.05  # extra answer delay while printing (quirk 11.3)


class ShtrihLink(DeviceLink["ShtrihEmulator"]):
    """Device side of one connection (section 3.1), with the scenario's faults."""

    byte_timeout_s = BYTE_TIMEOUT_S
    busy_delay_s = BUSY_DELAY_S

    def __init__(self, emulator: ShtrihEmulator, transport: Transport) -> None:
        super().__init__(emulator, transport)
        self._reader = FrameReader()
        self._noise = False  # bytes that were neither control bytes nor a frame
        self._pending: bytes | None = None  # answer frame not yet acknowledged
        self._commands = 0

    @property
    def mid_frame(self) -> bool:
        return self._reader.started or self._noise

    def hold_stale_answer(self) -> None:
        self._pending = self.emulator.stale_answer()

    def receive(self, data: bytes) -> list[Output]:
        outputs: list[Output] = []
        while data:
            if self._reader.started or data[0] == STX:
                self._noise = False
                raw, data = self._reader.feed(data)
                if raw is not None:
                    outputs += self._on_frame(raw)
            else:
                outputs += self._on_byte(data[0])
                data = data[1:]
        return outputs

    def timeout(self) -> list[Output]:
        """The line went quiet inside a frame or after noise: NAK (section 3.1)."""
        if not self.mid_frame:
            return []
        self._reader.reset()
        self._noise = False
        return [] if self.faults.silent else [Write(bytes([NAK]))]

    def _on_byte(self, byte: int) -> list[Output]:
        if byte == ENQ:
            if self._pending is None:
                return [Write(bytes([NAK]))]
            return [Write(bytes([ACK])), self._transmit(self._pending)]
        if byte == ACK and self._pending is not None:
            return self._acknowledged()
        if byte not in (ACK, NAK):
            self._noise = True
        return []  # a NAK keeps the answer for the next ENQ

    def _on_frame(self, raw: bytes) -> list[Output]:
        try:
            frame = decode_frame(raw)
        except (FrameError, ChecksumError):
            return [Write(bytes([NAK]))]
        self.emulator.note(frame)
        if self.faults.take("nak_frames"):
            return [Write(bytes([NAK]))]
        self._commands += 1
        self._pending = encode_frame(self.emulator.execute(frame.body))
        return [Write(bytes([ACK])), self._transmit(self._pending)]

    def _transmit(self, answer: bytes) -> Write:
        answer = self.spoil(answer, flip_last_byte, shortest=2)
        return Write(self.emulator.noise() + answer, self.answer_delay())

    def _acknowledged(self) -> list[Output]:
        self._pending = None
        outputs = self.stray(default=self.transport == "tcp")
        return outputs + self.hang_up_after(self._commands)
