"""The Pirit host link (pirit.md 2.5-2.7 and quirks 2-6), driven by script.

No I/O: a :class:`Conversation` plays the register's side as byte chunks and timeouts
and records every action. The link sends its frame once, never again; silence is met
with ``ENQ``; replies with another packet id are stale and dropped.
"""

from __future__ import annotations

import pirit_vectors as pv
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kktmon.protocol.errors import (
    ChecksumError,
    DeviceError,
    FrameError,
    KktmonError,
    LinkTimeoutError,
    UnexpectedAnswerError,
)
from kktmon.protocol.link import Action, Done, Purge, Send, Wait, WaitKind
from kktmon.protocol.pirit.commands import answer_fields, request_status
from kktmon.protocol.pirit.fn_records import parse_ofd_queue
from kktmon.protocol.pirit.frame import Reply, decode_reply_frame, encode_request_frame
from kktmon.protocol.pirit.link import HostLink, LinkCheck, LinkLimits

ENQ, ACK, NAK, LF = b"\x05", b"\x06", b"\x15", b"\x0a"
TIMEOUT = None
OFD = pv.VECTORS[4]  # example 6: 78h/7 with id 24h
REQUEST, REPLY = OFD.request or b"", OFD.reply or b""
OURS = decode_reply_frame(REPLY)
STALE = pv.reply_frame(0x78, "7", "0", packet_id=0x23)  # an earlier request's reply
RECOVERY = pv.VECTORS[1].reply or b""  # example 3: id 20h
SAME_ID_OTHER_COMMAND = pv.reply_frame(0x00, "0", "0", "0", packet_id=0x24)
BAD_CHECKSUM = REPLY[:-1] + (b"E" if REPLY[-1:] != b"E" else b"F")


class Conversation:
    """A HostLink plus the register's scripted side and the log of actions."""

    def __init__(self, limits: LinkLimits | None = None, request: bytes = REQUEST) -> None:
        self.link = HostLink(request, limits)
        self.log: list[Action] = list(self.link.start())

    def device(self, *events: bytes | None) -> list[Action]:
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
    def answer(self) -> Reply:
        assert self.link.done and self.link.answer is not None
        assert [a.answer for a in self.log if isinstance(a, Done)] == [self.link.answer]
        return self.link.answer


# ------------------------------------------------------------------ the happy path


def test_one_exchange() -> None:
    talk = Conversation()
    talk.device(REPLY)
    assert talk.log == [Purge(), Send(REQUEST), Wait(WaitKind.ANSWER), Done(OURS)]
    assert parse_ofd_queue(talk.answer).unsent_count == 3
    assert (talk.link.retries, talk.link.noise_bytes, talk.link.discarded) == (0, 0, [])


def test_reply_byte_by_byte_waits_with_the_byte_timeout() -> None:
    talk = Conversation()
    for byte in REPLY[:-1]:
        talk.device(bytes([byte]))
        assert talk.waiting_for() is WaitKind.BYTE
    talk.device(REPLY[-1:])
    assert talk.answer == OURS


def test_link_reads_its_id_and_command_from_the_request() -> None:
    link = HostLink(REQUEST)
    assert (link.packet_id, link.command) == (0x24, 0x78)


def test_error_reply_is_still_our_answer() -> None:
    error = pv.reply_frame(0x78, packet_id=0x24, error=0x03)
    talk = Conversation()
    talk.device(error)
    with pytest.raises(DeviceError):
        answer_fields(talk.answer, 0x78, 7)


# ------------------------------------------------------------------ noise and stale replies


@pytest.mark.parametrize(
    "noise", [b"\xff\x00garbage", ACK, ACK * 3, b"\x1c\x03", b"\x03AB"], ids=repr
)
def test_noise_before_stx_is_skipped(noise: bytes) -> None:
    talk = Conversation()
    talk.device(noise + REPLY)
    assert talk.answer == OURS
    assert talk.link.noise_bytes == len(noise)


def test_trailing_ack_after_the_reply_is_dropped() -> None:
    # Quirk 2: the ACK answering an ENQ sent while busy arrives after the reply.
    talk = Conversation()
    talk.device(REPLY + ACK)
    assert talk.answer == OURS


@pytest.mark.parametrize(
    "other",
    [STALE, RECOVERY, SAME_ID_OTHER_COMMAND],
    ids=["stale id 23h", "recovery id 20h", "our id, other command"],
)
def test_reply_for_someone_else_is_dropped(other: bytes) -> None:
    talk = Conversation()
    talk.device(other + REPLY)
    assert talk.answer == OURS
    assert talk.link.discarded == [decode_reply_frame(other)]


def test_stale_reply_in_its_own_chunk_keeps_the_wait() -> None:
    talk = Conversation()
    talk.device(STALE)
    assert not talk.link.done and talk.waiting_for() is WaitKind.ANSWER
    talk.device(REPLY)
    assert talk.answer == OURS


def test_cut_frame_followed_by_ours_restarts_at_the_new_stx() -> None:
    talk = Conversation()
    cut = STALE[:7]
    talk.device(cut + REPLY)
    assert talk.answer == OURS
    assert talk.link.noise_bytes == len(cut)


def test_too_many_foreign_replies_raise() -> None:
    talk = Conversation(LinkLimits(discarded_frames=2))
    with pytest.raises(UnexpectedAnswerError):
        talk.device(STALE, STALE, STALE)


