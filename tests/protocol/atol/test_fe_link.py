"""FeLink, the host half of the ATOL FE task-buffer exchange (atol.md 3.4), driven by script.

No I/O: a :class:`Conversation` plays the register's side as byte chunks and timeouts
and records every action. Packet ids and TIDs start where the reference's examples put
them, so the host's packets can be compared with E1-E5 byte for byte.
"""

from __future__ import annotations

import atol_vectors as av
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kktmon.protocol.atol.commands import Request, request_fn, request_status_code
from kktmon.protocol.atol.frame import (
    TaskStatus,
    decode_packet,
    encode_packet,
    encode_task_reply,
    parse_host_task,
    task_req,
)
from kktmon.protocol.atol.link import FeLimits, FeLink, FeSession, IdSequence
from kktmon.protocol.atol.records import parse_fn_status
from kktmon.protocol.errors import (
    ChecksumError,
    ConfigError,
    DeviceError,
    KktmonError,
    LinkTimeoutError,
    MalformedAnswerError,
)
from kktmon.protocol.link import Action, Done, Purge, Send, Wait, WaitKind

TIMEOUT = None
E2 = av.EXCHANGES[0]
E4 = av.EXCHANGES[1]


def reply(packet_id: int, status: TaskStatus, answer: bytes = b"", tid: int | None = None) -> bytes:
    return encode_packet(packet_id, encode_task_reply(status, answer, tid))


def ack_reply(packet_id: int) -> bytes:
    return reply(packet_id, TaskStatus.RESULT)


class Conversation:
    """A FeLink plus the register's scripted side and the log of actions."""

    def __init__(
        self,
        request: Request | None = None,
        first_id: int = E2.packet_id,
        tid: int = E2.tid,
        abort: bool = False,
        limits: FeLimits | None = None,
    ) -> None:
        self.session = FeSession(IdSequence(first_id), IdSequence(tid), abort_pending=abort)
        self.link = FeLink(request or E2.build(), self.session, limits)
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

    def sent_tasks(self) -> list[tuple[int, int, int | None]]:
        """(packet id, task command, TID) of every packet the host sent."""
        out = []
        for raw in self.sent:
            packet = decode_packet(raw)
            task = parse_host_task(packet.data)
            out.append((packet.id, task.command, task.tid))
        return out

    def waiting_for(self) -> WaitKind | None:
        last = self.log[-1]
        return last.kind if isinstance(last, Wait) else None

    @property
    def answer(self) -> bytes:
        assert self.link.done and self.link.answer is not None
        assert [a.answer for a in self.log if isinstance(a, Done)] == [self.link.answer]
        return self.link.answer


# ------------------------------------------------------------------ the reference's flows


def test_e2_synchronous_result_then_ack() -> None:
    talk = Conversation()
    assert talk.log == [Purge(), Send(E2.fe_request), Wait(WaitKind.CONTROL)]
    assert talk.device(E2.fe_answer) == [Send(av.E2_ACK), Wait(WaitKind.CONTROL)]
    assert not talk.link.done and talk.link.answer is None
    assert talk.device(ack_reply(0x08)) == [Done(E2.answer)]
    assert talk.answer == E2.answer
    assert talk.link.status is TaskStatus.RESULT
    assert (talk.link.retries, talk.link.noise_bytes, talk.link.polls) == (0, 0, 0)
    assert talk.session.packet_ids.next == 0x09 and talk.session.task_ids.next == 0x03


def test_e1_abort_once_per_session_then_e2() -> None:
    talk = Conversation(first_id=0x06, abort=True)
    assert talk.log == [Purge(), Send(av.E1_ABORT), Wait(WaitKind.CONTROL)]
    assert talk.device(av.E1_REPLY) == [Send(E2.fe_request), Wait(WaitKind.CONTROL)]
    talk.device(E2.fe_answer, ack_reply(0x08))
    assert talk.answer == E2.answer
    assert not talk.session.abort_pending
    following = FeLink(request_status_code(), talk.session)
    assert following.start()[1] == Send(encode_packet(0x09, b"\xc1\x01\x03\x00\x00\x45"))


