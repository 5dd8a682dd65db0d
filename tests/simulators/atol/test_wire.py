"""Link-layer rules of the ATOL emulator on the wire: the FE task buffer, the LEGACY turns.

Raw bytes over real TCP and a real pty. FE (atol.md section 3): statuses A1..A5 and
B1..B4, C2/C3/C4, resend requests, async results, and the OFD-through-host quirk (Q3).
LEGACY (section 2.2): ENQ/ACK/EOT turns, NAKs, repeats. And quirk Q1: each layer ignores
the other's probe.
"""

from __future__ import annotations

from atol_sim_wire import (
    fe_ask,
    fe_send,
    legacy_receive,
    legacy_send,
    legacy_transact,
    packet_data,
    read_frame,
    read_packet,
    run_host,
)
from atol_vectors import h
from sim_wire import NOW, SerialWire, SocketWire, quiet

from kktmon.protocol.atol.commands import FN_STATUS, request_fn, request_state
from kktmon.protocol.atol.frame import encode_packet
from kktmon.protocol.atol.legacy import ACK, ENQ, EOT, NAK, LegacyLink, decode_frame, encode_frame
from kktmon.protocol.atol.link import FeLink
from kktmon.protocol.atol.records import parse_fn_status, parse_state
from kktmon.simulators.atol.emulator import AtolEmulator
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import PtyServer, TcpServer

FN_STATUS_TASK = h("00 00 A4 30")
WRONG_PASSWORD_TASK = h("12 34 A4 30")
STATE_FRAME = encode_frame(h("00 00 3F"))


# ------------------------------------------------------------------ FE


def test_fe_task_lifecycle_over_a_pty(state: DeviceState) -> None:
    emulator = AtolEmulator(state, clock=lambda: NOW, link_layer="fe", task_results="sync")
    with PtyServer(emulator) as server:
        wire = SerialWire(server.url)
        try:
            result = fe_ask(wire, 0x01, h("C1 01 05") + FN_STATUS_TASK)
            assert result[0] == 0xA3
            assert parse_fn_status(result[1:]).serial == state.fn.serial
            assert fe_ask(wire, 0x02, h("C3 05")) == result  # kept until acknowledged
            assert fe_ask(wire, 0x03, h("C2 05")) == h("A3")
            assert fe_ask(wire, 0x04, h("C3 05")) == h("B3")
            assert fe_ask(wire, 0x05, h("C2 05")) == h("B3")
        finally:
            wire.close()
    assert emulator.buffer_commands == [0xC1, 0xC3, 0xC2, 0xC3, 0xC2]
    assert emulator.received == [h("A4 30")]


def test_fe_refusals_b2_b4_b1(fe: tuple[AtolEmulator, SocketWire]) -> None:
    _, wire = fe
    assert fe_ask(wire, 0x01, h("C1 01 07") + FN_STATUS_TASK)[0] == 0xA3
    assert fe_ask(wire, 0x02, h("C1 01 07") + FN_STATUS_TASK) == h("B2")  # TID taken
    assert fe_ask(wire, 0x03, h("C1 09 08") + FN_STATUS_TASK) == h("B4 00")  # flags
    assert fe_ask(wire, 0x04, h("C1 01 E0") + FN_STATUS_TASK) == h("B4 01")  # TID
    for tid in range(0x10, 0x1F):  # 15 more: the buffer holds 16
        assert fe_ask(wire, tid, bytes([0xC1, 0x01, tid]) + FN_STATUS_TASK)[0] == 0xA3
    assert fe_ask(wire, 0x20, h("C1 01 20") + FN_STATUS_TASK) == h("B1")
    assert fe_ask(wire, 0x21, h("C4")) == h("A3")  # Abort empties it
    assert fe_ask(wire, 0x22, h("C3 07")) == h("B3")
    assert fe_ask(wire, 0x23, h("C1 01 07") + FN_STATUS_TASK)[0] == 0xA3


def test_fe_task_without_need_result_is_not_kept(fe: tuple[AtolEmulator, SocketWire]) -> None:
    _, wire = fe
    assert fe_ask(wire, 0x01, h("C1 00 03") + FN_STATUS_TASK) == h("A3")
    assert fe_ask(wire, 0x02, h("C3 03")) == h("B3")


def test_fe_error_result_is_a4(fe: tuple[AtolEmulator, SocketWire]) -> None:
    _, wire = fe
    assert fe_ask(wire, 0x01, h("C1 01 01") + WRONG_PASSWORD_TASK) == h("A4 55 8C")


