"""ATOL driver end to end: real pyserial/TCP transports, real bytes, the ATOL emulator.

Every test runs on both link layers (FE "АТОЛ 3.0" and LEGACY "2.4"). The snapshot must
report the facts the emulated register holds, with the link faults each layer recovers
from in its own way, and nothing outside the allowlist may ever reach the register.
Failures every vendor shares (silence, a held or missing port, garbled answers, a
dropped line) are in ``tests/drivers/test_contract.py``, on both layers too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest

from kktmon.drivers.atol.driver import AtolDriver
from kktmon.drivers.atol.link import LinkLayer, split_url
from kktmon.drivers.base import DriverOptions
from kktmon.drivers.transport import Transport, open_transport
from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol.frame import (
    TASK_ACK,
    TASK_ADD,
    TASK_REQ,
    HostTask,
    PacketReader,
    decode_packet,
    parse_host_task,
)
from kktmon.protocol.atol.legacy import ACK, ENQ, EOT, NAK, STX, decode_frame
from kktmon.protocol.errors import ConfigError
from kktmon.protocol.health import HealthSnapshot, LinkState, PaperState, ShiftState
from kktmon.simulators.atol.answers import identity
from kktmon.simulators.atol.emulator import AtolEmulator
from kktmon.simulators.scenario import DeviceState, default_state, load_builtin
from kktmon.simulators.server import PtyServer, TcpServer

FAST = DriverOptions(
    control_timeout_s=0.2,
    answer_timeout_s=1.0,
    archive_timeout_s=1.0,
    byte_timeout_s=0.2,
    enq_tries=3,
    poll_deadline_s=20,
)
#: A control timeout shorter than the emulator's task time: FE polls running tasks (C3).
EAGER = FAST.model_copy(update={"control_timeout_s": 0.05})
SLOWER_THAN_CONTROL_S = 0.08
#: A command may run this long before the register counts as busy.
IMPATIENT = FAST.model_copy(update={"answer_timeout_s": 0.4})
LAYERS = ["fe", "legacy"]
Runner = TcpServer[AtolEmulator] | PtyServer[AtolEmulator]


def serve(kind: str, layer: str, state: DeviceState | None = None) -> Runner:
    emulator = AtolEmulator(state or default_state(), link_layer=layer)  # type: ignore[arg-type]
    return TcpServer(emulator) if kind == "tcp" else PtyServer(emulator)


@pytest.fixture(params=[(kind, layer) for kind in ("tcp", "pty") for layer in LAYERS])
def simulator(request: pytest.FixtureRequest) -> Iterator[Runner]:
    with serve(*request.param) as runner:
        yield runner


@pytest.fixture(params=LAYERS)
def tcp_simulator(request: pytest.FixtureRequest) -> Iterator[Runner]:
    with serve("tcp", request.param) as runner:
        yield runner


def _emulator(runner: Runner) -> AtolEmulator:
    return runner.device


def linked(runner: Runner) -> str:
    """The runner's URL naming its layer: no probing where probing is not the point."""
    return f"{runner.url}?link={_emulator(runner).link_layer}"


def _minute(moment: datetime) -> datetime:
    """FN dates carry no seconds (YY MM DD hh mm)."""
    return moment.replace(second=0, microsecond=0)


def _naive(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=None) if moment else None


def assert_matches(snapshot: HealthSnapshot, state: DeviceState) -> None:
    """The snapshot reports what the register holds, field for field."""
    assert not snapshot.stale and snapshot.link.state is LinkState.OK
    device, fn = snapshot.device, snapshot.fn
    model = identity(state)  # an АТОЛ 30Ф unless the scenario names an ATOL model
    assert (device.vendor, device.model) == ("atol", model.name)
    assert device.serial == state.serial[-14:], "ATOL serials have 14 digits (register 16h)"
    assert device.firmware == f"{model.firmware} build {model.build}"
    if state.fn.phase & 0x02:  # A4h 43h answers only once registered
        assert (device.rnm, device.inn) == (state.rnm, state.inn)
    assert (device.ffd.device, device.ffd.fn) == (state.ffd.device, state.ffd.fn)
    assert fn.serial == state.fn.serial and fn.phase is not None
    assert fn.phase.raw == state.fn.phase
    assert fn.valid_until == state.fn.valid_until
    assert fn.registrations_left == state.fn.registrations_left
    assert fn.warnings.raw == state.fn.warnings
    assert fn.last_document_number == state.fn.last_document_number
    if state.fn.last_document_number:
        assert _naive(fn.last_document_at) == _minute(state.fn.last_document_at)
    assert fn.documents_left == state.fn.documents_left
    assert fn.storage_30d_free_kb == state.fn.storage_30d_free_kb
    assert fn.firmware == state.fn.firmware
    assert snapshot.ofd.unsent_count == state.ofd.unsent_count
    if state.ofd.unsent_count and state.ofd.first_unsent_at:
        assert _naive(snapshot.ofd.first_unsent_at) == _minute(state.ofd.first_unsent_at)
    assert snapshot.ofd.exchange is not None
    assert snapshot.ofd.exchange.raw == state.ofd.exchange_status
    assert snapshot.shift.number == state.shift.number
    assert snapshot.shift.state is not None and snapshot.shift.state.value == state.shift.state
    if state.shift.is_open:
        assert state.shift.opened_at is not None
        opened = state.shift.opened_at.replace(microsecond=0)  # register 12h: seconds
        assert _naive(snapshot.shift.opened_at) == opened
    assert snapshot.printer.paper is not None
    assert snapshot.printer.paper.value == state.printer.paper
    assert snapshot.printer.cover_open == state.printer.cover_open
    assert snapshot.printer.fault == state.printer.fault
    assert snapshot.clock.skew_s is not None
    assert abs(snapshot.clock.skew_s - state.clock_offset_s) < 2


