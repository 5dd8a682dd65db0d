"""The two ways an ATOL register reports an FE task's result, on the wire (atol.md 3.3-3.4).

Real firmware answers a fast read either in the reply to ``C1`` (``A3``/``A4``, the
synchronous path) or with ``A2`` there and the result in an unsolicited ``F0`` packet
(``A6``/``A7 TID``, the asynchronous path); a public Java client (atol4j) reads results
only from the latter. The emulator's default mixes them per command (``mixed``: the FN
pass-through queries A4h asynchronously, the rest at once); ``async`` and ``sync`` pin
one path. Raw bytes over real TCP; the answers are the ones the synchronous path gives.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from atol_sim_wire import fe_ask, fe_send, packet_data
from atol_vectors import h
from sim_wire import NOW, SocketWire, quiet

from kktmon.drivers.atol import reads
from kktmon.drivers.wire import Read
from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol.frame import ASYNC_ID
from kktmon.protocol.errors import ChecksumError
from kktmon.simulators.atol.emulator import AtolEmulator, TaskResults
from kktmon.simulators.scenario import DeviceState
from kktmon.simulators.server import TcpServer

FN_STATUS_TASK = h("00 00 A4 30")
STATE_TASK = h("00 00 3F")
#: Every read of the driver's table of sources, as the task body a host queues.
DRIVER_READS = [
    cmd.request(read.command, read.sub, read.params).body
    for read in vars(reads).values()
    if isinstance(read, Read)
]


@contextmanager
def _served(state: DeviceState, results: TaskResults | None) -> Iterator[SocketWire]:
    if results is None:  # the default
        emulator = AtolEmulator(state, clock=lambda: NOW, link_layer="fe")
    else:
        emulator = AtolEmulator(state, clock=lambda: NOW, link_layer="fe", task_results=results)
    with TcpServer(emulator) as server:
        wire = SocketWire(server.url)
        try:
            yield wire
        finally:
            wire.close()


@pytest.fixture
def default(state: DeviceState) -> Iterator[SocketWire]:
    with _served(state, None) as wire:
        yield wire


@pytest.fixture
def asynchronous(state: DeviceState) -> Iterator[SocketWire]:
    with _served(state, "async") as wire:
        yield wire


def _sync_answer(state: DeviceState, body: bytes) -> bytes:
    """What the synchronous path answers ``body``: the reply to C1 after its status."""
    with _served(state.model_copy(deep=True), "sync") as wire:
        reply = fe_ask(wire, 0x01, h("C1 01 01") + body)
    assert reply[0] in (0xA3, 0xA4), reply.hex(" ")
    return reply[1:]


def test_the_default_answers_fn_queries_through_f0_and_the_rest_at_once(
    default: SocketWire, state: DeviceState
) -> None:
    wire = default
    assert fe_ask(wire, 0x01, h("C1 01 05") + FN_STATUS_TASK) == h("A2")  # running...
    assert packet_data(wire) == (ASYNC_ID, h("A6 05") + _sync_answer(state, FN_STATUS_TASK))
    assert fe_ask(wire, 0x02, h("C3 05")) == h("A3") + _sync_answer(state, FN_STATUS_TASK)
    assert fe_ask(wire, 0x03, h("C2 05")) == h("A3")
    state_reply = fe_ask(wire, 0x04, h("C1 01 06") + STATE_TASK)
    assert state_reply == h("A3") + _sync_answer(state, STATE_TASK)  # 3Fh: synchronous
    assert fe_ask(wire, 0x05, h("C2 06")) == h("A3")
    assert quiet(wire) == b"", "no F0 packet for a task answered at once"


def test_async_register_reports_every_read_only_through_f0(
    asynchronous: SocketWire, state: DeviceState
) -> None:
    """What atol4j needs: the result of each of the driver's reads in an F0 packet."""
    wire = asynchronous
    for tid, body in enumerate(DRIVER_READS):
        assert fe_ask(wire, 2 * tid, bytes([0xC1, 0x01, tid]) + body) == h("A2"), body.hex()
        packet_id, data = packet_data(wire)
        assert (packet_id, data[:2]) == (ASYNC_ID, bytes([0xA6, tid])), body.hex(" ")
        assert data[2:] == _sync_answer(state, body)
        assert fe_ask(wire, 2 * tid + 1, bytes([0xC2, tid])) == h("A3")


def test_async_refusal_is_an_a7_packet(asynchronous: SocketWire) -> None:
    wire = asynchronous
    assert fe_ask(wire, 0x01, h("C1 01 09 12 34 A4 30")) == h("A2")  # wrong password
    assert packet_data(wire) == (ASYNC_ID, h("A7 09 55 8C"))
    assert fe_ask(wire, 0x02, h("C3 09")) == h("A4 55 8C")


def test_the_default_refuses_a_command_off_the_allowlist_at_once(default: SocketWire) -> None:
    """It never reaches the fiscal drive, so it takes no asynchronous detour."""
    assert fe_ask(default, 0x01, h("C1 01 02 00 00 A4 45")) == h("A4 55 7A")
    assert quiet(default) == b""


def test_async_task_without_need_result_sends_nothing_more(asynchronous: SocketWire) -> None:
    wire = asynchronous
    assert fe_ask(wire, 0x01, h("C1 00 03") + FN_STATUS_TASK) == h("A2")
    assert quiet(wire) == b"", "no result was asked for"
    assert fe_ask(wire, 0x02, h("C3 03")) == h("B3")


def test_a_spoiled_f0_result_is_whole_again_through_c3(
    asynchronous: SocketWire, state: DeviceState
) -> None:
    state.faults.wrong_lrc_answers = 1
    wire = asynchronous
    fe_send(wire, 0x01, h("C1 01 04") + FN_STATUS_TASK)
    assert packet_data(wire) == (0x01, h("A2"))
    with pytest.raises(ChecksumError):
        packet_data(wire)  # the F0 packet, with a bad CRC
    assert fe_ask(wire, 0x02, h("C3 04")) == h("A3") + _sync_answer(state, FN_STATUS_TASK)