def test_fe_garbled_packet_gets_an_empty_reply_and_nothing_runs(
    fe: tuple[AtolEmulator, SocketWire],
) -> None:
    emulator, wire = fe
    packet = bytearray(encode_packet(0x11, h("C1 01 01") + FN_STATUS_TASK))
    packet[-1] ^= 0x01
    wire.send(bytes(packet))
    assert packet_data(wire) == (0x11, b"")  # "send it again" [atol4j]
    assert emulator.received == []


def test_fe_empty_host_packet_repeats_the_last_reply(fe: tuple[AtolEmulator, SocketWire]) -> None:
    _, wire = fe
    fe_send(wire, 0x30, h("C1 01 01") + FN_STATUS_TASK)
    first = read_packet(wire)
    wire.send(encode_packet(0x30, b""))
    assert read_packet(wire) == first
    wire.send(encode_packet(0x31, b""))  # no reply of ours had that ID
    assert quiet(wire) == b""


def test_fe_packet_cut_off_by_the_host_is_dropped(fe: tuple[AtolEmulator, SocketWire]) -> None:
    emulator, wire = fe
    wire.send(encode_packet(0x01, h("C1 01 01") + FN_STATUS_TASK)[:6])
    assert quiet(wire) == b""
    assert fe_ask(wire, 0x02, h("C1 01 02") + FN_STATUS_TASK)[0] == 0xA3
    assert emulator.received == [h("A4 30")]


def test_fe_failed_task_stops_those_queued_behind_it(
    fe: tuple[AtolEmulator, SocketWire], state: DeviceState
) -> None:
    _, wire = fe
    state.faults.slow_answer_s = 30.0
    assert fe_ask(wire, 0x01, h("C1 01 01") + WRONG_PASSWORD_TASK) == h("A2")  # running
    assert fe_ask(wire, 0x02, h("C1 01 02") + FN_STATUS_TASK) == h("A1")  # queued
    assert fe_ask(wire, 0x03, h("C1 03 03") + FN_STATUS_TASK) == h("A1")  # IgnoreError
    state.faults.slow_answer_s = 0.0
    assert packet_data(wire) == (0xF0, h("A7 01 55 8C"))  # async error
    assert fe_ask(wire, 0x04, h("C3 02")) == h("A5")  # Q5: stopped
    assert fe_ask(wire, 0x05, h("C3 03")) == h("A5")  # queued behind the failure too


def test_fe_ignores_a_legacy_probe(fe: tuple[AtolEmulator, SocketWire]) -> None:
    _, wire = fe
    wire.send(bytes([ENQ]))  # quirk Q1
    assert quiet(wire) == b""
    assert fe_ask(wire, 0x01, h("C1 01 01") + FN_STATUS_TASK)[0] == 0xA3


# ------------------------------------------------------------------ Q3: OFD through the host


def test_ofd_through_the_host_shows_as_foreign_async_packets_on_fe(state: DeviceState) -> None:
    state.ofd.via_host = True
    with TcpServer(
        AtolEmulator(state, clock=lambda: NOW, link_layer="fe", task_results="sync")
    ) as server:
        wire = SocketWire(server.url)
        try:
            reply = fe_ask(wire, 0x01, h("C1 01 05") + FN_STATUS_TASK)
            assert reply[0] == 0xA3
            assert packet_data(wire) == (0xF0, h("A6 75 55 00"))  # not a task of ours
        finally:
            wire.close()
        link = FeLink(request_fn(FN_STATUS))
        assert parse_fn_status(run_host(server.url, link)).phase == 3
        assert link.foreign_async == 1


def test_ofd_through_the_host_is_invisible_on_legacy(state: DeviceState) -> None:
    state.ofd.via_host = True
    with TcpServer(AtolEmulator(state, clock=lambda: NOW, link_layer="legacy")) as server:
        wire = SocketWire(server.url)
        try:
            assert parse_state(decode_frame(legacy_transact(wire, STATE_FRAME))).model == 61
            assert quiet(wire) == b""
        finally:
            wire.close()


# ------------------------------------------------------------------ LEGACY


def test_legacy_exchange_over_a_pty(state: DeviceState) -> None:
    emulator = AtolEmulator(state, clock=lambda: NOW, link_layer="legacy")
    with PtyServer(emulator) as server:
        answer = run_host(server.url, LegacyLink(request_state()))
    assert parse_state(answer).flags.shift_open
    assert emulator.received == [h("3F")]


