"""The Shtrih-M meaning of each fault mode, observed on a real socket.

Silence, hanging up and the host link riding out each fault are the contract of
``tests/simulators/test_faults_wire.py``, for every wire vendor.

Waits here are lower bounds only ("nothing arrived yet"), which a slow machine cannot
make fail; nothing asserts how long anything took.
"""

from __future__ import annotations

import pytest
from sim_wire import SocketWire, answer_of, h, quiet, read_frame, request

from kktmon.protocol.errors import ChecksumError
from kktmon.protocol.shtrih.frame import ACK, ENQ, NAK, decode_frame
from kktmon.protocol.shtrih.records import parse_fn_status, parse_long_status, parse_short_status
from kktmon.simulators.scenario import DeviceState

FC = h("02 01 FC FD")


def test_garbage_before_stx_is_printable_noise_before_each_answer(
    wire: SocketWire, state: DeviceState
) -> None:
    state.faults.garbage_before_stx = 4
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([NAK])
    wire.send(FC)
    assert wire.read(1) == bytes([ACK])
    noise = wire.read(4)
    assert all(0x20 <= byte < 0x7F for byte in noise)
    assert read_frame(wire)[:3] == h("02 16 FC")


def test_nak_frames_refuses_good_frames_then_recovers(wire: SocketWire, state: DeviceState) -> None:
    state.faults.nak_frames = 2
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([NAK])
    wire.send(FC)
    assert wire.read(1) == bytes([NAK])
    wire.send(FC)
    assert wire.read(1) == bytes([NAK])
    wire.send(FC)
    assert wire.read(1) == bytes([ACK])
    assert read_frame(wire)[:3] == h("02 16 FC")
    assert state.faults.nak_frames == 0


def test_slow_answer_comes_after_the_ack(wire: SocketWire, state: DeviceState) -> None:
    state.faults.slow_answer_s = 0.4
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([NAK])
    wire.send(FC)
    assert wire.read(1) == bytes([ACK])
    assert quiet(wire, 0.1) == b""  # the answer is still being "executed"
    assert read_frame(wire)[:3] == h("02 16 FC")


def test_cut_answer_stops_mid_frame_and_enq_gets_it_whole(
    wire: SocketWire, state: DeviceState
) -> None:
    state.faults.cut_answers = 1
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([NAK])
    wire.send(FC)
    assert wire.read(1) == bytes([ACK])
    part = quiet(wire)
    assert part and part[0] == 0x02 and len(part) < part[1] + 3
    wire.send(bytes([NAK, ENQ]))
    assert wire.read(1) == bytes([ACK])
    assert read_frame(wire) == h(
        "02 16 FC 00 00 00 01 0E FC 00 D8 D2 D0 C8 D5 2D CB C0 C9 D2 2D 30 32 D4 18"
    )


def test_wrong_lrc_answer_is_repeated_correctly_after_nak_and_enq(
    wire: SocketWire, state: DeviceState
) -> None:
    state.faults.wrong_lrc_answers = 1
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([NAK])
    wire.send(FC)
    assert wire.read(1) == bytes([ACK])
    with pytest.raises(ChecksumError):
        decode_frame(read_frame(wire))
    wire.send(bytes([NAK]))
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([ACK])
    assert decode_frame(read_frame(wire)).code == 0xFC


def test_busy_printing_shows_submode_5_and_reads_still_work(
    wire: SocketWire, state: DeviceState
) -> None:
    state.faults.busy_printing = True
    assert parse_short_status(answer_of(wire, request(0x10))).submode == 5
    assert parse_long_status(answer_of(wire, request(0x11))).submode == 5
    assert parse_fn_status(answer_of(wire, request(0xFF01))).phase == 3


def test_line_noise_from_the_host_is_naked_after_the_byte_timeout(wire: SocketWire) -> None:
    wire.send(b"\x30\x31")
    assert wire.read(1) == bytes([NAK])


def test_noise_right_before_a_frame_is_tolerated(wire: SocketWire) -> None:
    wire.send(b"\x00\x00\x00\x00" + FC)  # quirk 11.12: one client does exactly this
    assert wire.read(1) == bytes([ACK])
    assert read_frame(wire)[:3] == h("02 16 FC")


def test_a_frame_with_a_bad_lrc_is_naked(wire: SocketWire) -> None:
    wire.send(h("02 01 FC FE"))
    assert wire.read(1) == bytes([NAK])


def test_a_frame_that_stops_half_way_is_naked(wire: SocketWire) -> None:
    wire.send(h("02 05 11 1E"))
    assert wire.read(1) == bytes([NAK])
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([NAK])  # nothing was executed