def test_snapshot_reports_the_registers_facts(simulator: Runner) -> None:
    emulator = _emulator(simulator)
    driver = AtolDriver(simulator.url, FAST)
    snapshot = driver.read_health()
    assert_matches(snapshot, emulator.state)
    assert driver.layer == emulator.link_layer, "probed"
    assert snapshot.device.transport in {"socket", "serial"}
    assert snapshot.link.bytes_tx > 0 and snapshot.link.bytes_rx > snapshot.link.bytes_tx
    assert snapshot.link.last_error is None
    assert snapshot.block_reason == "shift_24_hours"
    assert emulator.forbidden_received == []
    assert 0xC4 not in emulator.buffer_commands, "never Abort: it drops other tasks"


@pytest.mark.parametrize("scenario", ["fn_expiring", "ofd_stale", "paper_out", "shift_expired"])
@pytest.mark.parametrize("layer", LAYERS)
def test_problem_scenarios_travel_through(scenario: str, layer: str) -> None:
    with serve("tcp", layer, load_builtin(scenario)) as runner:
        state = _emulator(runner).state
        snapshot = AtolDriver(linked(runner), FAST).read_health()
    assert_matches(snapshot, state)
    if scenario == "fn_expiring":
        assert snapshot.fn.days_left is not None and snapshot.fn.days_left <= 5
        assert snapshot.fn.warnings.resource_exhausting
    if scenario == "ofd_stale":
        assert snapshot.ofd.oldest_unsent_age_h is not None
        assert snapshot.ofd.oldest_unsent_age_h >= 27 * 24
        assert snapshot.fn.warnings.ofd_timeout
        assert snapshot.ofd.exchange is not None and snapshot.ofd.exchange.message_pending
    if scenario == "paper_out":
        assert snapshot.printer.paper is PaperState.OUT and snapshot.printer.cover_open
    if scenario == "shift_expired":
        assert snapshot.shift.state is ShiftState.EXPIRED
        assert snapshot.shift.hours_open is not None and snapshot.shift.hours_open >= 24


def test_closed_shift(tcp_simulator: Runner) -> None:
    state = _emulator(tcp_simulator).state
    driver = AtolDriver(linked(tcp_simulator), FAST)
    state.shift.state = "closed"
    closed = driver.read_health()
    assert closed.shift.state is ShiftState.CLOSED and closed.shift.opened_at is None
    assert_matches(closed, state)


def test_not_fiscal_register_degrades_registration_to_null(tcp_simulator: Runner) -> None:
    emulator = _emulator(tcp_simulator)
    emulator.state = load_builtin("not_fiscal")
    snapshot = AtolDriver(linked(tcp_simulator), FAST).read_health()
    assert_matches(snapshot, emulator.state)
    assert snapshot.device.rnm is None and snapshot.device.inn is None


def test_shift_opening_is_read_once_per_shift(tcp_simulator: Runner) -> None:
    emulator = _emulator(tcp_simulator)
    driver = AtolDriver(linked(tcp_simulator), FAST)
    register_12h = bytes([cmd.READ_REGISTER, cmd.REG_SHIFT, 0, 0])
    driver.read_health()
    assert emulator.received.count(register_12h) == 1
    second = driver.read_health()
    assert emulator.received.count(register_12h) == 1, "cached per shift number"
    assert second.shift.opened_at is not None