def test_e3_asynchronous_result_after_in_progress() -> None:
    talk = Conversation(tid=0x57)
    assert talk.device(reply(0x07, TaskStatus.IN_PROGRESS)) == [Wait(WaitKind.ANSWER)]
    assert talk.device(av.E3_ASYNC) == [Send(av.E3_ACK), Wait(WaitKind.CONTROL)]
    talk.device(ack_reply(0x08))
    assert talk.answer == av.E3_ASYNC_ANSWER
    assert talk.link.status is TaskStatus.ASYNC_RESULT


@pytest.mark.parametrize("exchange", av.EXCHANGES, ids=[ex.name for ex in av.EXCHANGES])
def test_every_example_runs_through_the_link(exchange: av.Exchange) -> None:
    talk = Conversation(exchange.build(), exchange.packet_id, exchange.tid)
    assert talk.sent == [exchange.fe_request]
    talk.device(exchange.fe_answer, ack_reply(exchange.packet_id + 1))
    assert exchange.parse(talk.answer) == exchange.parse(exchange.answer)


def test_everything_in_one_chunk() -> None:
    talk = Conversation()
    talk.device(E2.fe_answer + ack_reply(0x08))
    assert talk.answer == E2.answer


def test_packet_byte_by_byte_waits_with_the_byte_timeout() -> None:
    talk = Conversation()
    for byte in E2.fe_answer[:-1]:
        talk.device(bytes([byte]))
        assert talk.waiting_for() is WaitKind.BYTE
    talk.device(E2.fe_answer[-1:])
    assert talk.waiting_for() is WaitKind.CONTROL


# ------------------------------------------------------------------ task-buffer states


@pytest.mark.parametrize("status", [TaskStatus.PENDING, TaskStatus.IN_PROGRESS, TaskStatus.WAITING])
def test_running_task_is_polled_with_c3_after_an_answer_wait(status: TaskStatus) -> None:
    talk = Conversation()
    assert talk.device(reply(0x07, status)) == [Wait(WaitKind.ANSWER)]
    assert talk.device(TIMEOUT) == [
        Send(encode_packet(0x08, task_req(0x02))),
        Wait(WaitKind.CONTROL),
    ]
    talk.device(reply(0x08, TaskStatus.IN_PROGRESS), TIMEOUT)
    talk.device(reply(0x09, TaskStatus.RESULT, E2.answer), ack_reply(0x0A))
    assert talk.answer == E2.answer
    assert talk.link.polls == 2 and talk.link.retries == 0
    assert [t[1:] for t in talk.sent_tasks()] == [(0xC1, 2), (0xC3, 2), (0xC3, 2), (0xC2, 2)]


def test_task_still_running_after_the_poll_limit_times_out() -> None:
    talk = Conversation(limits=FeLimits(status_polls=2))
    talk.device(reply(0x07, TaskStatus.PENDING))
    talk.device(TIMEOUT, reply(0x08, TaskStatus.PENDING), TIMEOUT, reply(0x09, TaskStatus.PENDING))
    with pytest.raises(LinkTimeoutError):
        talk.device(TIMEOUT)


def test_error_result_is_delivered_and_raised_by_the_parser() -> None:
    talk = Conversation(request_fn(0x30), 0x10, 0x05)
    talk.device(reply(0x10, TaskStatus.ERROR, b"\x55\xd4"), ack_reply(0x11))
    assert talk.link.status is TaskStatus.ERROR
    with pytest.raises(DeviceError) as caught:
        parse_fn_status(talk.answer)
    assert caught.value.code == 0xD4


def test_async_error_for_our_tid() -> None:
    talk = Conversation(tid=0x57)
    talk.device(
        reply(0x07, TaskStatus.PENDING), reply(0xF0, TaskStatus.ASYNC_ERROR, b"\x55\xba", 0x57)
    )
    talk.device(ack_reply(0x08))
    assert talk.link.status is TaskStatus.ASYNC_ERROR
    assert talk.answer == b"\x55\xba"


def test_async_packets_for_other_tids_are_ignored() -> None:
    talk = Conversation(tid=0x57)
    talk.device(reply(0x07, TaskStatus.PENDING))
    assert talk.device(reply(0xF0, TaskStatus.ASYNC_RESULT, b"\x55\x00\x00", 0x33)) == [
        Wait(WaitKind.ANSWER)
    ]
    talk.device(av.E3_ASYNC, ack_reply(0x08))
    assert talk.answer == av.E3_ASYNC_ANSWER
    assert talk.link.ignored_packets == talk.link.foreign_async == 1