def test_legacy_repeated_frame_is_acked_again_and_answered_once(
    legacy: tuple[AtolEmulator, SocketWire],
) -> None:
    emulator, wire = legacy
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([ACK])
    wire.send(STATE_FRAME)
    assert wire.read(1) == bytes([ACK])
    wire.send(STATE_FRAME)  # the host did not see our ACK
    assert wire.read(1) == bytes([ACK])
    wire.send(bytes([EOT]))
    assert legacy_receive(wire)[1] == 0x44
    assert quiet(wire) == b""
    assert emulator.received == [h("3F"), h("3F")]  # both copies arrived intact


def test_legacy_host_eot_ends_the_exchange_it_gave_up(
    legacy: tuple[AtolEmulator, SocketWire],
) -> None:
    _, wire = legacy
    legacy_send(wire, STATE_FRAME)
    assert wire.read(1) == bytes([ENQ])
    wire.send(bytes([EOT]))  # the host gave up: no answer follows
    assert quiet(wire) == b""
    assert legacy_transact(wire, STATE_FRAME)[1] == 0x44


def test_legacy_bad_lrc_and_cut_frames_are_naked(legacy: tuple[AtolEmulator, SocketWire]) -> None:
    emulator, wire = legacy
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([ACK])
    wire.send(STATE_FRAME[:-1] + bytes([STATE_FRAME[-1] ^ 0xFF]))
    assert wire.read(1) == bytes([NAK])
    wire.send(STATE_FRAME[:3])  # stops half-way
    assert wire.read(1) == bytes([NAK])
    wire.send(STATE_FRAME)
    assert wire.read(1) == bytes([ACK])
    wire.send(bytes([EOT]))
    assert legacy_receive(wire)[1] == 0x44
    assert emulator.received == [h("3F")]


def test_legacy_answer_naked_by_the_host_comes_again(
    legacy: tuple[AtolEmulator, SocketWire],
) -> None:
    _, wire = legacy
    legacy_send(wire, STATE_FRAME)
    assert wire.read(1) == bytes([ENQ])
    wire.send(bytes([ACK]))
    first = read_frame(wire)
    wire.send(bytes([NAK]))
    assert read_frame(wire) == first
    wire.send(bytes([ACK]))
    assert wire.read(1) == bytes([EOT])


def test_legacy_enq_while_waiting_for_the_frame_is_acked_again(
    legacy: tuple[AtolEmulator, SocketWire],
) -> None:
    _, wire = legacy
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([ACK])
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([ACK])
    wire.send(STATE_FRAME)
    assert wire.read(1) == bytes([ACK])


def test_legacy_ignores_an_fe_probe_even_with_enq_bytes_in_it(
    legacy: tuple[AtolEmulator, SocketWire],
) -> None:
    emulator, wire = legacy
    probe = encode_packet(0x05, h("C1 01 05 00 00 45"))  # ID and TID 05 = ENQ
    assert bytes([ENQ]) in probe[1:]
    wire.send(probe + bytes([ENQ]))  # the packet's end is known from its LEN
    assert wire.read(1) == bytes([ACK])
    wire.send(STATE_FRAME)
    assert wire.read(1) == bytes([ACK])
    wire.send(bytes([EOT]))
    assert legacy_receive(wire)[1] == 0x44
    assert emulator.received == [h("3F")]


# ------------------------------------------------------------------ TCP: one client at a time


def test_tcp_serves_one_client_at_a_time_and_a_new_connection_has_a_new_buffer(
    state: DeviceState,
) -> None:
    emulator = AtolEmulator(state, clock=lambda: NOW, link_layer="fe", task_results="sync")
    with TcpServer(emulator) as server:
        first = SocketWire(server.url)
        second = SocketWire(server.url)  # waits in the backlog (quirk Q2 [L])
        try:
            assert fe_ask(first, 0x01, h("C1 01 05") + FN_STATUS_TASK)[0] == 0xA3
            fe_send(second, 0x01, h("C3 05"))
            assert quiet(second) == b""
            first.close()  # task 05 was never acknowledged ...
            assert packet_data(second) == (0x01, h("B3"))  # ... and is gone with the link
        finally:
            first.close()
            second.close()


def test_legacy_ignores_an_fe_packet_cut_short_up_to_a_quiet_gap(
    legacy: tuple[AtolEmulator, SocketWire],
) -> None:
    _, wire = legacy
    wire.send(encode_packet(0x05, h("C1 01 05 00 00 45"))[:7])
    assert quiet(wire) == b""
    assert legacy_transact(wire, STATE_FRAME)[1] == 0x44
