"""LegacyLink, the host half of the ATOL 2.4 ENQ/ACK/EOT exchange (atol.md 2.2), by script.

No I/O: a :class:`Conversation` plays the register's side as byte chunks and timeouts
and records every action. ``retries`` counts recovery rounds: extra ENQs, resent
frames, NAKed or repeated answers.
"""

from __future__ import annotations

import atol_vectors as av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kktmon.protocol.atol.commands import Request, request_register, request_status_code
from kktmon.protocol.atol.legacy import (
    ACK,
    ENQ,
    EOT,
    NAK,
    LegacyLimits,
    LegacyLink,
    LegacySession,
    answer_timeout_s,
)
from kktmon.protocol.errors import ChecksumError, KktmonError, LinkTimeoutError
from kktmon.protocol.link import Action, Done, Purge, Send, Wait, WaitKind

TIMEOUT = None
E6 = av.EXCHANGES[3]
FRAME = E6.legacy_request
ANSWER = E6.legacy_answer
BAD = ANSWER[:-1] + bytes([ANSWER[-1] ^ 0x01])
C_ENQ, C_ACK, C_NAK, C_EOT = bytes([ENQ]), bytes([ACK]), bytes([NAK]), bytes([EOT])
CONTROL, BYTE = Wait(WaitKind.CONTROL), Wait(WaitKind.BYTE)


class Conversation:
    """A LegacyLink plus the register's scripted side and the log of actions."""

    def __init__(
        self,
        request: Request | None = None,
        session: LegacySession | None = None,
        limits: LegacyLimits | None = None,
    ) -> None:
        self.session = session or LegacySession()
        self.link = LegacyLink(request or E6.build(), self.session, limits)
        self.log: list[Action] = list(self.link.start())

    def device(self, *events: bytes | None) -> list[Action]:
        actions: list[Action] = []
        for event in events:
            actions = self.link.timeout() if event is None else self.link.receive(event)
            self.log.extend(actions)
        return actions

    @property
    def sent(self) -> list[bytes]:
        return [a.data for a in self.log if isinstance(a, Send)]

    def waiting_for(self) -> WaitKind | None:
        last = self.log[-1]
        return last.kind if isinstance(last, Wait) else None

    @property
    def answer(self) -> bytes:
        assert self.link.done and self.link.answer is not None
        assert [a.answer for a in self.log if isinstance(a, Done)] == [self.link.answer]
        return self.link.answer


# ------------------------------------------------------------------ the happy path


def test_canonical_exchange_section_2_2() -> None:
    talk = Conversation()
    assert talk.log == [Purge(), Send(C_ENQ), CONTROL]
    assert talk.device(C_ACK) == [Send(FRAME), CONTROL]
    assert talk.device(C_ACK) == [Send(C_EOT), Wait(WaitKind.ANSWER)]
    assert talk.device(C_ENQ) == [Send(C_ACK), CONTROL]
    assert talk.device(ANSWER) == [Send(C_ACK), CONTROL]
    assert not talk.link.done and talk.link.answer is None
    assert talk.device(C_EOT) == [Done(E6.answer)]
    assert talk.answer == E6.answer
    assert (talk.link.retries, talk.link.noise_bytes) == (0, 0)
    assert not talk.session.needs_eot


@pytest.mark.parametrize("exchange", av.EXCHANGES, ids=[ex.name for ex in av.EXCHANGES])
def test_every_example_runs_through_the_link(exchange: av.Exchange) -> None:
    talk = Conversation(exchange.build())
    talk.device(C_ACK, C_ACK, C_ENQ, exchange.legacy_answer, C_EOT)
    assert talk.sent == [C_ENQ, exchange.legacy_request, C_EOT, C_ACK, C_ACK]
    assert exchange.parse(talk.answer) == exchange.parse(exchange.answer)


def test_answer_byte_by_byte_waits_with_the_byte_timeout() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_ACK, C_ENQ)
    for byte in ANSWER[:-1]:
        talk.device(bytes([byte]))
        assert talk.waiting_for() is WaitKind.BYTE
    talk.device(ANSWER[-1:], C_EOT)
    assert talk.answer == E6.answer


def test_answer_and_eot_in_one_chunk() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_ACK, C_ENQ + ANSWER + C_EOT)
    assert talk.answer == E6.answer


# ------------------------------------------------------------------ the ENQ phase


@pytest.mark.parametrize("reply", [C_NAK, C_ENQ], ids=["busy", "collision"])
def test_nak_or_enq_to_enq_backs_off_one_wait_then_retries(reply: bytes) -> None:
    talk = Conversation()
    assert talk.device(reply) == [CONTROL]
    assert talk.device(C_ACK) == [CONTROL]  # inside the back-off: ignored
    assert talk.device(TIMEOUT) == [Send(C_ENQ), CONTROL]
    talk.device(C_ACK, C_ACK, C_ENQ, ANSWER, C_EOT)
    assert talk.answer == E6.answer
    assert talk.link.retries == 1


def test_silence_to_enq_gives_up_after_five_and_closes_with_eot_next_time() -> None:
    session = LegacySession()
    talk = Conversation(session=session)
    for _ in range(4):
        assert talk.device(TIMEOUT) == [Send(C_ENQ), CONTROL]
    with pytest.raises(LinkTimeoutError):
        talk.device(TIMEOUT)
    assert talk.sent == [C_ENQ] * 5
    assert session.needs_eot
    following = Conversation(session=session)
    assert following.log == [Purge(), Send(C_EOT), Send(C_ENQ), CONTROL]
    assert not session.needs_eot


