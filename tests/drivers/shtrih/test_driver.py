"""Shtrih-M driver end to end: real pyserial/TCP transports, real bytes, the simulator.

The snapshot must report the facts the simulated register holds, with the link faults
this protocol recovers from in its own way, and nothing outside the allowlist may ever
reach the register. Failures every vendor shares (silence, a held or missing port,
garbled answers, a dropped line) are in ``tests/drivers/test_contract.py``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from kktmon.drivers.base import DriverOptions
from kktmon.drivers.shtrih.driver import ShtrihDriver
from kktmon.drivers.transport import Transport, open_transport
from kktmon.protocol.health import HealthSnapshot, LinkState, PaperState, ShiftState
from kktmon.protocol.shtrih.commands import is_allowed
from kktmon.protocol.shtrih.frame import decode_frame, split_command
from kktmon.simulators.scenario import DeviceState, default_state
from kktmon.simulators.server import PtyServer, TcpServer
from kktmon.simulators.shtrih.emulator import ShtrihEmulator

FAST = DriverOptions(
    control_timeout_s=0.3,
    answer_timeout_s=1.0,
    archive_timeout_s=1.0,
    byte_timeout_s=0.3,
    enq_tries=4,
    poll_deadline_s=20,
)


@pytest.fixture(params=["tcp", "pty"])
def simulator(
    request: pytest.FixtureRequest,
) -> Iterator[TcpServer[ShtrihEmulator] | PtyServer[ShtrihEmulator]]:
    emulator = ShtrihEmulator(default_state())
    runner = TcpServer(emulator) if request.param == "tcp" else PtyServer(emulator)
    with runner:
        yield runner


@pytest.fixture
def tcp_simulator() -> Iterator[TcpServer[ShtrihEmulator]]:
    with TcpServer(ShtrihEmulator(default_state())) as runner:
        yield runner


def _emulator(runner: TcpServer | PtyServer) -> ShtrihEmulator:
    device = runner.device
    assert isinstance(device, ShtrihEmulator)
    return device


def _minute(moment: datetime) -> datetime:
    """FN dates carry no seconds (YY MM DD HH MM)."""
    return moment.replace(second=0, microsecond=0)


def assert_matches(snapshot: HealthSnapshot, state: DeviceState) -> None:
    """The snapshot reports what the register holds, field for field."""
    assert not snapshot.stale and snapshot.link.state is LinkState.OK
    device, fn = snapshot.device, snapshot.fn
    assert (device.vendor, device.model, device.serial) == ("shtrih", state.model, state.serial)
    assert (device.rnm, device.inn) == (state.rnm, state.inn)
    assert device.firmware is not None and device.firmware.startswith(state.firmware)
    assert device.ffd.device == state.ffd.device
    assert fn.serial == state.fn.serial and fn.phase is not None
    assert fn.phase.raw == state.fn.phase
    assert fn.valid_until == state.fn.valid_until
    assert fn.registrations_left == state.fn.registrations_left
    assert fn.warnings.raw == state.fn.warnings
    assert fn.last_document_number == state.fn.last_document_number
    assert fn.last_document_at is not None
    assert fn.last_document_at.replace(tzinfo=None) == _minute(state.fn.last_document_at)
    assert fn.documents_left == state.fn.documents_left
    assert snapshot.ofd.unsent_count == state.ofd.unsent_count
    assert snapshot.shift.number == state.shift.number
    assert snapshot.shift.state is not None and snapshot.shift.state.value == state.shift.state
    if state.shift.is_open:
        assert state.shift.opened_at is not None and snapshot.shift.opened_at is not None
        opened = _minute(state.shift.opened_at)
        assert snapshot.shift.opened_at.replace(tzinfo=None) == opened
    assert snapshot.printer.paper is not None
    assert snapshot.printer.paper.value == state.printer.paper
    assert snapshot.printer.cover_open == state.printer.cover_open
    assert snapshot.clock.skew_s is not None
    assert abs(snapshot.clock.skew_s - state.clock_offset_s) < 2


def test_snapshot_reports_the_registers_facts(simulator: TcpServer | PtyServer) -> None:
    snapshot = ShtrihDriver(simulator.url, FAST).read_health()
    assert_matches(snapshot, _emulator(simulator).state)
    assert snapshot.device.transport in {"socket", "serial"}
    assert snapshot.link.bytes_tx > 0 and snapshot.link.bytes_rx > snapshot.link.bytes_tx
    assert snapshot.block_reason == "shift_24_hours"
    assert _emulator(simulator).forbidden_received == []


def test_problem_facts_travel_through(tcp_simulator: TcpServer) -> None:
    state = _emulator(tcp_simulator).state
    now = time.time()
    state.fn.warnings = 0x8B
    state.ofd.unsent_count = 3
    state.ofd.first_unsent_at = state.fn.last_document_at - timedelta(days=2)
    state.printer.paper = "out"
    state.printer.cover_open = True
    state.clock_offset_s = 400.0
    state.shift.state = "closed"  # else the 24-hour shift limit is the earlier deadline
    snapshot = ShtrihDriver(tcp_simulator.url, FAST).read_health()
    assert_matches(snapshot, state)
    assert snapshot.fn.warnings.critical_error and snapshot.fn.warnings.ofd_timeout
    assert snapshot.ofd.first_unsent_at is not None and snapshot.ofd.oldest_unsent_age_h
    assert snapshot.ofd.oldest_unsent_age_h >= 48
    assert snapshot.printer.paper is PaperState.OUT
    first_unsent = snapshot.ofd.first_unsent_at.timestamp()
    assert snapshot.block_reason == "ofd_30_days"
    assert snapshot.block_at is not None
    assert abs(snapshot.block_at.timestamp() - (first_unsent + 30 * 86400)) < 1
    assert first_unsent < now


def test_expired_shift_and_closed_shift(tcp_simulator: TcpServer) -> None:
    state = _emulator(tcp_simulator).state
    state.shift.state = "expired"
    state.shift.opened_at = state.fn.last_document_at - timedelta(hours=30)
    driver = ShtrihDriver(tcp_simulator.url, FAST)
    assert driver.read_health().shift.state is ShiftState.EXPIRED
    state.shift.state = "closed"
    closed = driver.read_health().shift
    assert closed.state is ShiftState.CLOSED and closed.opened_at is None


def test_shift_walk_runs_once_per_shift(tcp_simulator: TcpServer) -> None:
    emulator = _emulator(tcp_simulator)
    driver = ShtrihDriver(tcp_simulator.url, FAST)
    driver.read_health()
    walked = emulator.received.count(0xFF0A)
    assert walked == emulator.state.shift.receipts + 1
    second = driver.read_health()
    assert emulator.received.count(0xFF0A) == walked, "cached per shift number"
    assert second.shift.opened_at is not None


def test_unsupported_commands_degrade_to_nulls(tcp_simulator: TcpServer) -> None:
    emulator = _emulator(tcp_simulator)
    emulator.state.unsupported = ["FF63", "FF09"]
    driver = ShtrihDriver(tcp_simulator.url, FAST)
    snapshot = driver.read_health()
    assert not snapshot.stale
    assert snapshot.fn.documents_left is None and snapshot.fn.memory_used_pct is None
    assert snapshot.device.rnm == emulator.state.rnm, "RNM still comes from table 18"
    asked = emulator.received.count(0xFF63)
    driver.read_health()
    assert emulator.received.count(0xFF63) == asked, "not asked again once refused with 37h"


def test_fn_replacement_refreshes_identity(tcp_simulator: TcpServer) -> None:
    emulator = _emulator(tcp_simulator)
    driver = ShtrihDriver(tcp_simulator.url, FAST)
    driver.read_health()
    identities = emulator.received.count(0xFC)
    driver.read_health()
    assert emulator.received.count(0xFC) == identities
    emulator.state.fn.serial = "9999078900000001"
    assert driver.read_health().fn.serial == "9999078900000001"
    assert emulator.received.count(0xFC) == identities + 1


FAULTS: dict[str, Callable[[DeviceState], None]] = {
    "one NAK": lambda s: setattr(s.faults, "nak_frames", 1),
    "NAK storm within limits": lambda s: setattr(s.faults, "nak_frames", 3),
    "slow answers": lambda s: setattr(s.faults, "slow_answer_s", 0.1),
    "busy printing": lambda s: setattr(s.faults, "busy_printing", True),
    "pending answer at connect": lambda s: setattr(s.faults, "pending_answer", True),
    "stray 0xFF": lambda s: setattr(s.faults, "stray_ff", True),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_recoverable_faults_still_give_the_facts(
    simulator: TcpServer | PtyServer, fault: str
) -> None:
    emulator = _emulator(simulator)
    FAULTS[fault](emulator.state)
    snapshot = ShtrihDriver(simulator.url, FAST).read_health()
    assert_matches(snapshot, emulator.state)
    assert emulator.forbidden_received == []
    if fault in {"one NAK", "NAK storm within limits"}:
        assert snapshot.link.retries >= 1
    if fault == "busy printing":
        assert snapshot.printer.raw["submode"] == 5


def test_every_byte_the_driver_writes_is_on_the_allowlist(tcp_simulator: TcpServer) -> None:
    """Walk every path that emits commands (identity, poll, shift walk, retries)."""
    written: list[bytes] = []

    def recording(url: str) -> Transport:
        transport = open_transport(url)
        original = transport.write

        def write(data: bytes) -> None:
            written.append(data)
            original(data)

        transport.write = write  # type: ignore[method-assign]
        return transport

    emulator = _emulator(tcp_simulator)
    emulator.state.faults.nak_frames = 1
    emulator.state.faults.wrong_lrc_answers = 1
    driver = ShtrihDriver(tcp_simulator.url, FAST, transport_factory=recording)
    driver.identify()
    driver.read_health()
    emulator.state.fn.serial = "9999078900000002"
    emulator.state.shift.number += 1
    driver.read_health()
    frames = [data for data in written if data[:1] == b"\x02"]
    assert {data for data in written if data[:1] != b"\x02"} <= {b"\x05", b"\x06", b"\x15"}
    codes = set()
    for data in frames:
        frame = split_command(decode_frame(data).body)
        assert is_allowed(frame.code, frame.data), f"sent {data.hex(' ')}"
        codes.add(frame.code)
    assert {0xFC, 0xF7, 0x10, 0x11, 0x1F, 0xFF01, 0xFF0A, 0xFF39, 0xFF63} <= codes
    assert emulator.forbidden_received == []


def test_pty_path_is_a_real_device() -> None:
    with PtyServer(ShtrihEmulator(default_state())) as runner:
        assert os.path.exists(runner.url.removeprefix("serial://"))
