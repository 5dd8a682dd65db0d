"""ATOL "АТОЛ 2.4" LEGACY link layer: STX/ETX frames and the host's ENQ/ACK/EOT machine.

Sans-I/O, reference atol.md section 2 (the factory default is the FE transport,
:mod:`kktmon.protocol.atol`; both carry the same commands). A frame is::

    02 | stuffed(DATA) | 03 | LRC

where stuffing sends ``10`` as ``10 10`` and ``03`` as ``10 03`` (a ``02`` goes raw) and
LRC is the XOR of every transmitted byte after STX up to and including ETX, the
inserted DLEs included. Host DATA is ``password(2) command params``; register DATA is
the command answer.

:class:`LegacyLink` runs one command and speaks the vendor-neutral actions of
:mod:`kktmon.protocol.link`::

    host ENQ -> dev ACK -> host frame -> dev ACK -> host EOT        (Wait CONTROL each)
             -> dev ENQ (answer ready; Wait ANSWER = the command's T5)
             -> host ACK -> dev frame -> host ACK (NAK if garbled) -> dev EOT -> Done

    session = LegacySession()                  # one per open connection
    link = LegacyLink(request_state(), session)
    actions = link.start()                     # [Purge, Send(ENQ), Wait(CONTROL)]

A ``NAK`` (busy) or ``ENQ`` (the register wants to talk) in reply to our ENQ means: wait
one CONTROL timeout (T7) and ENQ again. A link that gives up raises, and marks the
session so the next exchange sends ``EOT`` before its ``ENQ`` (section 2.2).

Timeouts, mapped by the driver: ``CONTROL`` = T1/T4/T7, 0.5 s (also the wait for the
frame after our ACK and for the closing EOT); ``ANSWER`` = the command's T5,
:func:`answer_timeout_s`; ``BYTE`` = the rest of a started frame. Probing for LEGACY
(quirk Q1): ``LegacyLink(request_status_code(), session, LegacyLimits(enq_tries=1))``
raises :class:`LinkTimeoutError` after one silent ``CONTROL`` wait.

Register side (emulators): :class:`FrameReader` and :func:`decode_frame` read host
frames as well, :func:`encode_frame` builds answers.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Iterator
from dataclasses import dataclass
from functools import reduce
from operator import xor

from kktmon.protocol.atol.commands import Request
from kktmon.protocol.errors import ChecksumError, FrameError, KktmonError, LinkTimeoutError
from kktmon.protocol.link import Action, Done, Purge, Send, Wait, WaitKind

STX, ETX, EOT, ENQ, ACK, DLE, NAK = 0x02, 0x03, 0x04, 0x05, 0x06, 0x10, 0x15

# T5 of atol4j's table (section 2.2), for the allowed commands; 10 s for the others.
DEFAULT_T5_S = 10.0
T5_S: dict[int, float] = {0x91: 45.0}


def answer_timeout_s(request: Request) -> float:
    """How long the register may take to announce its answer (T5) for ``request``."""
    return T5_S.get(request.code, DEFAULT_T5_S)


def stuff(data: bytes) -> bytes:
    return data.replace(b"\x10", b"\x10\x10").replace(b"\x03", b"\x10\x03")


def unstuff(wire: bytes) -> bytes:
    """Inverse of :func:`stuff`; a raw ETX, a dangling DLE or ``10 xx`` is a FrameError."""
    out = bytearray()
    pending = False
    for byte in wire:
        if pending:
            if byte not in (DLE, ETX):
                raise FrameError(f"10 {byte:02X} is not a stuffed pair")
            out.append(byte)
            pending = False
        elif byte == DLE:
            pending = True
        elif byte == ETX:
            raise FrameError("unstuffed ETX inside DATA")
        else:
            out.append(byte)
    if pending:
        raise FrameError("DATA ends inside a DLE pair")
    return bytes(out)


def lrc(wire: bytes) -> int:
    """XOR of the transmitted bytes between STX and the LRC (stuffed DATA + ETX)."""
    return reduce(xor, wire, 0)


def encode_frame(data: bytes) -> bytes:
    if not data:
        raise FrameError("empty DATA")
    body = stuff(data) + bytes([ETX])
    return bytes([STX]) + body + bytes([lrc(body)])


def decode_frame(raw: bytes) -> bytes:
    """DATA of one complete frame; raises :class:`FrameError` or :class:`ChecksumError`."""
    if len(raw) < 4 or raw[0] != STX or raw[-2] != ETX:
        raise FrameError(f"not a frame: {raw[:8].hex(' ')}")
    data = unstuff(raw[1:-2])  # also proves that raw[-2] is the first unstuffed ETX
    if not data:
        raise FrameError("empty DATA")
    expected = lrc(raw[1:-1])
    if raw[-1] != expected:
        raise ChecksumError(f"LRC {raw[-1]:02X}h, expected {expected:02X}h")
    return data


class FrameReader:
    """Delimits one frame: skips to STX, collects to an unstuffed ETX, then the LRC."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._dle = False
        self._etx = False
        self.skipped = 0

    @property
    def started(self) -> bool:
        return bool(self._buf)

    def reset(self) -> None:
        self.skipped += len(self._buf)
        self._buf.clear()

    def feed(self, data: bytes) -> tuple[bytes | None, bytes]:
        """Take bytes; return (complete raw frame or None, bytes left after it)."""
        for index, byte in enumerate(data):
            if not self._buf:
                if byte == STX:
                    self._buf.append(byte)
                    self._dle = self._etx = False
                else:
                    self.skipped += 1
                continue
            self._buf.append(byte)
            if self._etx:  # this was the LRC
                raw = bytes(self._buf)
                self._buf.clear()
                return raw, data[index + 1 :]
            if self._dle:
                self._dle = False
            elif byte == DLE:
                self._dle = True
            elif byte == ETX:
                self._etx = True
        return None, b""


