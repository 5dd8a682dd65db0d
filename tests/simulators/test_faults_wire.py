"""What every wire emulator does under a fault, whatever its vendor: one contract.

Each wire vendor (Shtrih-M, Pirit, ATOL on its FE and LEGACY link layers) brings the
bytes of one good exchange and the host link machine of its codec; the tests are the
same for all: a ``silent`` register answers nothing, not even its link check, and serves
again once the fault is off; ``disconnect_after`` hangs up a TCP connection after that
many exchanges and cannot hang up a serial line; the host link rides out every fault
the vendor recovers from, over TCP and a pty; and a ``lost_answers`` answer never
arrives while the register stays on the line, for the link (or the driver) to ask
again. What a fault *looks like* on each link (which byte answers a NAK storm, where
noise or a stale answer shows) is tested in ``tests/simulators/<vendor>/test_faults.py``.

Waits here are lower bounds only ("nothing arrived yet"), which a slow machine cannot
make fail; nothing asserts how long anything took.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from atol_sim_wire import HOST_TIMEOUTS as ATOL_WAITS
from atol_sim_wire import fe_ask, legacy_transact
from atol_vectors import h as atol_h
from pirit_sim_wire import WAITS_S as PIRIT_WAITS
from pirit_sim_wire import ask
from pirit_sim_wire import request as pirit_request
from sim_wire import (
    HOST_WAITS,
    NOW,
    SerialWire,
    SocketWire,
    Wire,
    h,
    quiet,
    request,
    run_host,
    transact,
)

from kktmon.protocol.atol import records as atol_records
from kktmon.protocol.atol.commands import FN_STATUS, request_fn
from kktmon.protocol.atol.frame import encode_packet
from kktmon.protocol.atol.legacy import LegacyLink, decode_frame, encode_frame
from kktmon.protocol.atol.link import FeLink
from kktmon.protocol.errors import LinkTimeoutError
from kktmon.protocol.link import LinkMachine, WaitKind
from kktmon.protocol.pirit import fn_records as pirit_records
from kktmon.protocol.pirit.link import HostLink as PiritHostLink
from kktmon.protocol.shtrih import records as shtrih_records
from kktmon.protocol.shtrih.link import HostLink as ShtrihHostLink
from kktmon.simulators.atol import AtolEmulator
from kktmon.simulators.emulator import WireEmulator
from kktmon.simulators.pirit import PiritEmulator
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import PtyServer, TcpServer
from kktmon.simulators.shtrih import ShtrihEmulator

ENQ = b"\x05"  # the link check of Shtrih-M, Pirit and ATOL LEGACY alike

Fault = dict[str, object]


@dataclass(frozen=True)
class WireVendor:
    """One wire vendor as the contract sees it."""

    name: str
    emulator: Callable[[DeviceState], WireEmulator[Any]]
    #: Bytes a silent register must not answer, each with how long silence is watched.
    silence_probes: list[tuple[bytes, float]]
    #: One good exchange over a raw wire (``n``: its number, for ids; ``tcp``: the
    #: transport), asserting every answer on the way.
    exchange: Callable[[Wire, int, bool], None]
    #: The codec's host link asking for the FN serial, and how the answer tells it.
    host_link: Callable[[], LinkMachine[Any]]
    fn_serial: Callable[[Any], str | None]
    waits: dict[WaitKind, float]
    #: Faults the host link rides out to the right answer.
    recovers: list[Fault]
    #: Whether the link gets a lost answer back by itself (the register keeps it); else
    #: the link gives up and the driver asks again.
    gets_lost_answer_back: bool


# ------------------------------------------------------------------ Shtrih-M

FC = h("02 01 FC FD")


def _shtrih_exchange(wire: Wire, n: int, tcp: bool) -> None:
    transact(wire, FC, stray=tcp)


SHTRIH = WireVendor(
    name="shtrih",
    emulator=lambda state: ShtrihEmulator(state, clock=lambda: NOW, seed=7),
    silence_probes=[(ENQ, 0.15), (FC, 0.15)],
    exchange=_shtrih_exchange,
    host_link=lambda: ShtrihHostLink(request(0xFF01)),
    fn_serial=lambda answer: shtrih_records.parse_fn_status(answer).serial,
    waits=HOST_WAITS,
    recovers=[
        {"nak_frames": 2},
        {"wrong_lrc_answers": 2},
        {"cut_answers": 1},
        {"garbage_before_stx": 5},
        {"pending_answer": True},
        {"slow_answer_s": 0.1},
    ],
    gets_lost_answer_back=True,  # ENQ -> ACK and the kept answer again
)

# ------------------------------------------------------------------ Pirit

STATUS = pirit_request(0x00)


def _pirit_exchange(wire: Wire, n: int, tcp: bool) -> None:
    assert ask(wire, STATUS).error == 0


PIRIT = WireVendor(
    name="pirit",
    emulator=lambda state: PiritEmulator(state, clock=lambda: NOW, seed=7),
    # A stalled frame gets no 05h either.
    silence_probes=[(ENQ, 0.15), (STATUS, 0.15), (STATUS[:9], 0.4)],
    exchange=_pirit_exchange,
    host_link=lambda: PiritHostLink(pirit_request(0x78, 1)),
    fn_serial=pirit_records.parse_fn_serial,
    waits=PIRIT_WAITS,
    recovers=[
        {"garbage_before_stx": 5},
        {"pending_answer": True},
        {"slow_answer_s": 0.6},  # longer than the ANSWER wait: ENQ proves it alive
        {"busy_printing": True},
        {"stray_ff": True},
    ],
    gets_lost_answer_back=False,  # the reply is gone; ENQ only proves the register alive
)

# ------------------------------------------------------------------ ATOL, both link layers

TASK = atol_h("00 00 A4 30")
FRAME = encode_frame(TASK)


def _add(tid: int) -> bytes:
    return bytes([0xC1, 0x01, tid]) + TASK


def _fe_exchange(wire: Wire, n: int, tcp: bool) -> None:
    """Queue a task and acknowledge it (``disconnect_after`` counts the C2s)."""
    assert fe_ask(wire, 2 * n, _add(n))[0] == 0xA3
    assert fe_ask(wire, 2 * n + 1, bytes([0xC2, n])) == atol_h("A3")


def _legacy_exchange(wire: Wire, n: int, tcp: bool) -> None:
    assert decode_frame(legacy_transact(wire, FRAME))[:2] == atol_h("55 00")


_ATOL_RECOVERS: list[Fault] = [
    {"garbage_before_stx": 5},
    {"nak_frames": 2},
    {"slow_answer_s": 0.1},
    {"cut_answers": 1},
    {"wrong_lrc_answers": 2},
    {"busy_printing": True},
    {"disconnect_after": 1},
    {"pending_answer": True},
    {"stray_ff": True},
]

ATOL_FE = WireVendor(
    name="atol-fe",
    emulator=lambda state: AtolEmulator(
        state, clock=lambda: NOW, seed=5, link_layer="fe", task_results="sync"
    ),  # the raw exchange below reads C1's own reply
    silence_probes=[(encode_packet(0x01, _add(1)), 0.15)],
    exchange=_fe_exchange,
    host_link=lambda: FeLink(request_fn(FN_STATUS)),
    fn_serial=lambda answer: atol_records.parse_fn_status(answer).serial,
    waits=ATOL_WAITS,
    recovers=_ATOL_RECOVERS,
    gets_lost_answer_back=True,  # C3 (or B2 to the resent C1) and the kept result
)

ATOL_LEGACY = WireVendor(
    name="atol-legacy",
    emulator=lambda state: AtolEmulator(state, clock=lambda: NOW, seed=5, link_layer="legacy"),
    silence_probes=[(ENQ, 0.15)],
    exchange=_legacy_exchange,
    host_link=lambda: LegacyLink(request_fn(FN_STATUS)),
    fn_serial=lambda answer: atol_records.parse_fn_status(answer).serial,
    waits=ATOL_WAITS,
    recovers=_ATOL_RECOVERS,
    gets_lost_answer_back=False,  # the host waits in vain for the frame it ACKed for
)

VENDORS = [SHTRIH, PIRIT, ATOL_FE, ATOL_LEGACY]


@pytest.fixture(params=VENDORS, ids=lambda vendor: vendor.name)
def vendor(request: pytest.FixtureRequest) -> WireVendor:
    chosen: WireVendor = request.param
    return chosen


@pytest.fixture
def served(vendor: WireVendor, state: DeviceState) -> Iterator[SocketWire]:
    with TcpServer(vendor.emulator(state)) as server:
        wire = SocketWire(server.url)
        yield wire
        wire.close()


# ------------------------------------------------------------------ the raw wire


def test_silent_register_answers_nothing_not_even_its_link_check(
    vendor: WireVendor, served: SocketWire, state: DeviceState
) -> None:
    state.faults.silent = True
    for probe, watched_s in vendor.silence_probes:
        served.send(probe)
        assert quiet(served, watched_s) == b""
    state.faults.silent = False
    vendor.exchange(served, 2, True)


def test_disconnect_after_hangs_up_tcp_after_n_exchanges(
    vendor: WireVendor, served: SocketWire, state: DeviceState
) -> None:
    state.faults.disconnect_after = 2
    vendor.exchange(served, 1, True)
    vendor.exchange(served, 2, True)
    assert served.read(1) == b""  # EOF: the register dropped us


def test_disconnect_after_cannot_hang_up_a_serial_line(
    vendor: WireVendor, state: DeviceState
) -> None:
    state.faults.disconnect_after = 1
    with PtyServer(vendor.emulator(state)) as server:
        wire = SerialWire(server.url)
        try:
            vendor.exchange(wire, 1, False)
            vendor.exchange(wire, 2, False)
        finally:
            wire.close()


# ------------------------------------------------------------------ the host side copes


def _recoverable() -> list[Any]:
    return [
        pytest.param(vendor, fault, id=f"{vendor.name}-{next(iter(fault))}")
        for vendor in VENDORS
        for fault in vendor.recovers
    ]


@pytest.mark.parametrize(("wire_vendor", "fault"), _recoverable())
@pytest.mark.parametrize("runner", [TcpServer, PtyServer], ids=["tcp", "pty"])
def test_host_link_recovers_from_each_fault(
    state: DeviceState,
    wire_vendor: WireVendor,
    fault: Fault,
    runner: type[TcpServer] | type[PtyServer],
) -> None:
    for name, value in fault.items():
        setattr(state.faults, name, value)
    emulator = wire_vendor.emulator(state)
    with runner(emulator) as server:
        answer = run_host(server.url, wire_vendor.host_link(), wire_vendor.waits)
    assert wire_vendor.fn_serial(answer) == state.fn.serial
    for name in ("nak_frames", "wrong_lrc_answers", "cut_answers"):
        assert getattr(state.faults, name) == 0, f"{name} did not fire"
    assert emulator.forbidden_received == []


@pytest.mark.parametrize("runner", [TcpServer, PtyServer], ids=["tcp", "pty"])
def test_a_lost_answer_never_arrives_and_the_register_stays_on_the_line(
    state: DeviceState, vendor: WireVendor, runner: type[TcpServer] | type[PtyServer]
) -> None:
    state.faults.lost_answers = 1
    emulator = vendor.emulator(state)
    with runner(emulator) as server:
        link = vendor.host_link()
        if vendor.gets_lost_answer_back:
            answer = run_host(server.url, link, vendor.waits)
            assert link.retries >= 1, "the link asked for it again"
        else:
            with pytest.raises(LinkTimeoutError):
                run_host(server.url, link, vendor.waits)
            answer = run_host(server.url, vendor.host_link(), vendor.waits)  # the driver's re-ask
    assert vendor.fn_serial(answer) == state.fn.serial
    assert state.faults.lost_answers == 0, "the loss fired"
    assert emulator.forbidden_received == []
