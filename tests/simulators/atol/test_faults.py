"""The ATOL meaning of each fault mode, observed on a real socket on both link layers.

Silence, hanging up and the host link machines riding out each fault are the contract
of ``tests/simulators/test_faults_wire.py``, for every wire vendor.

Waits here are lower bounds only ("nothing arrived yet"), which a slow machine cannot
make fail; nothing asserts how long anything took.
"""

from __future__ import annotations

import pytest
from atol_sim_wire import (
    fe_ask,
    fe_send,
    legacy_receive,
    legacy_send,
    legacy_transact,
    packet_data,
    read_frame,
    read_packet,
)
from atol_vectors import h
from sim_wire import SocketWire, quiet

from kktmon.protocol.atol.frame import decode_packet
from kktmon.protocol.atol.legacy import ACK, ENQ, EOT, NAK, decode_frame, encode_frame
from kktmon.protocol.atol.records import parse_fn_status
from kktmon.protocol.errors import ChecksumError
from kktmon.simulators.atol.emulator import AtolEmulator
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import TcpServer

TASK = h("00 00 A4 30")
FRAME = encode_frame(TASK)


def add(tid: int) -> bytes:
    return bytes([0xC1, 0x01, tid]) + TASK


# ------------------------------------------------------------------ FE


def test_fe_garbage_before_each_packet(
    fe: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = fe
    state.faults.garbage_before_stx = 4
    fe_send(wire, 0x01, add(1))
    noise = wire.read(4)
    assert all(0x20 <= byte < 0x7F for byte in noise)
    assert decode_packet(read_packet(wire)).data[0] == 0xA3


def test_fe_nak_frames_are_empty_replies_asking_for_a_resend(
    fe: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    emulator, wire = fe
    state.faults.nak_frames = 2
    assert fe_ask(wire, 0x01, add(1)) == b""
    assert fe_ask(wire, 0x01, add(1)) == b""
    assert fe_ask(wire, 0x01, add(1))[0] == 0xA3
    assert emulator.received == [h("A4 30")] * 3
    assert state.faults.nak_frames == 0


def test_fe_slow_task_stays_in_progress_then_reports_async(
    fe: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = fe
    state.faults.slow_answer_s = 30.0
    assert fe_ask(wire, 0x01, add(0x21)) == h("A2")
    assert fe_ask(wire, 0x02, h("C3 21")) == h("A2")
    state.faults.slow_answer_s = 0.0  # the task finishes: its result comes on its own
    packet_id, data = packet_data(wire)
    assert (packet_id, data[:2]) == (0xF0, h("A6 21"))
    assert parse_fn_status(data[2:]).phase == 3
    assert fe_ask(wire, 0x03, h("C2 21")) == h("A3")


def test_fe_cut_answer_then_b2_on_the_resend_and_the_result_by_c3(
    fe: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = fe
    state.faults.cut_answers = 1
    fe_send(wire, 0x01, add(1))
    part = quiet(wire)
    assert part[:4] == h("FE 21 00 01") and len(part) < 38
    assert fe_ask(wire, 0x01, add(1)) == h("B2")  # the first copy arrived
    assert fe_ask(wire, 0x02, h("C3 01"))[:3] == h("A3 55 00")


def test_fe_wrong_crc_answer(fe: tuple[AtolEmulator, SocketWire], state: DeviceState) -> None:
    _, wire = fe
    state.faults.wrong_lrc_answers = 1
    fe_send(wire, 0x01, add(1))
    with pytest.raises(ChecksumError):
        decode_packet(read_packet(wire))
    assert fe_ask(wire, 0x02, h("C3 01"))[:3] == h("A3 55 00")


def test_fe_busy_printing_queues_the_task_then_reports_async(
    fe: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = fe
    state.faults.busy_printing = True
    assert fe_ask(wire, 0x01, add(0x31)) == h("A1")  # pending behind the print job
    packet_id, data = packet_data(wire)
    assert (packet_id, data[:4]) == (0xF0, h("A6 31 55 00"))


def test_fe_pending_answer_is_a_stale_result_that_holds_its_tid(
    fe: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    # The runner opened the link before the test switched the fault on: reconnect.
    emulator, wire = fe
    state.faults.pending_answer = True
    wire.close()
    with TcpServer(emulator) as server:
        fresh = SocketWire(server.url)
        try:
            fe_send(fresh, 0x01, add(0x57))
            assert packet_data(fresh) == (0xF0, h("A6 57 55 00 00"))
            assert packet_data(fresh) == (0x01, h("B2"))  # its TID is still taken
            assert fe_ask(fresh, 0x02, h("C3 57")) == h("A3 55 00 00")
        finally:
            fresh.close()


def test_fe_stray_ff_after_the_ack_only_when_switched_on(
    fe: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = fe
    assert fe_ask(wire, 0x01, add(1))[0] == 0xA3
    assert fe_ask(wire, 0x02, h("C2 01")) == h("A3")
    assert quiet(wire) == b""  # ATOL has no stray byte of its own, even on TCP
    state.faults.stray_ff = True
    assert fe_ask(wire, 0x03, add(2))[0] == 0xA3
    assert fe_ask(wire, 0x04, h("C2 02")) == h("A3")
    assert wire.read(1) == b"\xff"


# ------------------------------------------------------------------ LEGACY


def test_legacy_garbage_before_stx(
    legacy: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = legacy
    state.faults.garbage_before_stx = 4
    legacy_send(wire, FRAME)
    assert wire.read(1) == bytes([ENQ])
    wire.send(bytes([ACK]))
    assert all(0x20 <= byte < 0x7F for byte in wire.read(4))
    assert wire.read(1) == b"\x02"


def test_legacy_nak_frames(legacy: tuple[AtolEmulator, SocketWire], state: DeviceState) -> None:
    emulator, wire = legacy
    state.faults.nak_frames = 2
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([ACK])
    for reply in (NAK, NAK, ACK):
        wire.send(FRAME)
        assert wire.read(1) == bytes([reply])
    assert emulator.received == [h("A4 30")] * 3


def test_legacy_slow_answer_announces_late(
    legacy: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = legacy
    state.faults.slow_answer_s = 0.4
    legacy_send(wire, FRAME)
    assert quiet(wire, 0.1) == b""  # still "executing"
    assert decode_frame(legacy_receive(wire))[:2] == h("55 00")


def test_legacy_cut_answer_comes_whole_after_nak(
    legacy: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = legacy
    state.faults.cut_answers = 1
    legacy_send(wire, FRAME)
    assert wire.read(1) == bytes([ENQ])
    wire.send(bytes([ACK]))
    part = quiet(wire)
    assert part[:1] == b"\x02" and bytes([0x03]) not in part[-2:]
    wire.send(bytes([NAK]))
    assert decode_frame(read_frame(wire))[:2] == h("55 00")


def test_legacy_wrong_lrc_answer_comes_right_after_nak(
    legacy: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = legacy
    state.faults.wrong_lrc_answers = 1
    legacy_send(wire, FRAME)
    assert wire.read(1) == bytes([ENQ])
    wire.send(bytes([ACK]))
    with pytest.raises(ChecksumError):
        decode_frame(read_frame(wire))
    wire.send(bytes([NAK]))
    assert decode_frame(read_frame(wire))[:2] == h("55 00")


def test_legacy_busy_printing_naks_the_first_enq(
    legacy: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = legacy
    state.faults.busy_printing = True
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([NAK])  # quirk Q4: busy
    assert decode_frame(legacy_transact(wire, FRAME))[:2] == h("55 00")


def test_legacy_pending_answer_collides_with_the_first_enq(
    legacy: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    emulator, wire = legacy
    state.faults.pending_answer = True
    wire.close()
    with TcpServer(emulator) as server:
        fresh = SocketWire(server.url)
        try:
            fresh.send(bytes([ENQ]))
            assert fresh.read(1) == bytes([ENQ])  # it wants to talk
            fresh.send(bytes([ACK]))
            assert decode_frame(read_frame(fresh)) == h("55 00 00")  # a stale 45h answer
            fresh.send(bytes([ACK]))
            assert fresh.read(1) == bytes([EOT])
            assert decode_frame(legacy_transact(fresh, FRAME))[:2] == h("55 00")
        finally:
            fresh.close()


def test_legacy_stray_ff_after_eot_only_when_switched_on(
    legacy: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = legacy
    legacy_transact(wire, FRAME)
    assert quiet(wire) == b""
    state.faults.stray_ff = True
    legacy_transact(wire, FRAME)
    assert wire.read(1) == b"\xff"