def test_shift_opening_inferred_from_the_flag_changing(tcp_simulator: Runner) -> None:
    """Without register 12h: closed -> open with one new FN document (the opening report)."""
    state = _emulator(tcp_simulator).state
    state.unsupported = ["9112"]
    state.shift.state = "closed"
    driver = AtolDriver(linked(tcp_simulator), FAST)
    assert driver.read_health().shift.state is ShiftState.CLOSED
    opened = datetime.now().replace(microsecond=0) - timedelta(minutes=1)
    state.shift.number += 1
    state.shift.receipts = 0
    state.shift.opened_at = opened
    state.fn.last_document_number += 1
    state.fn.last_document_at = opened
    state.shift.state = "open"
    shift = driver.read_health().shift
    assert shift.state is ShiftState.OPEN and shift.number == state.shift.number
    assert _naive(shift.opened_at) == _minute(opened)
    state.fn.last_document_number += 1  # a receipt: the inference stays cached
    assert _naive(driver.read_health().shift.opened_at) == _minute(opened)


def test_first_poll_without_register_12h_leaves_the_opening_null(tcp_simulator: Runner) -> None:
    _emulator(tcp_simulator).state.unsupported = ["9112"]
    shift = AtolDriver(linked(tcp_simulator), FAST).read_health().shift
    assert shift.state is ShiftState.OPEN and shift.opened_at is None, "never invented"


def test_unsupported_commands_degrade_to_nulls(tcp_simulator: Runner) -> None:
    emulator = _emulator(tcp_simulator)
    emulator.state.unsupported = ["A43D", "9136"]
    driver = AtolDriver(linked(tcp_simulator), FAST)
    snapshot = driver.read_health()
    assert not snapshot.stale
    assert snapshot.fn.documents_left is None and snapshot.fn.memory_used_pct is None
    assert snapshot.device.ffd.device is None
    assert snapshot.fn.serial == emulator.state.fn.serial
    resource = bytes([cmd.FN_QUERY, cmd.FN_RESOURCE])
    asked = emulator.received.count(resource)
    driver.read_health()
    assert emulator.received.count(resource) == asked == 1, "not asked again once refused"


def test_fn_replacement_refreshes_identity(tcp_simulator: Runner) -> None:
    emulator = _emulator(tcp_simulator)
    driver = AtolDriver(linked(tcp_simulator), FAST)
    device_type = bytes([cmd.DEVICE_TYPE])
    driver.read_health()
    identities = emulator.received.count(device_type)
    driver.read_health()
    assert emulator.received.count(device_type) == identities
    emulator.state.fn.serial = "9999078900000001"
    assert driver.read_health().fn.serial == "9999078900000001"
    assert emulator.received.count(device_type) == identities + 1


def test_identify(tcp_simulator: Runner) -> None:
    state = _emulator(tcp_simulator).state
    info = AtolDriver(linked(tcp_simulator), FAST).identify()
    assert (info.vendor, info.model, info.serial) == ("atol", "АТОЛ 30Ф", state.serial[-14:])
    assert (info.rnm, info.inn) == (state.rnm, state.inn)


# ------------------------------------------------------------------ faults

