"""The ATOL emulator reproduces the worked examples E1-E8 of atol.md section 8, byte for byte.

Each example gets a state holding the facts it decodes to; the host's literal request
goes over a real pty (and TCP where the answer does not name the interface) on the link
layer the example is printed for, and on the other one with the cross-layer bytes of
``atol_vectors``. Nothing here builds the expected bytes with the codec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from atol_sim_wire import fe_ask, legacy_receive, legacy_send, legacy_transact, read_packet
from atol_vectors import (
    E1_ABORT,
    E1_REPLY,
    E2_NAME,
    E3_ACK,
    E3_ASYNC,
    E4_FN,
    E7_FRAME,
    EXCHANGES,
    Exchange,
    h,
)
from sim_wire import SerialWire, SocketWire, Wire, quiet

from kktmon.protocol.atol.legacy import ACK, ENQ, EOT
from kktmon.simulators.atol.emulator import AtolEmulator, LinkLayer
from kktmon.simulators.scenario import DeviceState, default_state
from kktmon.simulators.server import PtyServer, TcpServer

EXAMPLE_TIME = datetime(2024, 5, 15, 10, 30, 45)  # E6's register clock


def _e2(state: DeviceState) -> None:
    state.model_code = 76
    state.model = E2_NAME
    state.firmware = "3.0"
    state.firmware_build = 2195


def _e4(state: DeviceState) -> None:
    state.fn.serial = E4_FN
    state.fn.last_document_number = 509
    state.fn.last_document_at = datetime(2024, 5, 15, 10, 30)


def _e5(state: DeviceState) -> None:
    state.ofd.first_unsent_at = datetime(2024, 5, 15, 9, 18)
    state.ofd.first_unsent_number = 503
    state.ofd.unsent_count = 3
    state.ofd.exchange_status = 0x02


def _e6(state: DeviceState) -> None:
    state.model_code = 61
    state.serial = "0000000000123456"
    state.shift.receipts = 7  # next receipt 0008


def _e8(state: DeviceState) -> None:
    state.shift.number = 42
    state.shift.receipts = 5


FACTS: dict[str, Callable[[DeviceState], None]] = {
    "E2 device type A5h": _e2,
    "E4 FN status A4h 30h": _e4,
    "E5 OFD exchange status A4h 20h": _e5,
    "E6 device state 3Fh": _e6,
    "E8 shift parameters A4h 10h": _e8,
}


def _state(name: str) -> DeviceState:
    state = default_state(now=EXAMPLE_TIME)
    FACTS[name](state)
    return state


def _emulator(state: DeviceState, layer: LinkLayer) -> AtolEmulator:
    return AtolEmulator(
        state, clock=lambda: EXAMPLE_TIME, seed=1, link_layer=layer, task_results="sync"
    )


@pytest.fixture
def fe_pty() -> Iterator[tuple[AtolEmulator, SerialWire]]:
    emulator = _emulator(default_state(now=EXAMPLE_TIME), "fe")
    with PtyServer(emulator) as server:
        wire = SerialWire(server.url)
        yield emulator, wire
        wire.close()


def _fe(wire: Wire, example: Exchange) -> bytes:
    wire.send(example.fe_request)
    return read_packet(wire)


def _legacy(wire: Wire, example: Exchange) -> bytes:
    return legacy_transact(wire, example.legacy_request)


@pytest.mark.parametrize("example", EXCHANGES, ids=lambda ex: ex.name.split()[0])
@pytest.mark.parametrize("layer", ["fe", "legacy"])
def test_worked_example_over_a_pty(example: Exchange, layer: LinkLayer) -> None:
    emulator = _emulator(_state(example.name), layer)
    with PtyServer(emulator) as server:
        wire = SerialWire(server.url)
        try:
            if layer == "fe":
                assert _fe(wire, example) == example.fe_answer
            else:
                assert _legacy(wire, example) == example.legacy_answer
            assert quiet(wire) == b""
        finally:
            wire.close()
    assert emulator.received == [example.build().body[2:]]
    assert emulator.forbidden_received == []


@pytest.mark.parametrize(
    "example", [ex for ex in EXCHANGES if not ex.name.startswith("E6")], ids=lambda ex: ex.name
)
@pytest.mark.parametrize("layer", ["fe", "legacy"])
def test_worked_example_over_tcp(example: Exchange, layer: LinkLayer) -> None:
    with TcpServer(_emulator(_state(example.name), layer)) as server:
        wire = SocketWire(server.url)
        try:
            if layer == "fe":
                assert _fe(wire, example) == example.fe_answer
            else:
                assert _legacy(wire, example) == example.legacy_answer
        finally:
            wire.close()


def test_e6_over_tcp_names_the_ethernet_interface() -> None:
    example = next(ex for ex in EXCHANGES if ex.name.startswith("E6"))
    with TcpServer(_emulator(_state(example.name), "legacy")) as server:
        wire = SocketWire(server.url)
        try:
            frame = _legacy(wire, example)
        finally:
            wire.close()
    # Offset 29 of the answer: 06 = Ethernet where E6 (read over USB) has 04.
    assert frame[:-3] == example.legacy_answer[:-3]
    assert frame[-3] == 0x06


def test_e1_abort_is_answered_done(fe_pty: tuple[AtolEmulator, SerialWire]) -> None:
    emulator, wire = fe_pty
    wire.send(E1_ABORT)
    assert read_packet(wire) == E1_REPLY
    assert emulator.buffer_commands == [0xC4]
    assert emulator.received == []


def test_e3_stale_async_result_arrives_first_and_its_ack_frees_it() -> None:
    state = _state("E2 device type A5h")
    state.faults.pending_answer = True
    example = EXCHANGES[0]
    with PtyServer(_emulator(state, "fe")) as server:
        wire = SerialWire(server.url)
        try:
            wire.send(example.fe_request)
            assert read_packet(wire) == E3_ASYNC  # F0 A6 57 55 00 00, CRC FE escaped
            assert read_packet(wire) == example.fe_answer
            assert fe_ask(wire, 0x08, E3_ACK[4:6]) == h("A3")
            assert fe_ask(wire, 0x09, h("C3 57")) == h("B3")  # gone
        finally:
            wire.close()


def test_e7_frame_from_the_host_is_unstuffed_and_refused() -> None:
    # E7's DATA read as a task: password 1F 00, command FF 10 02 03 1A, none allowed.
    emulator = _emulator(default_state(now=EXAMPLE_TIME), "legacy")
    with PtyServer(emulator) as server:
        wire = SerialWire(server.url)
        try:
            wire.send(bytes([ENQ]))
            assert wire.read(1) == bytes([ACK])
            wire.send(E7_FRAME)
            assert wire.read(1) == bytes([ACK])
            wire.send(bytes([EOT]))
            assert legacy_receive(wire) == h("02 55 7A 03 2C")
        finally:
            wire.close()
    assert emulator.received == [h("FF 10 02 03 1A")]
    assert emulator.forbidden_received == [h("FF 10 02 03 1A")]


def test_e8_sub_command_equal_to_dle_is_read_after_unstuffing() -> None:
    example = EXCHANGES[-1]
    emulator = _emulator(_state(example.name), "legacy")
    with PtyServer(emulator) as server:
        wire = SerialWire(server.url)
        try:
            legacy_send(wire, example.legacy_request)
            assert legacy_receive(wire) == example.legacy_answer
        finally:
            wire.close()
    assert emulator.received == [h("A4 10")]
