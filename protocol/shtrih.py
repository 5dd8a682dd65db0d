"""Shtrih-M standard protocol: frames and the host side of the ENQ/ACK/NAK link.

Sans-I/O. A frame is ``STX LEN CMD DATA LRC`` where LRC is the XOR of every byte after
STX (reference shtrih-m.md section 2). :class:`HostLink` is the host's half-duplex state
machine (section 3.2): the driver tells it what arrived (or that a wait timed out) and
it answers with actions: bytes to write, input to purge, how long to wait next, or the
finished answer. It never reads a clock; the driver maps :class:`Wait` kinds to seconds.

Exchange of one command, as the register expects it::

    host ENQ -> dev NAK (idle)  -> host frame -> dev ACK -> dev answer -> host ACK
             -> dev ACK (an old answer is pending: read it, ACK it, drop it, ENQ again)
             -> dev 0xFF (TCP/RNDIS quirk: ignore)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from functools import reduce
from operator import xor

from kktmon.protocol.errors import ChecksumError, FrameError, LinkTimeoutError

# The link actions are vendor-neutral (protocol/link.py); listed in ``__all__`` so the
# existing ``from kktmon.protocol.shtrih import Send, ...`` keeps working.
from kktmon.protocol.link import Action, Done, Purge, Send, Wait, WaitKind

__all__ = [
    "ACK",
    "ENQ",
    "MAX_BODY",
    "NAK",
    "STRAY",
    "STX",
    "Action",
    "Done",
    "Frame",
    "FrameReader",
    "HostLink",
    "LinkLimits",
    "Purge",
    "Send",
    "Wait",
    "WaitKind",
    "command_bytes",
    "decode_frame",
    "encode_frame",
    "lrc",
    "split_command",
]

STX = 0x02
ENQ = 0x05
ACK = 0x06
NAK = 0x15
STRAY = 0xFF  # sent after the host's ACK over TCP/RNDIS (quirk 11.1)

MAX_BODY = 255


def lrc(body: bytes) -> int:
    """Checksum of LEN + CMD + DATA."""
    return reduce(xor, body, 0)


@dataclass(frozen=True)
class Frame:
    """One decoded frame: the command code bytes and the data after them."""

    command: bytes
    data: bytes

    @property
    def body(self) -> bytes:
        return self.command + self.data

    @property
    def code(self) -> int:
        """The command as one number: ``0xFC`` or ``0xFF01``."""
        return int.from_bytes(self.command, "big")


def command_bytes(code: int) -> bytes:
    """``0x10`` -> ``10``; ``0xFF01`` -> ``FF 01`` (two-byte commands start with FF)."""
    return code.to_bytes(2 if code > 0xFF else 1, "big")


def split_command(body: bytes) -> Frame:
    """Split CMD+DATA into the command code and its data."""
    if not body:
        raise FrameError("empty frame body")
    width = 2 if body[0] == 0xFF and len(body) >= 2 else 1
    return Frame(command=body[:width], data=body[width:])


def encode_frame(body: bytes) -> bytes:
    """Wrap CMD+DATA into ``STX LEN ... LRC``."""
    if not 0 < len(body) <= MAX_BODY:
        raise FrameError(f"frame body must be 1..{MAX_BODY} bytes, got {len(body)}")
    with_len = bytes([len(body)]) + body
    return bytes([STX]) + with_len + bytes([lrc(with_len)])


def decode_frame(frame: bytes) -> Frame:
    """Decode one complete frame; raises a :class:`FrameError` or :class:`ChecksumError`."""
    if len(frame) < 4 or frame[0] != STX:
        raise FrameError(f"not a frame: {frame[:8].hex(' ')}")
    length = frame[1]
    if length == 0 or len(frame) != length + 3:
        raise FrameError(f"length byte {length} does not match a {len(frame)}-byte frame")
    expected = lrc(frame[1:-1])
    if frame[-1] != expected:
        raise ChecksumError(f"LRC {frame[-1]:02X}h, expected {expected:02X}h")
    return split_command(frame[2:-1])


class FrameReader:
    """Accumulates bytes into one frame; bytes before STX are skipped as line noise."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.skipped = 0

    @property
    def started(self) -> bool:
        return bool(self._buf)

    def feed(self, data: bytes) -> tuple[bytes | None, bytes]:
        """Take bytes; return (complete raw frame or None, bytes left over after it)."""
        for index, byte in enumerate(data):
            if not self._buf and byte != STX:
                self.skipped += 1
                continue
            self._buf.append(byte)
            if len(self._buf) >= 2 and len(self._buf) == self._buf[1] + 3:
                raw = bytes(self._buf)
                self._buf.clear()
                return raw, data[index + 1 :]
        return None, b""

    def reset(self) -> None:
        self._buf.clear()


# --------------------------------------------------------------------------- host link


@dataclass(frozen=True)
class LinkLimits:
    """Retry counts of the vendor drivers (reference 3.2)."""

    enq_tries: int = 10
    pending_answers: int = 3
    frame_resends: int = 3
    answer_repeats: int = 3