# ------------------------------------------------------------------ the host's link


@dataclass
class LegacySession:
    """State of one open connection shared by its :class:`LegacyLink` exchanges."""

    needs_eot: bool = False  # the last exchange gave up: close it before the next ENQ


@dataclass(frozen=True)
class LegacyLimits:
    enq_tries: int = 5  # ENQ without ACK (silence, NAK = busy, ENQ = collision)
    frame_resends: int = 5  # our frame NAKed or not acknowledged
    answer_repeats: int = 10  # the register's frame garbled or cut off


class _State(enum.Enum):
    ENQ_SENT = "enq_sent"
    BACKOFF = "backoff"  # NAK or ENQ to our ENQ: let one CONTROL timeout (T7) pass
    FRAME_SENT = "frame_sent"
    AWAIT_ENQ = "await_enq"  # our EOT sent; the command runs until the register's ENQ
    READING = "reading"
    AWAIT_EOT = "await_eot"
    DONE = "done"


_WAITS = {_State.AWAIT_ENQ: WaitKind.ANSWER}


class LegacyLink:
    """One command over the LEGACY link, host side (see the module docstring)."""

    def __init__(
        self,
        request: Request,
        session: LegacySession | None = None,
        limits: LegacyLimits | None = None,
    ) -> None:
        self.request = Request(request.code, request.data, request.password)  # re-gated
        self.frame = encode_frame(self.request.body)
        self.session = session or LegacySession()
        self.limits = limits or LegacyLimits()
        self.retries = 0
        self.answer: bytes | None = None  # set once done (the driver loop's signal)
        self._result = b""
        self._state = _State.ENQ_SENT
        self._reader = FrameReader()
        self._control_noise = 0
        self._enqs = 0
        self._resends = 0
        self._repeats = 0

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    @property
    def noise_bytes(self) -> int:
        return self._reader.skipped + self._control_noise

    def start(self) -> list[Action]:
        actions: list[Action] = [Purge()]
        if self.session.needs_eot:
            self.session.needs_eot = False
            actions.append(Send(bytes([EOT])))
        return self._finish([*actions, *self._send_enq(first=True)])

    def receive(self, data: bytes) -> list[Action]:
        """Feed bytes that arrived; returns what to do next."""
        actions: list[Action] = []
        with _marking_failure(self.session):
            while data and not self.done:
                if self._state in (_State.READING, _State.AWAIT_EOT) and (
                    self._reader.started or data[0] == STX
                ):
                    step, data = self._on_frame_bytes(data)
                else:
                    step, data = self._on_control(data[0]), data[1:]
                actions.extend(step)
        return self._finish(actions)

    def timeout(self) -> list[Action]:
        """The last wait expired with nothing (or only part of a frame) received."""
        with _marking_failure(self.session):
            return self._finish(self._on_timeout())

    # ------------------------------------------------------------------ internals

    def _finish(self, actions: list[Action]) -> list[Action]:
        if not self.done:
            kind = _WAITS.get(self._state, WaitKind.CONTROL)
            actions.append(Wait(WaitKind.BYTE if self._reader.started else kind))
        return actions

    def _send_enq(self, first: bool = False) -> list[Action]:
        if not first:
            self.retries += 1
        self._enqs += 1
        if self._enqs > self.limits.enq_tries:
            raise LinkTimeoutError(f"register not ready after {self.limits.enq_tries} ENQ")
        self._state = _State.ENQ_SENT
        return [Send(bytes([ENQ]))]

    def _send_frame(self, resend_error: type[KktmonError] | None = None) -> list[Action]:
        """Our frame; ``resend_error`` (NAK or silence) is raised once resends run out."""
        if resend_error is not None:
            self._resends += 1
            self.retries += 1
            if self._resends > self.limits.frame_resends:
                raise resend_error(f"command not acknowledged after {self._resends} sends")
        self._state = _State.FRAME_SENT
        return [Send(self.frame)]

    def _on_control(self, byte: int) -> list[Action]:
        """One byte outside a frame."""
        state = self._state
        if state is _State.ENQ_SENT and byte in (NAK, ENQ):
            self._state = _State.BACKOFF  # busy, or a collision with the register's ENQ
            return []
        if state is _State.ENQ_SENT and byte == ACK:
            return self._send_frame()
        if state is _State.FRAME_SENT and byte in (ACK, NAK):
            if byte == NAK:
                return self._send_frame(ChecksumError)
            self._state = _State.AWAIT_ENQ
            return [Send(bytes([EOT]))]
        return self._on_register_control(byte)

    def _on_register_control(self, byte: int) -> list[Action]:
        """A control byte of the register's turn: its ENQ, or the EOT after its frame."""
        state = self._state
        if state in (_State.AWAIT_ENQ, _State.READING) and byte == ENQ:
            if state is _State.READING:  # it repeats its ENQ: our ACK was lost
                self.retries += 1
            self._state = _State.READING
            return [Send(bytes([ACK]))]
        if state is _State.AWAIT_EOT and byte == EOT:
            return self._complete()
        self._control_noise += 1
        return []

    def _on_frame_bytes(self, data: bytes) -> tuple[list[Action], bytes]:
        raw, rest = self._reader.feed(data)
        if raw is None:
            return [], b""
        try:
            answer = decode_frame(raw)
        except (FrameError, ChecksumError) as exc:
            return self._reject(str(exc), ChecksumError), rest
        # In AWAIT_EOT this is a repeat (our ACK was lost): acknowledge it again.
        self._result = answer
        self._state = _State.AWAIT_EOT
        return [Send(bytes([ACK]))], rest

    def _reject(self, reason: str, error: type[KktmonError]) -> list[Action]:
        self._repeats += 1
        self.retries += 1
        if self._repeats > self.limits.answer_repeats:
            raise error(f"answer garbled {self._repeats} times: {reason}")
        return [Send(bytes([NAK]))]

    def _on_timeout(self) -> list[Action]:
        state = self._state
        if self._reader.started:  # cut off mid-frame: NAK asks for it again
            self._reader.reset()
            return self._reject("answer cut off", LinkTimeoutError)
        if state in (_State.ENQ_SENT, _State.BACKOFF):
            return self._send_enq()
        if state is _State.FRAME_SENT:
            return self._send_frame(LinkTimeoutError)
        if state is _State.AWAIT_ENQ:
            raise LinkTimeoutError(f"no answer to {self.request.name} in time (T5)")
        if state is _State.READING:
            self._repeats += 1
            self.retries += 1
            if self._repeats > self.limits.answer_repeats:
                raise LinkTimeoutError("register announced an answer but never sent it")
            return []
        return self._complete()  # AWAIT_EOT: the answer is ours; its EOT got lost

    def _complete(self) -> list[Action]:
        self._state = _State.DONE
        self.answer = self._result
        return [Done(self._result)]


@contextlib.contextmanager
def _marking_failure(session: LegacySession) -> Iterator[None]:
    """A link that raises leaves the register mid-session: the next one starts with EOT."""
    try:
        yield
    except KktmonError:
        session.needs_eot = True
        raise
