"""The Pirit meaning of each fault mode, observed on the wire; and how the host link
reports the faults a Pirit does not recover from.

Silence, hanging up and the host link riding out each fault are the contract of
``tests/simulators/test_faults_wire.py``, for every wire vendor.

Waits here are lower bounds only ("nothing arrived yet"), which a slow machine cannot
make fail; nothing asserts how long anything took.
"""

from __future__ import annotations

import pytest
from pirit_sim_wire import ask, host_exchange, read_reply, request
from sim_wire import SocketWire, quiet

from kktmon.protocol.errors import ChecksumError, FrameError
from kktmon.protocol.pirit.fn_records import parse_fn_status
from kktmon.protocol.pirit.frame import ACK, ENQ, decode_reply_frame
from kktmon.protocol.pirit.link import HostLink
from kktmon.protocol.pirit.records import parse_status
from kktmon.simulators.pirit.emulator import PiritEmulator
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import TcpServer

STATUS = request(0x00)


def test_garbage_before_stx_is_printable_noise_before_each_reply(
    pwire: SocketWire, state: DeviceState
) -> None:
    state.faults.garbage_before_stx = 4
    for _ in range(2):
        pwire.send(STATUS)
        data = pwire.read(4 + 15)  # the reply to 00h is 15 bytes here
        assert all(0x20 <= byte < 0x7F for byte in data[:4])
        assert decode_reply_frame(data[4:]).text() == ("0", "4", "0")
    pwire.send(bytes([ENQ]))  # control bytes stay clean
    assert pwire.read(1, 0.5).endswith(bytes([ACK]))


def test_nak_frames_refuses_intact_frames_with_07h_then_answers(
    pwire: SocketWire, state: DeviceState, pirit: PiritEmulator
) -> None:
    state.faults.nak_frames = 2
    for packet_id in (0x21, 0x22):
        reply = ask(pwire, request(0x00, packet_id=packet_id))
        assert (reply.packet_id, reply.error, reply.fields) == (packet_id, 0x07, ())
    assert ask(pwire, request(0x00, packet_id=0x23)).error == 0
    assert state.faults.nak_frames == 0
    assert pirit.received == [0x00, 0x00, 0x00]


def test_slow_reply_comes_late_and_an_enq_meanwhile_is_acked_after_it(
    pwire: SocketWire, state: DeviceState
) -> None:
    state.faults.slow_answer_s = 0.4
    pwire.send(STATUS)
    assert quiet(pwire, 0.1) == b""  # still "executing"
    pwire.send(bytes([ENQ]))
    assert decode_reply_frame(read_reply(pwire)).error == 0
    assert pwire.read(1) == bytes([ACK])  # pirit.md 2.5: the ACK follows the reply


def test_cut_reply_stops_mid_frame_and_the_next_is_whole(
    pwire: SocketWire, state: DeviceState
) -> None:
    state.faults.cut_answers = 1
    pwire.send(STATUS)
    part = quiet(pwire)
    assert part[:1] == b"\x02"
    assert 0x03 not in part  # no ETX: the frame never ends
    assert ask(pwire, request(0x00, packet_id=0x22)).packet_id == 0x22
    assert state.faults.cut_answers == 0


def test_wrong_checksum_reply_is_well_formed_but_fails_the_check(
    pwire: SocketWire, state: DeviceState
) -> None:
    state.faults.wrong_lrc_answers = 1
    pwire.send(STATUS)
    with pytest.raises(ChecksumError):
        decode_reply_frame(read_reply(pwire))
    assert ask(pwire, STATUS).error == 0


def test_busy_printing_shows_a_receipt_still_printing(
    pwire: SocketWire, state: DeviceState
) -> None:
    state.faults.busy_printing = True
    status = parse_status(ask(pwire, STATUS))
    assert status.document.open
    assert (status.document.type, status.document.state) == (2, 8)  # sale, printing
    assert parse_fn_status(ask(pwire, request(0x78, 2))).phase == 3
    state.faults.busy_printing = False
    assert not parse_status(ask(pwire, STATUS)).document.open


def test_pending_answer_is_a_recovery_reply_before_the_first_reply_only(
    pirit_tcp: TcpServer[PiritEmulator], state: DeviceState
) -> None:
    state.faults.pending_answer = True
    for _ in range(2):  # once per connection
        wire = SocketWire(pirit_tcp.url)
        try:
            wire.send(bytes([ENQ]))
            assert wire.read(1) == bytes([ACK])  # ENQ alone does not release it
            wire.send(STATUS)
            stale = decode_reply_frame(read_reply(wire))
            ours = decode_reply_frame(read_reply(wire))
            assert ask(wire, STATUS).packet_id == 0x21
            assert quiet(wire) == b""
        finally:
            wire.close()
        assert (stale.packet_id, stale.command, stale.error) == (0x20, 0x00, 0x05)
        assert (ours.packet_id, ours.error) == (0x21, 0)


def test_stray_ff_is_not_a_pirit_quirk_and_changes_nothing(
    pwire: SocketWire, state: DeviceState
) -> None:
    state.faults.stray_ff = True
    assert ask(pwire, STATUS).error == 0
    assert quiet(pwire) == b""


# ------------------------------------------------------------------ the host side copes


@pytest.mark.parametrize(
    ("fault", "error"),
    [("cut_answers", FrameError), ("wrong_lrc_answers", ChecksumError)],
)
def test_host_link_reports_a_garbled_reply_and_the_next_exchange_works(
    pirit_tcp: TcpServer[PiritEmulator], state: DeviceState, fault: str, error: type[Exception]
) -> None:
    setattr(state.faults, fault, 1)
    with pytest.raises(error):
        host_exchange(pirit_tcp.url, HostLink(request(0x78, 1)))
    assert host_exchange(pirit_tcp.url, HostLink(request(0x78, 1, packet_id=0x22))).error == 0


def test_host_link_hands_a_refused_frame_back_as_its_error_code(
    pirit_tcp: TcpServer[PiritEmulator], state: DeviceState
) -> None:
    state.faults.nak_frames = 1
    assert host_exchange(pirit_tcp.url, HostLink(request(0x78, 1))).error == 0x07
    assert host_exchange(pirit_tcp.url, HostLink(request(0x78, 1))).error == 0


def test_host_link_times_out_on_a_silent_register(
    pirit_tcp: TcpServer[PiritEmulator], state: DeviceState
) -> None:
    state.faults.silent = True
    link = HostLink(request(0x00))
    with pytest.raises(TimeoutError):
        host_exchange(pirit_tcp.url, link)
    assert not link.alive
