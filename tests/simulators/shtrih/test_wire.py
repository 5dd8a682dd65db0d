"""The Shtrih-M simulator over a real TCP socket and a real pty, byte for byte.

The worked examples of shtrih-m.md section 10 are reproduced from states that hold the
facts each example decodes to; the link rules of section 3.1 are checked on the wire.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta

import pytest
from sim_wire import (
    NOW,
    SerialWire,
    SocketWire,
    answer_of,
    h,
    quiet,
    read_frame,
    request,
    transact,
)

from kktmon.protocol.shtrih.commands import NEVER_SEND
from kktmon.protocol.shtrih.frame import ACK, ENQ, NAK, STRAY, decode_frame
from kktmon.protocol.shtrih.records import parse_long_status, parse_short_status
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import TcpServer
from kktmon.simulators.shtrih.emulator import DEVICE_ONLY, ShtrihEmulator


def test_canonical_exchange_over_tcp_ends_with_the_stray_ff(
    wire: SocketWire, emulator: ShtrihEmulator
) -> None:
    wire.send(h("05"))
    assert wire.read(1) == h("15")  # idle
    wire.send(h("02 01 FC FD"))
    assert wire.read(1) == h("06")
    assert read_frame(wire) == h(
        "02 16 FC 00 00 00 01 0E FC 00 D8 D2 D0 C8 D5 2D CB C0 C9 D2 2D 30 32 D4 18"
    )
    wire.send(h("06"))
    assert wire.read(1) == bytes([STRAY])  # quirk 11.1
    assert quiet(wire) == b""
    assert emulator.received == [0xFC]
    assert emulator.forbidden_received == []


def test_canonical_exchange_over_a_pty_has_no_stray_ff(serial_wire: SerialWire) -> None:
    answer = transact(serial_wire, h("02 01 FC FD"), stray=False)
    assert answer[2] == 0xFC
    assert quiet(serial_wire) == b""


def test_stray_ff_can_be_forced_on_a_pty(serial_wire: SerialWire, state: DeviceState) -> None:
    state.faults.stray_ff = True
    transact(serial_wire, h("02 01 FC FD"), stray=True)


def test_stray_ff_can_be_switched_off_on_tcp(wire: SocketWire, state: DeviceState) -> None:
    state.faults.stray_ff = False
    transact(wire, h("02 01 FC FD"), stray=False)
    assert quiet(wire) == b""


def _e2(state: DeviceState) -> None:
    state.shift.state = "closed"
    state.shift.number = 90
    state.fn.last_document_number = 223


def _e3(state: DeviceState) -> None:
    state.faults.busy_printing = True


def _e4(state: DeviceState) -> None:
    state.fn.last_document_at = datetime(2021, 7, 29, 11, 29)


def _e7(state: DeviceState) -> None:
    state.ofd.unsent_count = 3
    state.ofd.first_unsent_at = datetime(2021, 7, 29, 11, 20)
    state.ofd.exchange_status = 0x02


def _e9(state: DeviceState) -> None:
    state.fn.valid_until = date(2026, 12, 31)


def _e11(state: DeviceState) -> None:
    _e4(state)
    state.fn.warnings = 0x0A


def _e12_unsupported(state: DeviceState) -> None:
    state.unsupported = ["FF01"]


def _default(state: DeviceState) -> None:
    pass


EXAMPLES: list[tuple[str, Callable[[DeviceState], None], str, str]] = [
    (
        "E1",
        _default,
        "02 01 FC FD",
        "02 16 FC 00 00 00 01 0E FC 00 D8 D2 D0 C8 D5 2D CB C0 C9 D2 2D 30 32 D4 18",
    ),
    (
        "E2",
        _e2,
        "02 05 11 1E 00 00 00 0A",
        "02 30 11 00 1E 54 33 1C 1C 11 0C 19 01 DF 00 92 02 04 00 02 57 41 00 00 01 01"
        " 10 0F 01 1A 10 07 28 00 86 45 00 00 5A 00 00 00 00 00 12 8C 86 42 02 00 F8",
    ),
    (
        "E3",
        _e3,
        "02 05 10 1E 00 00 00 0B",
        "02 10 10 00 1E 92 02 02 05 00 9F 2C 00 00 00 76 04 24 6C",
    ),
    (
        "E4",
        _e4,
        "02 06 FF 01 1E 00 00 00 E6",
        "02 21 FF 01 00 03 00 00 01 00 15 07 1D 0B 1D 39 32 38 37 34 34 30 33 30 31 31 32 30"
        " 39 39 31 A9 01 00 00 68",
    ),
    (
        "E5",
        _default,
        "02 09 1F 1E 00 00 00 12 01 00 01 1A",
        "02 17 1F 00 30 33 39 32 31 39 30 30 30 38 30 31 37 37 39 38 00 30 30 30 00 30",
    ),
    (
        "E7",
        _e7,
        "02 06 FF 39 1E 00 00 00 DE",
        "02 10 FF 39 00 02 00 03 00 A7 01 00 00 15 07 1D 0B 14 61",
    ),
    ("E8", _default, "02 06 FF 63 1E 00 00 00 84", "02 0B FF 63 00 EF BD 03 00 FF 03 00 00 3A"),
    ("E9", _e9, "02 06 FF 03 1E 00 00 00 E4", "02 08 FF 03 00 1A 0C 1F 0B 01 F7"),
    ("E10", _default, "02 06 FF 40 1E 00 00 00 A7", "02 08 FF 40 00 01 2A 00 05 00 99"),
    (
        "E11",
        _e11,
        "02 06 FF 01 1E 00 00 00 E6",
        "02 21 FF 01 00 03 00 00 01 0A 15 07 1D 0B 1D 39 32 38 37 34 34 30 33 30 31 31 32 30"
        " 39 39 31 A9 01 00 00 62",
    ),
    ("E12 unsupported", _e12_unsupported, "02 06 FF 01 1E 00 00 00 E6", "02 03 FF 01 37 CA"),
    ("E12 wrong password", _default, request(0x11, password=31).hex(" "), "02 02 11 4F 5C"),
]


@pytest.mark.parametrize(
    ("setup", "request_hex", "answer_hex"),
    [pytest.param(*example[1:], id=example[0]) for example in EXAMPLES],
)
def test_worked_example_is_reproduced_over_tcp(
    wire: SocketWire,
    state: DeviceState,
    setup: Callable[[DeviceState], None],
    request_hex: str,
    answer_hex: str,
) -> None:
    setup(state)
    assert transact(wire, h(request_hex), stray=True) == h(answer_hex)


@pytest.mark.parametrize("name", ["E1", "E4", "E10"])
def test_worked_example_is_reproduced_over_a_pty(
    serial_wire: SerialWire, state: DeviceState, name: str
) -> None:
    _, setup, request_hex, answer_hex = next(e for e in EXAMPLES if e[0] == name)
    setup(state)
    assert transact(serial_wire, h(request_hex), stray=False) == h(answer_hex)


def test_e13_cancel_receipt_is_refused_with_37h_and_logged(
    wire: SocketWire, emulator: ShtrihEmulator
) -> None:
    assert transact(wire, h("02 05 88 1E 00 00 00 93"), stray=True) == h("02 02 88 37 BD")
    assert emulator.forbidden_received == [0x88]
    assert emulator.received == [0x88]


def test_every_never_send_command_is_refused_and_logged(
    wire: SocketWire, emulator: ShtrihEmulator
) -> None:
    """All but B0h "continue printing" get 37h; B0h is done as a real register does it
    (a third-party client's loop must end), and every one of them is logged."""
    for code in sorted(NEVER_SEND):
        answer = answer_of(wire, request(code))
        expected = b"\x00\x1e" if code in DEVICE_ONLY else bytes([0x37])
        assert answer.data == expected, f"{code:X}h"
    assert set(DEVICE_ONLY) == {0xB0}
    assert emulator.forbidden_received == sorted(NEVER_SEND)


def test_an_off_allowlist_sub_command_is_forbidden_too(
    wire: SocketWire, emulator: ShtrihEmulator
) -> None:
    assert answer_of(wire, request(0xF7, b"\x02", password=None)).data == b"\x37"
    assert answer_of(wire, request(0xF7, b"\x01", password=None)).data[0] == 0
    assert emulator.forbidden_received == [0xF7]
    assert emulator.received == [0xF7, 0xF7]


def test_an_unsupported_command_answers_37h_but_is_not_forbidden(
    wire: SocketWire, state: DeviceState, emulator: ShtrihEmulator
) -> None:
    state.unsupported = ["ff63"]
    assert answer_of(wire, request(0xFF63)).data == b"\x37"
    assert emulator.received == [0xFF63]
    assert emulator.forbidden_received == []


def test_nak_of_an_answer_is_followed_by_a_resend_on_enq(wire: SocketWire) -> None:
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([NAK])
    wire.send(request(0xFF40))
    assert wire.read(1) == bytes([ACK])
    first = read_frame(wire)
    wire.send(bytes([NAK]))
    assert quiet(wire) == b""  # the register never resends by itself
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([ACK])
    assert read_frame(wire) == first
    wire.send(bytes([ACK]))
    assert wire.read(1) == bytes([STRAY])
    wire.send(bytes([ENQ]))
    assert wire.read(1) == bytes([NAK])  # idle again


def test_a_new_connection_gets_a_fresh_link_but_the_same_device(
    tcp: TcpServer, emulator: ShtrihEmulator, state: DeviceState
) -> None:
    first = SocketWire(tcp.url)
    first.send(bytes([ENQ]))
    assert first.read(1) == bytes([NAK])
    first.send(request(0xFF40))
    assert first.read(1) == bytes([ACK])
    read_frame(first)
    first.close()  # leaves its answer unacknowledged
    state.shift.number = 43
    second = SocketWire(tcp.url)
    try:
        answer = answer_of(second, request(0xFF40))  # starts with ENQ -> NAK: no pending
    finally:
        second.close()
    assert answer.data == h("00 01 2B 00 05 00")
    assert emulator.received == [0xFF40, 0xFF40]


def test_pending_answer_at_connect_is_the_stale_status_of_another_program(
    tcp: TcpServer, state: DeviceState
) -> None:
    state.faults.pending_answer = True
    client = SocketWire(tcp.url)
    try:
        client.send(bytes([ENQ]))
        assert client.read(1) == bytes([ACK])
        stale = parse_short_status(decode_frame(read_frame(client)))
        client.send(bytes([ACK]))
        assert client.read(1) == bytes([STRAY])
        answer = answer_of(client, request(0xFC, password=None))
    finally:
        client.close()
    assert stale.operator == 1  # a cashier's request, not ours
    assert answer.code == 0xFC


def test_device_time_follows_the_host_clock_and_the_offset(
    wire: SocketWire, state: DeviceState
) -> None:
    state.clock_offset_s = -3600
    status = parse_long_status(answer_of(wire, request(0x11)))
    assert status.device_time == NOW - timedelta(hours=1)