FAULTS: dict[str, Callable[[DeviceState], None]] = {
    "one NAK": lambda s: setattr(s.faults, "nak_frames", 1),
    "NAK storm within limits": lambda s: setattr(s.faults, "nak_frames", 3),
    "pending answer at connect": lambda s: setattr(s.faults, "pending_answer", True),
    "stray 0xFF": lambda s: setattr(s.faults, "stray_ff", True),
}
RETRIED = {"one NAK", "NAK storm within limits"}
#: Faults that cost time on every command: once per layer, on a poll after the first.
SLOW_FAULTS: dict[str, Callable[[DeviceState], None]] = {
    "slow answers": lambda s: setattr(s.faults, "slow_answer_s", 0.03),
    "busy printing": lambda s: setattr(s.faults, "busy_printing", True),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_recoverable_faults_still_give_the_facts(simulator: Runner, fault: str) -> None:
    """The fault is on from the first byte: probing, identity and the poll live with it."""
    emulator = _emulator(simulator)
    FAULTS[fault](emulator.state)
    driver = AtolDriver(simulator.url, FAST)
    snapshot = driver.read_health()
    assert_matches(snapshot, emulator.state)
    assert driver.layer == emulator.link_layer
    assert emulator.forbidden_received == []
    if fault in RETRIED:
        assert snapshot.link.retries >= 1
    assert snapshot.link.last_error is None, "a stale F0 result is not an OFD relay"


@pytest.mark.parametrize("fault", SLOW_FAULTS)
def test_slow_and_busy_registers_still_give_the_facts(tcp_simulator: Runner, fault: str) -> None:
    emulator = _emulator(tcp_simulator)
    driver = AtolDriver(linked(tcp_simulator), EAGER)
    driver.read_health()
    SLOW_FAULTS[fault](emulator.state)
    assert_matches(driver.read_health(), emulator.state)


def test_fe_task_slower_than_the_control_timeout_is_polled_for() -> None:
    """A2 "running": the driver waits for the F0 result and asks with C3 meanwhile."""
    with serve("tcp", "fe") as runner:
        emulator = _emulator(runner)
        driver = AtolDriver(runner.url, EAGER)
        driver.read_health()
        emulator.state.faults.slow_answer_s = SLOWER_THAN_CONTROL_S
        before = emulator.buffer_commands.count(0xC3)
        assert_matches(driver.read_health(), emulator.state)
    assert emulator.buffer_commands.count(0xC3) > before


def test_register_busy_for_longer_than_the_poll_allows_is_busy(tcp_simulator: Runner) -> None:
    emulator = _emulator(tcp_simulator)
    driver = AtolDriver(linked(tcp_simulator), IMPATIENT)
    good = driver.read_health()
    emulator.state.faults.slow_answer_s = 0.6  # a long report: past answer_timeout_s
    busy = driver.read_health()
    assert busy.stale and busy.link.state is LinkState.BUSY, busy.link.last_error
    assert busy.fn.serial == good.fn.serial
    emulator.state.faults.slow_answer_s = 0.0
    assert not driver.read_health().stale


# ------------------------------------------------------------------ OFD through the host


def test_ofd_channel_through_the_host_is_reported() -> None:
    with serve("tcp", "fe") as runner:
        emulator = _emulator(runner)
        emulator.state.ofd.via_host = True
        driver = AtolDriver(runner.url, FAST)
        first = driver.read_health()
        assert_matches(first, emulator.state)
        assert first.ofd.via_host is True and first.link.last_error is None and driver.ofd_via_host
        validity = bytes([cmd.FN_QUERY, cmd.FN_VALIDITY])
        asked = emulator.received.count(validity)
        second = driver.read_health()
        assert second.ofd.via_host is True and not second.stale
        assert emulator.received.count(validity) == asked, "slow facts not re-read"
        assert second.fn.valid_until == first.fn.valid_until
        assert second.device.rnm == first.device.rnm
        emulator.state.faults.silent = True
        assert driver.read_health().link.last_error == "TIMEOUT", "a failed poll says why"
    assert 0xC4 not in emulator.buffer_commands


def test_legacy_link_cannot_tell_an_ofd_relay() -> None:
    """LEGACY has no unsolicited packets: the finding needs the FE link (a known limit)."""
    with serve("tcp", "legacy") as runner:
        _emulator(runner).state.ofd.via_host = True
        driver = AtolDriver(runner.url, FAST)
        assert driver.read_health().link.last_error is None and not driver.ofd_via_host


def test_no_ofd_finding_without_foreign_packets(tcp_simulator: Runner) -> None:
    driver = AtolDriver(linked(tcp_simulator), FAST)
    assert driver.read_health().link.last_error is None and not driver.ofd_via_host


# ------------------------------------------------------------------ link layers and URLs


@pytest.mark.parametrize("layer", LAYERS)
def test_link_layer_from_the_url_skips_probing(layer: str) -> None:
    with serve("tcp", layer) as runner:
        written: list[bytes] = []
        driver = AtolDriver(
            f"{runner.url}?link={layer}", FAST, transport_factory=_recorder(written)
        )
        assert_matches(driver.read_health(), _emulator(runner).state)
    fe_packets = [data for data in written if data[:1] == b"\xfe"]
    assert bool(fe_packets) == (layer == "fe")
    assert driver.layer == layer == driver.fixed_layer


def test_wrong_link_layer_in_the_url_is_a_timeout_not_a_probe() -> None:
    with serve("tcp", "fe") as runner:
        driver = AtolDriver(f"{runner.url}?link=legacy", FAST)
        snapshot = driver.read_health()
    assert snapshot.stale and snapshot.link.last_error == "TIMEOUT"
    assert driver.layer is LinkLayer.LEGACY


def test_probing_follows_a_register_switched_to_the_other_layer() -> None:
    state = default_state()
    with serve("tcp", "fe", state) as runner:
        driver = AtolDriver(runner.url, FAST)
        assert not driver.read_health().stale
        assert driver.layer is LinkLayer.FE
        _emulator(runner).link_layer = "legacy"
        assert driver.read_health().stale, "the remembered layer times out once"
        assert not driver.read_health().stale
        layer: LinkLayer | None = driver.layer  # read again: the poll changed it
        assert layer is LinkLayer.LEGACY


@pytest.mark.parametrize(
    ("url", "transport_url", "layer"),
    [
        ("socket://10.0.0.7:5555?link=fe", "socket://10.0.0.7:5555", LinkLayer.FE),
        ("tcp://10.0.0.7", "tcp://10.0.0.7:5555", None),
        ("socket://kkt.local?link=LEGACY", "socket://kkt.local:5555", LinkLayer.LEGACY),
        (
            "serial:///dev/ttyACM0?baudrate=57600&link=legacy",
            "serial:///dev/ttyACM0?baudrate=57600",
            LinkLayer.LEGACY,
        ),
        ("/dev/ttyACM0?link=fe", "/dev/ttyACM0", LinkLayer.FE),
        ("COM3", "COM3", None),
        ("socket://h:7?logging=debug", "socket://h:7?logging=debug", None),
    ],
)
def test_split_url(url: str, transport_url: str, layer: LinkLayer | None) -> None:
    assert split_url(url) == (transport_url, layer)


def test_bad_options_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="fe or legacy"):
        AtolDriver("tcp://10.0.0.7?link=v5")
    with pytest.raises(ConfigError, match=r"0\.\.9999"):
        AtolDriver("tcp://10.0.0.7", DriverOptions(password=123456))


