"""The host's half of the Pirit link (pirit.md 2.6-2.7), sans-I/O.

:class:`HostLink` runs one exchange over frames from :mod:`.frame`; :class:`LinkCheck`
is the bare ``ENQ`` -> ``ACK`` probe.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kktmon.protocol.errors import (
    FrameError,
    LinkTimeoutError,
    UnexpectedAnswerError,
)
from kktmon.protocol.link import Action, Done, Purge, Send, Wait, WaitKind
from kktmon.protocol.pirit.frame import (
    ACK,
    ENQ,
    NAK,
    RECOVERY_PACKET_ID,
    STX,
    FrameReader,
    Reply,
    decode_reply_frame,
    decode_request_frame,
)

# --------------------------------------------------------------------------- host link


@dataclass(frozen=True)
class LinkLimits:
    """Patience of one exchange (pirit.md 2.7 "suggested agent policy")."""

    enq_tries: int = 1  # ENQs per liveness check before "no link" (Crystal's driver: 3)
    alive_waits: int = 1  # extra reply waits that a live answer to ENQ buys
    discarded_frames: int = 16  # stale / recovery / foreign replies tolerated
    noise_bytes: int = 4096  # bytes outside any frame tolerated


class _State(enum.Enum):
    REPLY = "reply"  # waiting for (the rest of) our reply
    LIVENESS = "liveness"  # ENQ sent after silence: waiting for ACK, NAK or STX
    DONE = "done"


class HostLink:
    """One command exchange, host side; never re-sends the command itself.

    Usage (the driver loop of :mod:`kktmon.protocol.link`)::

        link = HostLink(pirit_commands.request_status(packet_id=ids.next()))
        actions = link.start()          # Purge, Send(frame), Wait(ANSWER)
        ... actions = link.receive(data) if data else link.timeout() ...
        reply = link.answer             # a Reply with our packet id and command

    On silence (an ANSWER wait expired) it sends ``ENQ`` and waits CONTROL for ``ACK``,
    ``NAK`` or ``STX`` (any of them proves the register alive, :attr:`alive`), then
    waits for the reply once more per :attr:`LinkLimits.alive_waits`. Exhausted waits
    raise :class:`LinkTimeoutError`; ``alive`` tells a register that answers ENQ but not
    the command (the driver asks a read again, with a fresh id) from a dead line; a frame cut
    mid-way raises :class:`FrameError`, a bad checksum :class:`ChecksumError` (pirit.md
    quirk 3: report, do not resend). Replies with another packet id or command are
    dropped into :attr:`discarded` and reading goes on.
    """

    def __init__(self, request: bytes, limits: LinkLimits | None = None) -> None:
        decoded = decode_request_frame(request)
        if decoded.packet_id == RECOVERY_PACKET_ID:
            raise FrameError("packet id 20h is the register's recovery id: never ours")
        self.request = request
        self.packet_id = decoded.packet_id
        self.command = decoded.command
        self.limits = limits or LinkLimits()
        self.retries = 0
        self.noise_bytes = 0
        self.alive = False
        self.discarded: list[Reply] = []
        self.answer: Reply | None = None
        self._state = _State.REPLY
        self._reader = FrameReader()
        self._silences = 0
        self._enqs = 0

    @property
    def done(self) -> bool:
        return self._state is _State.DONE

    def start(self) -> list[Action]:
        return [Purge(), Send(self.request), Wait(WaitKind.ANSWER)]

    def receive(self, data: bytes) -> list[Action]:
        """Feed bytes that arrived; returns what to do next."""
        actions: list[Action] = []
        while data and not self.done:
            if self._state is _State.LIVENESS:
                data = self._on_liveness(data)
            else:
                data = self._on_reply_bytes(data, actions)
        if self.noise_bytes > self.limits.noise_bytes:
            raise FrameError(f"{self.noise_bytes} bytes of line noise and no reply")
        return self._finish(actions)

    def timeout(self) -> list[Action]:
        """The last wait expired with nothing (or not enough) received."""
        if self._state is _State.LIVENESS:
            if self._enqs >= self.limits.enq_tries:
                raise LinkTimeoutError(f"no answer to {self._enqs} ENQ: no link")
            return self._finish(self._send_enq())
        if self._reader.started:
            raise FrameError(f"reply to {self.command:02X}h cut off mid-frame")
        self._silences += 1
        if self._silences > self.limits.alive_waits:
            busy = " although the register answers ENQ (busy)" if self.alive else ""
            raise LinkTimeoutError(f"no reply to {self.command:02X}h{busy}")
        self._enqs = 0
        return self._finish(self._send_enq())

    def _finish(self, actions: list[Action]) -> list[Action]:
        if self._state is _State.LIVENESS:
            actions.append(Wait(WaitKind.CONTROL))
        elif not self.done:
            actions.append(Wait(WaitKind.BYTE if self._reader.started else WaitKind.ANSWER))
        return actions

    def _send_enq(self) -> list[Action]:
        # No Purge here: the start of our reply may already be in the buffer.
        self._state = _State.LIVENESS
        self._enqs += 1
        self.retries += 1
        return [Send(bytes([ENQ]))]

    def _on_liveness(self, data: bytes) -> bytes:
        for index, byte in enumerate(data):
            if byte in (ACK, NAK, STX):
                self.alive = True
                self._state = _State.REPLY
                # STX is the reply itself starting: hand it to the frame reader.
                return data[index:] if byte == STX else data[index + 1 :]
            self.noise_bytes += 1
        return b""

    def _on_reply_bytes(self, data: bytes, actions: list[Action]) -> bytes:
        before = self._reader.skipped
        raw, rest = self._reader.feed(data)
        self.noise_bytes += self._reader.skipped - before
        if raw is None:
            return b""
        reply = decode_reply_frame(raw)
        if reply.packet_id == self.packet_id and reply.command == self.command:
            self._state = _State.DONE
            self.answer = reply
            actions.append(Done(reply))
            return b""  # a trailing ACK (answer to a busy-time ENQ) is dropped with it
        self.discarded.append(reply)
        if len(self.discarded) > self.limits.discarded_frames:
            raise UnexpectedAnswerError(
                f"{len(self.discarded)} replies with other ids while waiting for "
                f"{self.packet_id:02X}h/{self.command:02X}h"
            )
        return rest


class LinkCheck:
    """``ENQ`` -> ``ACK``: is a register listening (at this baud rate)? pirit.md 2.5.

    :attr:`answer` is the control byte that came back: ``ACK``, or ``NAK`` (which also
    proves a live register; baud probing keeps only ``ACK``). Other bytes (a reply to
    somebody else still streaming, garbage at a wrong baud rate) are noise. ``tries``
    ENQs without a control byte raise :class:`LinkTimeoutError`.
    """

    def __init__(self, tries: int = 1) -> None:
        self.tries = tries
        self.retries = 0
        self.noise_bytes = 0
        self.answer: int | None = None
        self._sent = 0

    @property
    def done(self) -> bool:
        return self.answer is not None

    def start(self) -> list[Action]:
        self._sent = 1
        return [Purge(), Send(bytes([ENQ])), Wait(WaitKind.CONTROL)]

    def receive(self, data: bytes) -> list[Action]:
        if self.done:
            return []
        for byte in data:
            if byte in (ACK, NAK):
                self.answer = byte
                return [Done(byte)]
            self.noise_bytes += 1
        return [Wait(WaitKind.CONTROL)]

    def timeout(self) -> list[Action]:
        if self._sent >= self.tries:
            raise LinkTimeoutError(f"no answer to {self._sent} ENQ: no link")
        self._sent += 1
        self.retries += 1
        return [Send(bytes([ENQ])), Wait(WaitKind.CONTROL)]
