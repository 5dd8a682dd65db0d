"""The host's half of the Shtrih-M ENQ/ACK/NAK link (reference section 3.2), sans-I/O.

:class:`HostLink` runs one command exchange over frames from :mod:`.frame`; see that
module's docstring for the exchange as the register expects it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from kktmon.protocol.errors import ChecksumError, FrameError, LinkTimeoutError

# The link actions are vendor-neutral (protocol/link.py); listed in ``__all__`` so the
# existing ``from kktmon.protocol.shtrih import Send, ...`` keeps working.
from kktmon.protocol.link import Action, Done, Purge, Send, Wait, WaitKind
from kktmon.protocol.shtrih.frame import (
    ACK,
    ENQ,
    NAK,
    Frame,
    FrameReader,
    decode_frame,
)

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