def test_stale_eot_and_noise_before_ack_are_ignored() -> None:
    talk = Conversation()
    talk.device(C_EOT + b"\xff", C_ACK, C_ACK, C_ENQ, ANSWER, C_EOT)
    assert talk.answer == E6.answer
    assert talk.link.noise_bytes == 2 and talk.link.retries == 0


# ------------------------------------------------------------------ our frame


def test_nak_to_our_frame_resends_it() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_NAK, C_ACK, C_ENQ, ANSWER, C_EOT)
    assert talk.sent == [C_ENQ, FRAME, FRAME, C_EOT, C_ACK, C_ACK]
    assert talk.answer == E6.answer and talk.link.retries == 1


def test_gives_up_after_five_naks_with_a_checksum_error() -> None:
    talk = Conversation()
    talk.device(C_ACK, *[C_NAK] * 5)
    assert talk.sent == [C_ENQ] + [FRAME] * 6
    with pytest.raises(ChecksumError):
        talk.device(C_NAK)
    assert talk.session.needs_eot


def test_silence_after_our_frame_resends_then_times_out() -> None:
    talk = Conversation()
    talk.device(C_ACK, *[TIMEOUT] * 5)
    with pytest.raises(LinkTimeoutError):
        talk.device(TIMEOUT)
    assert talk.sent == [C_ENQ] + [FRAME] * 6


# ------------------------------------------------------------------ the register's turn


def test_no_enq_within_t5_raises_and_next_exchange_starts_with_eot() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_ACK)
    assert talk.waiting_for() is WaitKind.ANSWER
    with pytest.raises(LinkTimeoutError):
        talk.device(TIMEOUT)
    assert Conversation(session=talk.session).log[:3] == [Purge(), Send(C_EOT), Send(C_ENQ)]


def test_noise_while_the_command_runs_is_ignored() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_ACK, b"\x00\xff", C_ENQ, ANSWER, C_EOT)
    assert talk.answer == E6.answer and talk.link.noise_bytes == 2


def test_bad_lrc_answer_is_naked_and_resent() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_ACK, C_ENQ)
    assert talk.device(BAD) == [Send(C_NAK), CONTROL]
    talk.device(ANSWER, C_EOT)
    assert talk.sent == [C_ENQ, FRAME, C_EOT, C_ACK, C_NAK, C_ACK]
    assert talk.answer == E6.answer and talk.link.retries == 1


def test_gives_up_after_ten_garbled_answers() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_ACK, C_ENQ, *[BAD] * 10)
    with pytest.raises(ChecksumError):
        talk.device(BAD)


def test_answer_cut_mid_frame_is_naked() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_ACK, C_ENQ, ANSWER[:10])
    assert talk.waiting_for() is WaitKind.BYTE
    assert talk.device(TIMEOUT) == [Send(C_NAK), CONTROL]
    talk.device(ANSWER, C_EOT)
    assert talk.answer == E6.answer


def test_repeated_enq_means_our_ack_was_lost() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_ACK, C_ENQ)
    assert talk.device(C_ENQ) == [Send(C_ACK), CONTROL]
    talk.device(ANSWER, C_EOT)
    assert talk.answer == E6.answer and talk.link.retries == 1


def test_announced_answer_that_never_comes_times_out() -> None:
    talk = Conversation(limits=LegacyLimits(answer_repeats=2))
    talk.device(C_ACK, C_ACK, C_ENQ, TIMEOUT, TIMEOUT)
    with pytest.raises(LinkTimeoutError):
        talk.device(TIMEOUT)


def test_repeated_frame_means_our_ack_was_lost() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_ACK, C_ENQ, ANSWER)
    assert talk.device(ANSWER) == [Send(C_ACK), CONTROL]
    talk.device(C_EOT)
    assert talk.answer == E6.answer


def test_missing_eot_still_delivers_the_answer() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_ACK, C_ENQ, ANSWER)
    assert talk.device(TIMEOUT) == [Done(E6.answer)]


def test_bytes_after_the_eot_are_left_alone() -> None:
    talk = Conversation()
    talk.device(C_ACK, C_ACK, C_ENQ, ANSWER, C_EOT + C_ENQ + ANSWER)
    assert talk.answer == E6.answer
    assert talk.device(C_ENQ) == []


# ------------------------------------------------------------------ any register behaviour

device_events = st.lists(
    st.one_of(
        st.none(),
        st.sampled_from([C_ACK, C_NAK, C_ENQ, C_EOT, ANSWER, BAD, ANSWER[:7], ANSWER[7:]]),
        st.binary(min_size=1, max_size=8),
    ),
    max_size=50,
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
        assert talk.session.needs_eot
    limits = LegacyLimits()
    assert set(talk.sent) <= {C_ENQ, C_ACK, C_NAK, C_EOT, FRAME}
    assert talk.sent.count(C_ENQ) <= limits.enq_tries
    assert talk.sent.count(FRAME) <= 1 + limits.frame_resends
    if talk.link.done:
        assert FRAME in talk.sent and C_EOT in talk.sent
        assert talk.answer
    else:
        assert talk.link.answer is None or talk.log[-1] != Done(talk.link.answer)


def test_t5_is_per_command() -> None:
    assert answer_timeout_s(request_register(0x12)) == 45.0
    assert answer_timeout_s(request_status_code()) == 10.0


def test_probe_with_one_enq() -> None:
    talk = Conversation(request_status_code(), limits=LegacyLimits(enq_tries=1))
    with pytest.raises(LinkTimeoutError):
        talk.device(TIMEOUT)
    assert talk.sent == [C_ENQ]
