"""HostLink, the host half of the ENQ/ACK/NAK link (shtrih-m.md section 3), driven by script.

No I/O: a :class:`Conversation` plays the register's side as a list of byte chunks and
timeouts and records everything the link asked to do. ``retries`` counts recovery
rounds: one per extra ENQ (silence, a drained stale answer, a rejected answer) and one
per resent frame.
"""

from __future__ import annotations

import pytest
import shtrih_vectors as sv
from hypothesis import given, settings
from hypothesis import strategies as st

from kktmon.protocol.errors import ChecksumError, KktmonError, LinkTimeoutError
from kktmon.protocol.link import Action, Done, Purge, Send, Wait, WaitKind
from kktmon.protocol.shtrih.frame import Frame, decode_frame
from kktmon.protocol.shtrih.link import HostLink, LinkLimits

ENQ, ACK, NAK, FF = b"\x05", b"\x06", b"\x15", b"\xff"
TIMEOUT = None
REQUEST = sv.VECTORS[0].request or b""  # E1: FCh
ANSWER = sv.VECTORS[0].answer or b""
OUR_FRAME = decode_frame(ANSWER)
STALE = sv.VECTORS[2].answer or b""  # E3: somebody else's 10h answer
BAD_LRC = ANSWER[:-1] + bytes([ANSWER[-1] ^ 0x01])


class Conversation:
    """A HostLink plus the register's scripted side and the log of actions."""

    def __init__(self, limits: LinkLimits | None = None) -> None:
        self.link = HostLink(REQUEST, limits)
        self.log: list[Action] = list(self.link.start())

    def device(self, *events: bytes | None) -> list[Action]:
        """Deliver chunks (``TIMEOUT`` = the last wait expired); returns the last actions."""
        actions: list[Action] = []
        for event in events:
            actions = self.link.timeout() if event is None else self.link.receive(event)
            self.log.extend(actions)
        return actions

    @property
    def sent(self) -> list[bytes]:
        return [action.data for action in self.log if isinstance(action, Send)]

    def waiting_for(self) -> WaitKind | None:
        last = self.log[-1]
        return last.kind if isinstance(last, Wait) else None

    @property
    def answer(self) -> Frame:
        assert self.link.done and self.link.answer is not None
        done = [action.answer for action in self.log if isinstance(action, Done)]
        assert done == [self.link.answer]
        return self.link.answer


# ------------------------------------------------------------------ the happy path


def test_canonical_exchange_section_3_3() -> None:
    talk = Conversation()
    for side, data in sv.CANONICAL_EXCHANGE:
        if side == "dev":
            talk.device(data)
    assert talk.sent == [data for side, data in sv.CANONICAL_EXCHANGE if side == "host"]
    assert talk.log == [
        Purge(),
        Send(ENQ),
        Wait(WaitKind.CONTROL),
        Send(REQUEST),
        Wait(WaitKind.CONTROL),
        Wait(WaitKind.ANSWER),
        Send(ACK),
        Done(OUR_FRAME),
    ]
    assert talk.answer == OUR_FRAME
    assert (talk.link.retries, talk.link.noise_bytes) == (0, 0)


def test_ack_and_answer_in_one_chunk() -> None:
    talk = Conversation()
    talk.device(NAK, ACK + ANSWER)
    assert talk.sent == [ENQ, REQUEST, ACK]
    assert talk.answer == OUR_FRAME


def test_answer_byte_by_byte_waits_with_the_byte_timeout() -> None:
    talk = Conversation()
    talk.device(NAK, ACK)
    assert talk.waiting_for() is WaitKind.ANSWER
    for byte in ANSWER[:-1]:
        talk.device(bytes([byte]))
        assert talk.waiting_for() is WaitKind.BYTE
    talk.device(ANSWER[-1:])
    assert talk.answer == OUR_FRAME


# ------------------------------------------------------------------ stray 0xFF (quirk 11.1)