def test_async_result_arriving_before_the_sync_reply() -> None:
    talk = Conversation(tid=0x57)
    talk.device(av.E3_ASYNC, reply(0x07, TaskStatus.PENDING), ack_reply(0x08))
    assert talk.answer == av.E3_ASYNC_ANSWER


def test_stopped_task_is_freed_then_raised() -> None:
    talk = Conversation()
    assert talk.device(reply(0x07, TaskStatus.STOPPED, tid=0x02)) == [
        Send(encode_packet(0x08, b"\xc2\x02")),
        Wait(WaitKind.CONTROL),
    ]
    with pytest.raises(DeviceError) as caught:
        talk.device(ack_reply(0x08))
    assert caught.value.code == 0xA5
    assert talk.link.answer is None


@pytest.mark.parametrize("status", [TaskStatus.OVERFLOW, TaskStatus.ILLEGAL_VALUE])
def test_buffer_refusals_are_device_errors(status: TaskStatus) -> None:
    talk = Conversation()
    with pytest.raises(DeviceError) as caught:
        talk.device(reply(0x07, status, b"\x01"))
    assert caught.value.code == status
    assert caught.value.command == "task buffer"


def test_b2_on_a_first_add_readds_under_the_next_tid() -> None:
    talk = Conversation()
    talk.device(reply(0x07, TaskStatus.TID_EXISTS))
    assert talk.sent_tasks()[-1] == (0x08, 0xC1, 0x03)
    talk.device(reply(0x08, TaskStatus.RESULT, E2.answer), ack_reply(0x09))
    assert talk.answer == E2.answer
    assert talk.sent_tasks()[-1] == (0x09, 0xC2, 0x03)
    assert talk.link.retries == 1


def test_b2_on_a_resent_add_polls_the_first_copy() -> None:
    talk = Conversation()
    talk.device(TIMEOUT)
    assert talk.sent == [E2.fe_request, E2.fe_request]  # same packet, same id
    talk.device(reply(0x07, TaskStatus.TID_EXISTS))
    assert talk.sent_tasks()[-1] == (0x08, 0xC3, 0x02)
    talk.device(reply(0x08, TaskStatus.RESULT, E2.answer), ack_reply(0x09))
    assert talk.answer == E2.answer


def test_b3_on_a_poll_readds_the_same_tid() -> None:
    talk = Conversation()
    talk.device(reply(0x07, TaskStatus.PENDING), TIMEOUT, reply(0x08, TaskStatus.TID_NOT_FOUND))
    assert talk.sent_tasks()[-1] == (0x09, 0xC1, 0x02)
    talk.device(reply(0x09, TaskStatus.RESULT, E2.answer), ack_reply(0x0A))
    assert talk.answer == E2.answer


def test_readds_are_bounded() -> None:
    talk = Conversation(limits=FeLimits(readds=1))
    talk.device(reply(0x07, TaskStatus.TID_EXISTS))
    with pytest.raises(DeviceError) as caught:
        talk.device(reply(0x08, TaskStatus.TID_EXISTS))
    assert caught.value.code == 0xB2


# ------------------------------------------------------------------ silence and damage


def test_silence_resends_the_same_packet_then_times_out() -> None:
    talk = Conversation()
    for _ in range(3):
        assert talk.device(TIMEOUT) == [Send(E2.fe_request), Wait(WaitKind.CONTROL)]
    with pytest.raises(LinkTimeoutError) as caught:
        talk.device(TIMEOUT)
    assert isinstance(caught.value, TimeoutError)
    assert talk.sent == [E2.fe_request] * 4


def test_late_reply_after_a_resend() -> None:
    talk = Conversation()
    talk.device(TIMEOUT, E2.fe_answer, ack_reply(0x08))
    assert talk.answer == E2.answer
    assert talk.link.retries == 1


def test_garbled_reply_resends_then_gives_up_with_checksum_error() -> None:
    bad = E2.fe_answer[:-1] + bytes([E2.fe_answer[-1] ^ 1])
    talk = Conversation()
    assert talk.device(bad) == [Send(E2.fe_request), Wait(WaitKind.CONTROL)]
    talk.device(bad, bad)
    with pytest.raises(ChecksumError):
        talk.device(bad)