def test_endless_noise_raises() -> None:
    talk = Conversation(LinkLimits(noise_bytes=100))
    with pytest.raises(FrameError):
        talk.device(b"\xaa" * 60, b"\xaa" * 60)


def test_bad_checksum_is_reported_not_resent() -> None:
    talk = Conversation()
    with pytest.raises(ChecksumError):
        talk.device(BAD_CHECKSUM)
    assert talk.sent == [REQUEST]


# ------------------------------------------------------------------ silence and ENQ


def test_silence_then_enq_ack_then_reply() -> None:
    talk = Conversation()
    assert talk.device(TIMEOUT) == [Send(ENQ), Wait(WaitKind.CONTROL)]
    assert talk.device(ACK) == [Wait(WaitKind.ANSWER)]
    talk.device(REPLY)
    assert talk.answer == OURS
    assert talk.sent == [REQUEST, ENQ]
    assert (talk.link.retries, talk.link.alive) == (1, True)


def test_nak_to_enq_also_proves_the_register_alive() -> None:
    talk = Conversation()
    talk.device(TIMEOUT, NAK, REPLY)
    assert talk.answer == OURS and talk.link.alive


def test_reply_starting_while_waiting_for_ack() -> None:
    # The register was busy sending: STX arrives first, its ACK after the reply.
    talk = Conversation()
    talk.device(TIMEOUT, REPLY[:5], REPLY[5:] + ACK)
    assert talk.answer == OURS


def test_ack_and_reply_in_one_chunk() -> None:
    talk = Conversation()
    talk.device(TIMEOUT, b"\xee" + ACK + REPLY)
    assert talk.answer == OURS
    assert talk.link.noise_bytes == 1


def test_no_answer_to_enq_means_no_link() -> None:
    talk = Conversation()
    talk.device(TIMEOUT)
    with pytest.raises(LinkTimeoutError, match="no link"):
        talk.device(TIMEOUT)
    assert not talk.link.alive


def test_alive_but_silent_register_times_out_as_busy() -> None:
    talk = Conversation()
    talk.device(TIMEOUT, ACK)
    with pytest.raises(LinkTimeoutError, match="busy"):
        talk.device(TIMEOUT)
    assert talk.link.alive
    assert talk.sent == [REQUEST, ENQ]  # the command itself went out once


def test_more_patience_with_larger_limits() -> None:
    talk = Conversation(LinkLimits(enq_tries=3, alive_waits=2))
    talk.device(TIMEOUT, TIMEOUT, TIMEOUT, ACK, TIMEOUT, ACK, REPLY)
    assert talk.answer == OURS
    assert talk.sent == [REQUEST, ENQ, ENQ, ENQ, ENQ]
    assert talk.link.retries == 4


def test_enq_tries_are_bounded() -> None:
    talk = Conversation(LinkLimits(enq_tries=3))
    talk.device(TIMEOUT, TIMEOUT, TIMEOUT)
    with pytest.raises(LinkTimeoutError):
        talk.device(TIMEOUT)
    assert talk.sent == [REQUEST, ENQ, ENQ, ENQ]


def test_gap_inside_a_frame_is_a_broken_frame() -> None:
    talk = Conversation()
    talk.device(REPLY[:10])
    assert talk.waiting_for() is WaitKind.BYTE
    with pytest.raises(FrameError, match="cut off"):
        talk.device(TIMEOUT)


def test_recovery_id_request_is_refused() -> None:
    with pytest.raises(FrameError):
        HostLink(encode_request_frame(0x00, packet_id=0x20))


# ------------------------------------------------------------------ ENQ probe


def test_link_check_ack() -> None:
    check = LinkCheck()
    assert check.start() == [Purge(), Send(ENQ), Wait(WaitKind.CONTROL)]
    assert check.receive(ACK) == [Done(0x06)]
    assert check.done and check.answer == 0x06


def test_link_check_skips_a_reply_in_progress() -> None:
    check = LinkCheck()
    check.start()
    assert check.receive(STALE) == [Wait(WaitKind.CONTROL)]
    assert check.receive(NAK) == [Done(0x15)]
    assert check.noise_bytes == len(STALE)


def test_link_check_retries_then_gives_up() -> None:
    check = LinkCheck(tries=2)
    check.start()
    assert check.timeout() == [Send(ENQ), Wait(WaitKind.CONTROL)]
    with pytest.raises(LinkTimeoutError):
        check.timeout()
    assert check.retries == 1


# ------------------------------------------------------------------ never anything else


events = st.lists(
    st.one_of(
        st.none(),
        st.sampled_from([ACK, NAK, REPLY, STALE, RECOVERY, REPLY[:6], ENQ]),
        st.binary(max_size=20),
    ),
    max_size=12,
)


@settings(max_examples=400, deadline=None)
@given(script=events, limits=st.builds(LinkLimits, st.integers(1, 3), st.integers(0, 3)))
def test_link_sends_only_its_frame_once_and_enq(
    script: list[bytes | None], limits: LinkLimits
) -> None:
    link = HostLink(request_status(packet_id=0x30), limits)
    sent = [a.data for a in link.start() if isinstance(a, Send)]
    try:
        for event in script:
            if link.done:
                break
            actions = link.timeout() if event is None else link.receive(event)
            sent += [a.data for a in actions if isinstance(a, Send)]
    except KktmonError:
        pass  # typed failure is fine; anything else fails the test
    assert sent[0] == request_status(packet_id=0x30)
    assert set(sent[1:]) <= {ENQ}
    assert LF not in sent