@pytest.mark.parametrize(
    "script",
    [
        [FF, NAK, ACK, ANSWER],
        [FF + NAK, ACK, ANSWER],
        [NAK + FF, ACK, ANSWER],
        [NAK, FF, ACK, ANSWER],
        [NAK, FF + ACK, ANSWER],
        [NAK, ACK + FF, ANSWER],
        [NAK, ACK, FF + ANSWER],
    ],
    ids=["ff-before-nak", "ff+nak", "nak+ff", "ff-before-ack", "ff+ack", "ack+ff", "ff+answer"],
)
def test_stray_ff_is_ignored_around_control_bytes(script: list[bytes]) -> None:
    talk = Conversation()
    talk.device(*script)
    assert talk.sent == [ENQ, REQUEST, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 0


def test_ff_after_our_ack_shows_up_before_the_next_nak() -> None:
    first = Conversation()
    first.device(NAK, ACK, ANSWER)
    second = Conversation()  # the next command on the same TCP link
    second.device(FF, NAK, ACK, ANSWER + FF)
    assert second.sent == [ENQ, REQUEST, ACK]
    assert second.answer == OUR_FRAME
    assert second.link.noise_bytes == 1
    assert second.link.retries == 0


# ------------------------------------------------------------------ pending answers (quirk 11.2)


def test_pending_stale_answer_is_drained_and_not_returned() -> None:
    talk = Conversation()
    actions = talk.device(ACK, STALE)
    assert actions == [Send(ACK), Purge(), Send(ENQ), Wait(WaitKind.CONTROL)]
    talk.device(FF, NAK, ACK, ANSWER)
    assert talk.sent == [ENQ, ACK, ENQ, REQUEST, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 1


def test_pending_stale_answer_in_pieces() -> None:
    talk = Conversation()
    talk.device(ACK, STALE[:3], STALE[3:], NAK, ACK, ANSWER)
    assert talk.sent == [ENQ, ACK, ENQ, REQUEST, ACK]
    assert talk.answer == OUR_FRAME


def test_gives_up_after_three_pending_answers() -> None:
    talk = Conversation()
    talk.device(*[ACK + STALE] * 3)
    assert talk.sent == [ENQ, ACK] * 3 + [ENQ]
    assert talk.link.retries == 3
    with pytest.raises(LinkTimeoutError):
        talk.device(ACK)
    assert REQUEST not in talk.sent


def test_three_pending_answers_then_idle_still_succeeds() -> None:
    talk = Conversation()
    talk.device(*[ACK + STALE] * 3, NAK, ACK, ANSWER)
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 3


# ------------------------------------------------------------------ our frame NAKed


def test_nak_to_our_frame_resends_it() -> None:
    talk = Conversation()
    talk.device(NAK, NAK, ACK, ANSWER)
    assert talk.sent == [ENQ, REQUEST, REQUEST, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 1


def test_gives_up_after_three_resends() -> None:
    talk = Conversation()
    talk.device(NAK, NAK, NAK, NAK)
    assert talk.sent == [ENQ] + [REQUEST] * 4
    with pytest.raises(ChecksumError):
        talk.device(NAK)
    assert talk.sent == [ENQ] + [REQUEST] * 4


# ------------------------------------------------------------------ silence


def test_silence_retries_enq_then_reports_no_link() -> None:
    talk = Conversation()
    for tries in range(1, 10):
        assert talk.device(TIMEOUT) == [Purge(), Send(ENQ), Wait(WaitKind.CONTROL)]
        assert talk.link.retries == tries
    with pytest.raises(LinkTimeoutError) as caught:
        talk.device(TIMEOUT)
    assert isinstance(caught.value, TimeoutError)
    assert talk.sent == [ENQ] * 10


def test_late_reply_after_silent_enqs() -> None:
    talk = Conversation()
    talk.device(TIMEOUT, TIMEOUT, NAK, ACK, ANSWER)
    assert talk.sent == [ENQ, ENQ, ENQ, REQUEST, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 2


def test_enq_limit_is_configurable() -> None:
    talk = Conversation(LinkLimits(enq_tries=2))
    talk.device(TIMEOUT)
    with pytest.raises(LinkTimeoutError):
        talk.device(TIMEOUT)
    assert talk.sent == [ENQ, ENQ]


def test_no_control_byte_after_our_frame_then_ack_means_our_answer() -> None:
    talk = Conversation()
    talk.device(NAK)
    assert talk.device(TIMEOUT) == [Purge(), Send(ENQ), Wait(WaitKind.CONTROL)]
    talk.device(ACK, ANSWER)
    assert talk.sent == [ENQ, REQUEST, ENQ, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 1


def test_no_control_byte_after_our_frame_then_nak_means_resend() -> None:
    talk = Conversation()
    talk.device(NAK, TIMEOUT, NAK, ACK, ANSWER)
    assert talk.sent == [ENQ, REQUEST, ENQ, REQUEST, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 1


def test_slow_command_no_stx_in_time_then_enq_ack() -> None:
    talk = Conversation()
    talk.device(NAK, ACK, TIMEOUT, ACK, ANSWER)
    assert talk.sent == [ENQ, REQUEST, ENQ, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 1


# ------------------------------------------------------------------ garbled answers


def test_bad_lrc_answer_is_naked_and_repeated() -> None:
    talk = Conversation()
    talk.device(NAK, ACK)
    assert talk.device(BAD_LRC) == [Send(NAK), Purge(), Send(ENQ), Wait(WaitKind.CONTROL)]
    talk.device(ACK, ANSWER)
    assert talk.sent == [ENQ, REQUEST, NAK, ENQ, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 1


def test_bad_lrc_then_lost_answer_resends_the_command() -> None:
    talk = Conversation()
    talk.device(NAK, ACK, BAD_LRC, NAK, ACK, ANSWER)
    assert talk.sent == [ENQ, REQUEST, NAK, ENQ, REQUEST, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 1


def test_gives_up_after_three_garbled_repeats() -> None:
    talk = Conversation()
    talk.device(NAK, ACK, BAD_LRC, *[ACK + BAD_LRC] * 2, ACK)
    assert talk.sent == [ENQ, REQUEST] + [NAK, ENQ] * 3
    with pytest.raises(ChecksumError):
        talk.device(BAD_LRC)


def test_answer_cut_mid_frame_is_naked_and_repeated() -> None:
    talk = Conversation()
    talk.device(NAK, ACK, ANSWER[:10])
    assert talk.waiting_for() is WaitKind.BYTE
    assert talk.device(TIMEOUT) == [Send(NAK), Purge(), Send(ENQ), Wait(WaitKind.CONTROL)]
    talk.device(ACK, ANSWER)
    assert talk.sent == [ENQ, REQUEST, NAK, ENQ, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 1


def test_garbage_before_stx_is_skipped() -> None:
    talk = Conversation()
    talk.device(NAK, ACK, b"\x00\x00\x00\x00", b"\x13\x37" + ANSWER)
    assert talk.sent == [ENQ, REQUEST, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.noise_bytes == 6
    assert talk.link.retries == 0


def test_bytes_after_the_answer_are_left_alone() -> None:
    talk = Conversation()
    talk.device(NAK, ACK, ANSWER + FF + ANSWER)
    assert talk.sent == [ENQ, REQUEST, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.device(ANSWER) == []


def test_bad_answer_while_draining_counts_as_a_repeat() -> None:
    talk = Conversation()
    talk.device(ACK, STALE[:-1] + b"\x00", ACK, STALE, NAK, ACK, ANSWER)
    assert talk.sent == [ENQ, NAK, ENQ, ACK, ENQ, REQUEST, ACK]
    assert talk.answer == OUR_FRAME
    assert talk.link.retries == 2


# ------------------------------------------------------------------ any register behaviour

device_events = st.lists(
    st.one_of(
        st.none(),
        st.sampled_from([ACK, NAK, FF, ANSWER, STALE, BAD_LRC, ANSWER[:7], ANSWER[7:]]),
        st.binary(min_size=1, max_size=8),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(events=device_events)
def test_any_register_behaviour_ends_typed_and_bounded(events: list[bytes | None]) -> None:
    talk = Conversation()
    try:
        for event in events:
            if talk.link.done:
                break
            talk.device(event)
    except KktmonError as exc:
        assert isinstance(exc, LinkTimeoutError | ChecksumError)
    limits = LinkLimits()
    assert talk.sent.count(ENQ) <= limits.enq_tries
    assert talk.sent.count(REQUEST) <= limits.enq_tries + limits.frame_resends
    if talk.link.done:
        # Only an answer that came after our command can be returned as ours.
        assert REQUEST in talk.sent
        assert talk.answer.body
    else:
        assert talk.link.answer is None