def test_access_password_is_sent_and_the_generic_default_means_0000() -> None:
    state = default_state()
    emulator = AtolEmulator(state, password=1234)
    with TcpServer(emulator) as runner:
        options = FAST.model_copy(update={"password": 1234})
        assert_matches(AtolDriver(runner.url, options).read_health(), state)
        assert AtolDriver(runner.url, FAST).read_health().stale, "0000 is refused (8Ch)"


# ------------------------------------------------------------------ the allowlist walk


def _recorder(written: list[bytes]) -> Callable[[str], Transport]:
    def factory(url: str) -> Transport:
        transport = open_transport(url)
        original = transport.write

        def write(data: bytes) -> None:
            written.append(data)
            original(data)

        transport.write = write  # type: ignore[method-assign]
        return transport

    return factory


def _fe_task(data: bytes) -> HostTask:
    """The task-buffer command of one written FE packet."""
    raw, rest = PacketReader().feed(data)
    assert raw is not None and rest == b"", f"one whole packet per write: {data.hex(' ')}"
    task = parse_host_task(decode_packet(raw).data)
    assert task.command in (TASK_ADD, TASK_ACK, TASK_REQ), f"sent {data.hex(' ')}"
    return task


def test_every_byte_the_driver_writes_is_on_the_allowlist() -> None:
    """Walk every path that emits commands: probing both layers, identity, poll, retries."""
    written: list[bytes] = []
    bodies: list[bytes] = []
    for layer in LAYERS:
        with serve("tcp", layer) as runner:
            emulator = _emulator(runner)
            emulator.state.faults.nak_frames = 1
            emulator.state.faults.wrong_lrc_answers = 1
            driver = AtolDriver(runner.url, EAGER, transport_factory=_recorder(written))
            emulator.state.faults.slow_answer_s = SLOWER_THAN_CONTROL_S  # FE: C3 polls
            driver.identify()
            emulator.state.faults.slow_answer_s = 0
            driver.read_health()
            emulator.state.fn.serial = "9999078900000002"
            emulator.state.shift.number += 1
            driver.read_health()
            assert emulator.forbidden_received == []
    tasks = [_fe_task(data) for data in written if data[0] == 0xFE]
    assert {task.command for task in tasks} == {TASK_ADD, TASK_ACK, TASK_REQ}, "no C4 Abort"
    bodies += [task.body for task in tasks if task.command == TASK_ADD]
    for data in written:
        if data[0] == 0xFE:
            continue
        elif data[0] == STX:
            bodies.append(decode_frame(data))
        else:
            assert data in {bytes([b]) for b in (ENQ, ACK, NAK, EOT)}, f"sent {data.hex(' ')}"
    codes = set()
    for body in bodies:
        assert body[:2] == b"\x00\x00", "the factory access password"
        assert cmd.is_allowed(body[2], body[3:]), f"sent {body.hex(' ')}"
        codes.add(body[2:4])
    expected = {b"\x3f", b"\x45", b"\xa5", b"\xa4\x30", b"\xa4\x20", b"\xa4\x3d", b"\x91\x12"}
    assert expected <= codes