class _State(enum.Enum):
    ENQ_SENT = "enq_sent"
    FRAME_SENT = "frame_sent"
    READING_ANSWER = "reading_answer"
    DRAINING_PENDING = "draining_pending"
    DONE = "done"


class HostLink:
    """One command exchange, host side.

    Usage::

        link = HostLink(encode_frame(body))
        actions = link.start()
        while not link.done:
            ... perform actions; read with the timeout of the last Wait ...
            actions = link.receive(data) if data else link.timeout()
    """

    def __init__(self, request: bytes, limits: LinkLimits | None = None) -> None:
        self.request = request
        self.limits = limits or LinkLimits()
        self.retries = 0
        self.noise_bytes = 0
        self._state = _State.ENQ_SENT
        self._reader = FrameReader()
        self._enq_tries = 0
        self._pending_seen = 0
        self._resends = 0
        self._repeats = 0
        self._request_sent = False
        self.answer: Frame | None = None

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def start(self) -> list[Action]:
        return self._finish(self._send_enq(first=True))

    def receive(self, data: bytes) -> list[Action]:
        """Feed bytes that arrived; returns what to do next."""
        actions: list[Action] = []
        while data and not self.done:
            if self._state in (_State.ENQ_SENT, _State.FRAME_SENT):
                step = self._on_control(data[0])
                data = data[1:]
                if step:
                    # A new step of the exchange begins: whatever else arrived with
                    # this control byte belongs to the old one.
                    actions.extend(step)
                    break
            else:
                step, data = self._on_answer_bytes(data)
                actions.extend(step)
        return self._finish(actions)

    def timeout(self) -> list[Action]:
        """The last wait expired with nothing (or not enough) received."""
        if self._state is _State.READING_ANSWER and self._reader.started:
            return self._finish(self._reject_answer("answer cut off mid-frame"))
        # No control byte, or no STX: ENQ tells whether our command arrived
        # (ACK = answer pending, NAK = resend) or whether the link is alive at all.
        return self._finish(self._send_enq())

    # ------------------------------------------------------------------ internals

    def _finish(self, actions: list[Action]) -> list[Action]:
        if not self.done:
            actions.append(self._wait())
        return actions

    def _wait(self) -> Wait:
        if self._state in (_State.ENQ_SENT, _State.FRAME_SENT):
            return Wait(WaitKind.CONTROL)
        return Wait(WaitKind.BYTE if self._reader.started else WaitKind.ANSWER)

    def _send_enq(self, first: bool = False) -> list[Action]:
        if not first:
            self.retries += 1
        self._enq_tries += 1
        if self._enq_tries > self.limits.enq_tries:
            raise LinkTimeoutError(f"no reply to {self.limits.enq_tries} ENQ: no link")
        self._state = _State.ENQ_SENT
        self._reader.reset()
        return [Purge(), Send(bytes([ENQ]))]

    def _send_request(self) -> list[Action]:
        self._state = _State.FRAME_SENT
        self._request_sent = True
        return [Send(self.request)]

    def _on_control(self, byte: int) -> list[Action]:
        """Handle one byte where ACK/NAK is expected; [] means keep waiting."""
        if byte not in (ACK, NAK):  # includes the stray 0xFF of TCP links
            self.noise_bytes += 1
            return []
        if self._state is _State.ENQ_SENT:
            return self._on_enq_reply(byte)
        if byte == ACK:
            self._state = _State.READING_ANSWER
            return []
        self._resends += 1
        self.retries += 1
        if self._resends > self.limits.frame_resends:
            raise ChecksumError(f"register NAKed the command {self._resends} times")
        return self._send_request()

    def _on_enq_reply(self, byte: int) -> list[Action]:
        if byte == NAK:  # idle: our command (if any) never arrived or its answer is lost
            return self._send_request()
        if self._request_sent:  # the pending answer is ours
            self._state = _State.READING_ANSWER
            return []
        self._pending_seen += 1
        if self._pending_seen > self.limits.pending_answers:
            raise LinkTimeoutError("register keeps reporting a pending answer")
        self._state = _State.DRAINING_PENDING
        return []

    def _on_answer_bytes(self, data: bytes) -> tuple[list[Action], bytes]:
        before = self._reader.skipped
        raw, rest = self._reader.feed(data)
        self.noise_bytes += self._reader.skipped - before
        if raw is None:
            return [], b""
        try:
            frame = decode_frame(raw)
        except (FrameError, ChecksumError) as exc:
            return self._reject_answer(str(exc)), b""
        if self._state is _State.DRAINING_PENDING:
            # Somebody else's (or a lost) answer: acknowledge it so the register
            # forgets it, then start over with ENQ.
            return [Send(bytes([ACK])), *self._send_enq()], b""
        self._state = _State.DONE
        self.answer = frame
        return [Send(bytes([ACK])), Done(frame)], rest

    def _reject_answer(self, reason: str) -> list[Action]:
        # One recovery round (NAK + ENQ): the ENQ below counts it in ``retries``.
        self._repeats += 1
        if self._repeats > self.limits.answer_repeats:
            raise ChecksumError(f"answer garbled {self._repeats} times: {reason}")
        self._reader.reset()
        return [Send(bytes([NAK])), *self._send_enq()]
