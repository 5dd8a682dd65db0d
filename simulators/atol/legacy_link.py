"""The register's side of the ATOL LEGACY link ("АТОЛ 2.4"): ENQ/ACK/EOT and STX/ETX frames.

Framing is the codec's (:mod:`kktmon.protocol.atol.legacy`); this module is the
register's half of the exchange of atol.md section 2.2::

    host ENQ -> ACK          host frame -> ACK (NAK: bad LRC or cut off)     host EOT
    -> ENQ (answer ready) -> host ACK -> frame -> host ACK (NAK: frame again) -> EOT

A frame repeated after our ACK is acknowledged again and not executed twice; ``EOT``
from the host at any point ends the exchange (a host that gave up). A raw ``FE`` while
idle starts an FE packet, which this register ignores to its end, or to a quiet gap
if it stops short (quirk Q1: a LEGACY device ignores an FE probe, even where its bytes
contain an ENQ).

Faults, with what the host sees: ``silent`` nothing at all; ``busy_printing`` NAK to the
first ENQ of each exchange (busy, quirk Q4), ACK to the next, and a late answer;
``slow_answer_s`` the ENQ that announces the answer comes that much later;
``nak_frames`` NAK to good frames; ``wrong_lrc_answers`` / ``cut_answers`` a spoiled
answer, sent whole again after the host's NAK; ``garbage_before_stx`` printable noise
before each answer's STX; ``stray_ff`` a stray FFh after the closing EOT (ATOL has no
such quirk of its own: only when switched on); ``disconnect_after`` the TCP connection
drops after the n-th closed exchange; ``pending_answer`` an answer a POS program left:
the register answers the first ENQ with ENQ (it wants to talk, a collision); a host that
then ACKs gets the stale frame, one that ENQs again gets the line.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from kktmon.protocol.atol.frame import PacketReader
from kktmon.protocol.atol.legacy import (
    ACK,
    ENQ,
    EOT,
    NAK,
    STX,
    FrameReader,
    decode_frame,
    encode_frame,
)
from kktmon.protocol.errors import ProtocolError
from kktmon.simulators.emulator import DeviceLink, flip_last_byte
from kktmon.simulators.server import Output, Transport, Write

if TYPE_CHECKING:
    from kktmon.simulators.atol.emulator import AtolEmulator

BYTE_TIMEOUT_S = 0.05  # gap that ends a started frame (the host writes frames at once)
BUSY_DELAY_S = 0.1  # extra delay of the answer while a document is printing
FE_START = 0xFE
MAX_REPEATS = 10  # answer frames NAKed by the host before the register gives up


class _State(enum.Enum):
    IDLE = "idle"
    OFFERING = "offering"  # pending_answer: we answered the host's ENQ with ENQ
    RECEIVING = "receiving"  # our ACK sent: the host's frame comes
    WAIT_EOT = "wait_eot"  # the frame ACKed: the host closes its turn
    ANNOUNCED = "announced"  # our ENQ sent: waiting for the host's ACK
    SENT = "sent"  # our frame sent: ACK or NAK
    FOREIGN = "foreign"  # inside an FE packet: ignored


# A host frame may start while we wait for it, or again after our ACK (our ACK was lost).
_FRAME_STATES = frozenset({_State.RECEIVING, _State.WAIT_EOT})


class LegacyDeviceLink(DeviceLink["AtolEmulator"]):
    """Device side of one LEGACY connection, with the scenario's faults."""

    byte_timeout_s = BYTE_TIMEOUT_S
    busy_delay_s = BUSY_DELAY_S

    def __init__(self, emulator: AtolEmulator, transport: Transport) -> None:
        super().__init__(emulator, transport)
        self._reader = FrameReader()
        self._foreign = PacketReader()  # only to find where an FE packet ends
        self._state = _State.IDLE
        self._answer = b""  # DATA of the answer of this exchange
        self._own = False  # the answer is to a command of this exchange (not a stale one)
        self._repeats = 0
        self._refused_enq = False  # busy: the first ENQ of this exchange was NAKed
        self._stale: bytes | None = None  # pending_answer, until offered once
        self._closed = 0  # exchanges closed with our EOT (disconnect_after)

    @property
    def mid_frame(self) -> bool:
        return self._reader.started or self._state is _State.FOREIGN

    def hold_stale_answer(self) -> None:
        self._stale = self.emulator.stale_answer(self.transport)

    def receive(self, data: bytes) -> list[Output]:
        outputs: list[Output] = []
        for index, byte in enumerate(data):
            if self._state is _State.FOREIGN:
                self._skip_foreign(byte)
                continue
            if self._reader.started or (byte == STX and self._state in _FRAME_STATES):
                outputs += self._on_frame_byte(data[index : index + 1])
            else:
                outputs += self._on_control(byte)
        return outputs

    def timeout(self) -> list[Output]:
        """Quiet line: a frame that stopped half-way is NAKed; an FE packet is over."""
        if self._state is _State.FOREIGN:
            self._foreign.reset()
            self._state = _State.IDLE
            return []
        if not self._reader.started:
            return []
        self._reader.reset()
        return [] if self.faults.silent else [Write(bytes([NAK]))]

    # ------------------------------------------------------------------ the host's turn

    def _on_frame_byte(self, byte: bytes) -> list[Output]:
        raw, _ = self._reader.feed(byte)
        if raw is None:
            return []
        try:
            body = decode_frame(raw)
        except ProtocolError:
            return [Write(bytes([NAK]))]
        self.emulator.note(body)
        if self.faults.take("nak_frames"):
            return [Write(bytes([NAK]))]
        if self._state is _State.RECEIVING:  # a repeat in WAIT_EOT is not run again
            self._answer = self.emulator.execute(body, self.transport).data
            self._state = _State.WAIT_EOT
        return [Write(bytes([ACK]))]

    def _on_control(self, byte: int) -> list[Output]:
        if byte == EOT:
            return self._on_eot()
        if byte == ENQ:
            return self._on_enq()
        if byte in (ACK, NAK):
            return self._on_reply(byte == ACK)
        if byte == FE_START and self._state is _State.IDLE:
            self._state = _State.FOREIGN
            self._skip_foreign(byte)
        return []

    def _skip_foreign(self, byte: int) -> None:
        """One byte of an FE packet: ignored; the packet's end (or a gap) ends it."""
        raw, _ = self._foreign.feed(bytes([byte]))
        if raw is not None:
            self._state = _State.IDLE

    def _on_eot(self) -> list[Output]:
        if self._state is _State.WAIT_EOT:
            return self._announce()
        self._state = _State.IDLE  # the host ends whatever was going on
        return []

    def _on_enq(self) -> list[Output]:
        """The host wants to talk; a new exchange starts unless we are busy or offering."""
        state = self._state
        if state is _State.RECEIVING:
            return [Write(bytes([ACK]))]  # our ACK got lost
        if state is _State.WAIT_EOT:
            return []
        if state is _State.OFFERING:
            self._take_stale()  # it did not take our answer: drop it, give it the line
        elif self._stale is not None:
            self._state = _State.OFFERING
            return [Write(bytes([ENQ]))]
        elif self.faults.busy_printing and not self._refused_enq:
            self._refused_enq = True
            self._state = _State.IDLE
            return [Write(bytes([NAK]))]
        self._refused_enq = False
        self._state = _State.RECEIVING
        self._reader.reset()
        return [Write(bytes([ACK]))]

    def _on_reply(self, ack: bool) -> list[Output]:
        """The host's ACK or NAK: to our ENQ, or to our frame."""
        state = self._state
        if state is _State.SENT:
            return self._close_exchange(count=self._own) if ack else self._repeat()
        if ack and state is _State.OFFERING:
            return self._transmit(self._take_stale(), own=False)
        if ack and state is _State.ANNOUNCED:
            return self._transmit(self._answer, own=True)
        return []

    # ------------------------------------------------------------------ the register's turn

    def _announce(self) -> list[Output]:
        self._state = _State.ANNOUNCED
        return [Write(bytes([ENQ]), self.answer_delay())]

    def _take_stale(self) -> bytes:
        stale, self._stale = self._stale or b"", None
        self._state = _State.IDLE
        return stale

    def _transmit(self, answer: bytes, own: bool) -> list[Output]:
        self._answer, self._own = answer, own
        self._repeats = 0
        self._state = _State.SENT
        return [self._frame(answer)]

    def _frame(self, answer: bytes) -> Write:
        raw = self.spoil(encode_frame(answer), flip_last_byte, shortest=2)
        return Write(self.emulator.noise() + raw)

    def _repeat(self) -> list[Output]:
        self._repeats += 1
        if self._repeats > MAX_REPEATS:
            return self._close_exchange(count=False)
        return [self._frame(self._answer)]

    def _close_exchange(self, count: bool) -> list[Output]:
        self._state = _State.IDLE
        self._closed += count
        hang_up = self.hang_up_after(self._closed) if count else []
        return [Write(bytes([EOT])), *self.stray(), *hang_up]