def test_garbled_then_good_reply() -> None:
    bad = E2.fe_answer[:-1] + bytes([E2.fe_answer[-1] ^ 1])
    talk = Conversation()
    talk.device(bad, E2.fe_answer, ack_reply(0x08))
    assert talk.answer == E2.answer and talk.link.retries == 1


def test_empty_packet_with_our_id_asks_for_a_resend() -> None:
    talk = Conversation()
    assert talk.device(encode_packet(0x07, b"")) == [Send(E2.fe_request), Wait(WaitKind.CONTROL)]


def test_reply_cut_mid_packet_is_resent() -> None:
    talk = Conversation()
    talk.device(E2.fe_answer[:9])
    assert talk.waiting_for() is WaitKind.BYTE
    assert talk.device(TIMEOUT) == [Send(E2.fe_request), Wait(WaitKind.CONTROL)]
    talk.device(E2.fe_answer, ack_reply(0x08))
    assert talk.answer == E2.answer


def test_noise_and_stale_replies_are_skipped() -> None:
    talk = Conversation()
    stale = reply(0x05, TaskStatus.RESULT, b"\x55\x00")
    talk.device(b"\x00\x13\x37", stale + b"\xff" + E2.fe_answer, ack_reply(0x08))
    assert talk.answer == E2.answer
    assert talk.link.noise_bytes == 4
    assert talk.link.ignored_packets == 1 and talk.link.retries == 0


def test_unknown_status_for_our_packet_is_malformed() -> None:
    talk = Conversation()
    with pytest.raises(MalformedAnswerError):
        talk.device(encode_packet(0x07, b"\x99"))


def test_no_reply_to_the_ack_still_delivers_the_answer() -> None:
    talk = Conversation()
    talk.device(E2.fe_answer)
    assert talk.device(TIMEOUT) == [Done(E2.answer)]


def test_ids_and_tids_wrap_after_df() -> None:
    ids = IdSequence(0xDE)
    assert [ids.take() for _ in range(4)] == [0xDE, 0xDF, 0x00, 0x01]
    with pytest.raises(ConfigError):
        IdSequence(0xF0)


# ------------------------------------------------------------------ any register behaviour

device_events = st.lists(
    st.one_of(
        st.none(),
        st.sampled_from(
            [
                E2.fe_answer,
                E2.fe_answer[:9],
                av.E3_ASYNC,
                ack_reply(0x08),
                reply(0x07, TaskStatus.PENDING),
                reply(0x08, TaskStatus.RESULT, E2.answer),
                reply(0x07, TaskStatus.TID_EXISTS),
                reply(0x08, TaskStatus.TID_NOT_FOUND),
                reply(0xF0, TaskStatus.ASYNC_RESULT, b"\x55\x00", 0x02),
                encode_packet(0x07, b""),
            ]
        ),
        st.tuples(st.integers(0x05, 0x0C), st.sampled_from(list(TaskStatus))).map(
            lambda t: reply(t[0], t[1], b"\x55\x00", 0x02)
        ),
        st.binary(min_size=1, max_size=12),
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
        assert isinstance(
            exc, LinkTimeoutError | ChecksumError | DeviceError | MalformedAnswerError
        )
    tasks = talk.sent_tasks()
    assert {command for _, command, _ in tasks} <= {0xC1, 0xC2, 0xC3}
    for raw in talk.sent:  # every C1 carries exactly the request
        data = decode_packet(raw).data
        if data[0] == 0xC1:
            assert data[3:] == E2.build().body
    limits = FeLimits()
    assert len(tasks) <= 1 + (limits.resends + 1) * (limits.readds + limits.status_polls + 3)
    if talk.link.done:
        assert talk.link.answer is not None and tasks[-1][1] == 0xC2
    else:
        assert talk.link.answer is None


def test_probe_with_a_single_packet() -> None:
    talk = Conversation(request_status_code(), limits=FeLimits(resends=0))
    with pytest.raises(LinkTimeoutError):
        talk.device(TIMEOUT)
    assert len(talk.sent) == 1
