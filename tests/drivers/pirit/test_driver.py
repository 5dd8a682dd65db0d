"""Pirit driver: unit tests over an in-process register, end to end over the emulator.

The unit seam (STYLE.md 10) is :class:`FakeRegister`: a Transport that decodes each
frame the driver writes and answers with the golden replies of pirit.md section 6
(re-stamped with the request's packet id) or constructed ones. End to end, the driver
reads :class:`PiritEmulator` over real TCP sockets and a real pty, with the link faults
Pirit recovers from in its own way, and nothing outside the allowlist may ever reach the
register. Failures every vendor shares (silence, a held or missing port, garbled
answers, a dropped line) are in ``tests/drivers/test_contract.py``.
"""

from __future__ import annotations

import itertools
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

import pirit_vectors as pv
import pytest

from kktmon.drivers.base import DriverOptions
from kktmon.drivers.pirit.driver import (
    BAUD_RATES,
    TCP_PORT,
    PiritDriver,
    needs_baud_probe,
    with_default_port,
)
from kktmon.drivers.transport import Transport, open_transport
from kktmon.protocol.errors import ConfigError, PortBusyError
from kktmon.protocol.health import HealthSnapshot, LinkState, PaperState, ShiftState
from kktmon.protocol.link import WaitKind
from kktmon.protocol.pirit.commands import is_allowed
from kktmon.protocol.pirit.frame import (
    ACK,
    ENQ,
    Reply,
    decode_reply_frame,
    decode_request_frame,
    encode_reply_frame,
)
from kktmon.protocol.pirit.records import MODEL_NAMES
from kktmon.simulators.pirit.answers import DEFAULT_MODEL_CODE
from kktmon.simulators.pirit.emulator import PiritEmulator
from kktmon.simulators.scenario import DeviceState, default_state, load_builtin
from kktmon.simulators.server import PtyServer, TcpServer

Key = tuple[int, int | None]
Runner = TcpServer[PiritEmulator] | PtyServer[PiritEmulator]

FAST = DriverOptions(
    control_timeout_s=0.3, answer_timeout_s=0.5, byte_timeout_s=0.3, poll_deadline_s=20
)
MSK = timezone(timedelta(hours=3))
HOST = datetime(2024, 3, 15, 10, 30, tzinfo=MSK)
FN_SERIAL = "9999078902004111"


def golden(name: str) -> Reply:
    vector = next(v for v in pv.VECTORS if v.name.startswith(name))
    assert vector.reply is not None
    return decode_reply_frame(vector.reply)


GOLDEN_ANSWERS: dict[Key, Reply | int] = {
    (0x00, None): golden("Ex4"),  # shift open
    (0x78, 2): golden("Ex5"),  # fiscal, shift open, warning "expires within 30 days"
    (0x78, 7): golden("Ex6"),  # 3 unsent from FD 1234
    (0x02, 17): golden("Ex7"),  # shift opened 14.03.2024 08:30:12
    (0x04, None): pv.reply(0x04, "0"),
    (0x13, None): pv.reply(0x13, "150324", "103140"),
    (0x78, 1): pv.reply(0x78, "1", FN_SERIAL),
    (0x78, 3): pv.reply(0x78, "3", "1240"),
    (0x78, 6): pv.reply(0x78, "6", "17", "1", "12"),
    (0x02, 5): pv.reply(0x02, "5", "150324", "102900"),
    (0x02, 1): pv.reply(0x02, "1", "  00000000123456  "),
    (0x02, 21): pv.reply(0x02, "21", "3"),
    (0x02, 70): pv.reply(0x02, "70", "665.2.14"),
    (0x02, 3): pv.reply(0x02, "3", "7701234567  "),
    (0x02, 4): pv.reply(0x02, "4", "0000000001012345"),
    (0x02, 14): pv.reply(0x02, "14", "310325", "381"),
    (0x78, 14): pv.reply(0x78, "14", "fn v 2.13", "1", "4", "665.2.14", "4", "4", "4"),
}
GOLDEN_REFUSAL = decode_reply_frame(pv.ERROR_VECTORS[0].reply)  # example 8: 78h, error 03h


class FakeRegister:
    """An in-process Pirit register answering from a table of replies or error codes.

    Keys missing from the table answer like worked example 8 (error 03h). ``mute``
    keys get no reply at all while ENQ is still ACKed (a register busy printing);
    ``silent`` answers nothing; ``baudrate`` (for probing) answers only at that rate.
    """

    def __init__(self, answers: dict[Key, Reply | int] | None = None) -> None:
        self.answers = dict(GOLDEN_ANSWERS if answers is None else answers)
        self.asked: list[Key] = []
        self.written: list[bytes] = []
        self.mute: set[Key] = set()
        self.silent = False
        self.garble = 0  # next n replies with a wrong checksum
        self.baudrate: int | None = None
        self.opened: list[int | None] = []

    def open(self, url: str, baudrate: int | None = None) -> FakeTransport:
        self.opened.append(baudrate)
        return FakeTransport(url, self, baudrate)

    def respond(self, data: bytes, baudrate: int | None) -> bytes:
        self.written.append(data)
        if self.silent or (self.baudrate is not None and baudrate != self.baudrate):
            return b""
        if data == bytes([ENQ]):
            return bytes([ACK])
        request = decode_request_frame(data)
        key = (request.command, int(request.fields[0]) if request.fields else None)
        self.asked.append(key)
        if key in self.mute:
            return b""
        answer = self.answers.get(key, GOLDEN_REFUSAL)
        if isinstance(answer, int):
            answer = Reply(0x21, request.command, answer)
        frame = encode_reply_frame(
            Reply(request.packet_id, request.command, answer.error, answer.fields)
        )
        if self.garble:
            self.garble -= 1
            frame = frame[:-1] + (b"0" if frame[-1:] != b"0" else b"1")
        return frame


class FakeTransport(Transport):
    """Reads return at once: an empty read is the timeout, so silence costs nothing."""

    def __init__(self, url: str, register: FakeRegister, baudrate: int | None) -> None:
        super().__init__(url, "fake")
        self.register, self.baudrate = register, baudrate
        self.inbox = bytearray()

    def _write(self, data: bytes) -> None:
        self.inbox += self.register.respond(data, self.baudrate)

    def _read(self, max_bytes: int, timeout: float) -> bytes:
        data = bytes(self.inbox[:max_bytes])
        del self.inbox[:max_bytes]
        return data

    def _purge(self) -> None:
        self.inbox.clear()

    def _close(self) -> None:
        self.inbox.clear()


def fake_driver(register: FakeRegister, url: str = "fake://pirit", **kwargs: str) -> PiritDriver:
    return PiritDriver(
        url,
        FAST,
        transport_factory=register.open,
        clock=lambda: HOST,
        serial_opener=register.open,
        **kwargs,
    )


POLL_KEYS: list[Key] = [(0x00, None), (0x13, None), (0x04, None), (0x78, 2), (0x78, 1)]
IDENTITY_KEYS: list[Key] = [(0x78, 14), (0x02, 1), (0x02, 21), (0x02, 70), (0x02, 3)]
IDENTITY_KEYS += [(0x02, 4)]
FACT_KEYS: list[Key] = [(0x78, 6), (0x78, 3), (0x02, 5), (0x78, 7), (0x78, 18), (0x02, 14)]

# ------------------------------------------------------------------ unit: fake register


def test_golden_register_poll() -> None:
    register = FakeRegister()
    snapshot = fake_driver(register).read_health()
    assert register.asked == [*POLL_KEYS, *IDENTITY_KEYS, *FACT_KEYS, (0x02, 17)]
    assert not snapshot.stale and snapshot.link.state is LinkState.OK
    device, fn, ofd, shift = snapshot.device, snapshot.fn, snapshot.ofd, snapshot.shift
    assert (device.serial, device.model) == ("00000000123456", "Viki Print 57")
    assert device.transport == "fake"
    assert (device.inn, device.ffd.device, device.ffd.fn) == ("7701234567", "1.2", "1.2")
    assert fn.serial == FN_SERIAL and fn.phase is not None and fn.phase.raw == 3
    assert fn.warnings.resource_exhausting and fn.valid_until == date(2025, 3, 31)
    assert fn.documents_left is None, "78h/18 answered 03h: null, and the 90 % bit"
    assert (ofd.unsent_count, ofd.first_unsent_number) == (3, 1234)
    assert shift.number == 17 and shift.state is ShiftState.EXPIRED  # opened 26 h ago
    assert snapshot.clock.skew_s == 100.0
    assert snapshot.link.bytes_tx == sum(len(data) for data in register.written)


def test_second_poll_asks_only_the_poll_set() -> None:
    register = FakeRegister()
    driver = fake_driver(register)
    driver.read_health()
    register.asked.clear()
    driver.read_health()
    unsupported = (0x78, 18)
    expected = [*POLL_KEYS, *(key for key in FACT_KEYS if key != unsupported)]
    assert register.asked == expected, "identity, 02h/17, 78h/18 cached"


def test_fn_change_reads_identity_again_and_new_shift_its_start() -> None:
    register = FakeRegister()
    driver = fake_driver(register)
    driver.read_health()
    register.answers[0x78, 1] = pv.reply(0x78, "1", "9999078902009999")
    register.answers[0x78, 6] = pv.reply(0x78, "6", "18", "1", "0")
    register.asked.clear()
    snapshot = driver.read_health()
    facts = [key for key in FACT_KEYS if key != (0x78, 18)]
    assert register.asked == [*POLL_KEYS, *IDENTITY_KEYS, *facts, (0x02, 17)]
    assert snapshot.fn.serial == "9999078902009999" and snapshot.shift.number == 18


def test_ffd_105_firmware_variants() -> None:
    register = FakeRegister()
    register.answers[0x78, 14] = pv.reply(0x78, "14", "fn v 1.9", "1", "2", "565.1", "2")
    register.answers[0x02, 14] = pv.reply(0x02, "14", "310325")
    register.answers[0x02, 70] = 0x02
    register.answers[0x02, 2] = pv.reply(0x02, "2", "565")
    snapshot = fake_driver(register).read_health()
    assert (0x78, 22) in register.asked and (0x02, 2) in register.asked
    assert snapshot.device.firmware == "565"
    assert snapshot.device.ffd.model_dump() == {"device": "1.05", "fn": None, "registered": "1.05"}
    assert snapshot.fn.days_left == 381


def test_register_answering_enq_but_not_the_command_is_asked_again_then_busy() -> None:
    register = FakeRegister()
    driver = fake_driver(register)
    good = driver.read_health()
    register.mute.add((0x00, None))
    snapshot = driver.read_health()
    assert snapshot.stale and snapshot.link.state is LinkState.BUSY
    assert (snapshot.link.last_error, snapshot.link.busy_reason) == ("NO_ANSWER", "no_answer")
    assert snapshot.fn.serial == good.fn.serial
    assert register.written[-1] == bytes([ENQ]), "asked ENQ, got ACK, no third 00h"
    asked = [decode_request_frame(w) for w in register.written if w != bytes([ENQ])]
    again = [r.packet_id for r in asked[-2:]]
    assert [r.command for r in asked[-2:]] == [0x00, 0x00] and again[0] != again[1]
    assert register.asked.count((0x00, None)) == 3, "one good poll, then asked twice"


@pytest.mark.parametrize(
    ("key", "code", "state"),
    [
        ((0x78, 2), 0x01, LinkState.BUSY),  # impossible in the current state
        ((0x04, None), 0x09, LinkState.BUSY),  # printer not ready: printing
        ((0x78, 2), 0x61, LinkState.GARBLED),  # no link to the FN
    ],
)
def test_device_errors_of_required_reads(key: Key, code: int, state: LinkState) -> None:
    register = FakeRegister()
    register.answers[key] = code
    snapshot = fake_driver(register).read_health()
    assert snapshot.stale and snapshot.link.state is state
    assert snapshot.link.last_error == f"DEVICE_ERROR_{code:02X}"


def test_state_refusal_degrades_one_poll_unsupported_is_never_asked_again() -> None:
    register = FakeRegister()
    register.answers[0x78, 7] = 0x42  # wrong FN state
    driver = fake_driver(register)
    snapshot = driver.read_health()
    assert not snapshot.stale and snapshot.ofd.unsent_count is None
    driver.read_health()
    assert register.asked.count((0x78, 7)) == 2
    assert register.asked.count((0x78, 18)) == 1


def test_garbled_reply_and_refused_frame_are_asked_again() -> None:
    register = FakeRegister()
    register.garble = 1
    register.answers[0x04, None] = 0x07  # "checksum error in the command"
    driver = fake_driver(register)
    snapshot = driver.read_health()
    assert snapshot.stale and snapshot.link.state is LinkState.GARBLED
    assert snapshot.link.last_error == "FRAME" and snapshot.link.retries >= 3
    register.answers[0x04, None] = pv.reply(0x04, "2")
    assert driver.read_health().printer.paper is PaperState.OUT


def test_packet_ids_cycle_and_the_password_travels() -> None:
    register = FakeRegister()
    driver = fake_driver(register, password="DRRB")
    driver.read_health()
    driver.read_health()
    frames = [decode_request_frame(data) for data in register.written if len(data) > 1]
    ids = [frame.packet_id for frame in frames]
    assert all(0x21 <= packet_id <= 0x3F for packet_id in ids)
    assert all(b == (a - 0x21 + 1) % 31 + 0x21 for a, b in itertools.pairwise(ids))
    assert {frame.password for frame in frames} == {"DRRB"}


def test_timeouts_follow_the_reference_unless_the_operator_set_them() -> None:
    driver = PiritDriver("tcp://register")
    default = driver.timeouts(0x78)
    assert (default(WaitKind.ANSWER), default(WaitKind.CONTROL), default(WaitKind.BYTE)) == (
        20.0,
        2.0,
        0.2,
    )
    assert driver.timeouts(0x00)(WaitKind.ANSWER) == 2.0
    assert driver.timeouts(0x02)(WaitKind.ANSWER) == 10.0
    tuned = PiritDriver("tcp://register", DriverOptions(answer_timeout_s=3.0)).timeouts(0x78)
    assert (tuned(WaitKind.ANSWER), tuned(WaitKind.CONTROL)) == (3.0, 2.0)


def test_urls() -> None:
    assert PiritDriver("tcp://10.0.0.5").url == f"tcp://10.0.0.5:{TCP_PORT}"
    assert with_default_port("tcp://[::1]") == "tcp://[::1]:50003"
    assert with_default_port("tcp://h:7") == "tcp://h:7"
    assert with_default_port("socket://h:7") == "socket://h:7"
    assert needs_baud_probe("/dev/ttyUSB0") and needs_baud_probe("serial:///dev/ttyS0")
    assert not needs_baud_probe("serial:///dev/ttyS0?baudrate=9600")
    assert not needs_baud_probe("serial:///dev/ttyS0?baud=9600")
    assert not needs_baud_probe("tcp://h:50003") and not needs_baud_probe("rfc2217://h:1")


# ------------------------------------------------------------------ baud probing


def test_baud_probing_order_and_the_rate_is_kept() -> None:
    """A pty ignores the baud rate, so the order is checked on the fake register."""
    register = FakeRegister()
    register.baudrate = 19200
    driver = fake_driver(register, url="serial:///dev/ttyFAKE")
    snapshot = driver.read_health()
    assert not snapshot.stale and driver.baudrate == 19200
    assert register.opened == [57600, 115200, 38400, 19200]
    assert snapshot.link.bytes_tx > 0
    driver.read_health()
    assert register.opened[4:] == [19200], "the next poll opens at the kept rate"
    register.silent = True
    assert driver.read_health().stale and driver.baudrate is None, "forgotten: probe again"


def test_no_rate_answers() -> None:
    register = FakeRegister()
    register.baudrate = 1200
    snapshot = fake_driver(register, url="/dev/ttyFAKE").read_health()
    assert snapshot.stale and snapshot.link.state is LinkState.UNREACHABLE
    assert register.opened == list(BAUD_RATES) and register.asked == []


def test_given_baudrate_is_not_probed() -> None:
    register = FakeRegister()
    fake_driver(register, url="serial:///dev/ttyFAKE?baudrate=9600").read_health()
    assert register.opened == [None], "opened through the plain factory, URL as given"


def test_busy_port_during_probing() -> None:
    def held(url: str, baudrate: int) -> Transport:
        raise PortBusyError(f"{url} is held")

    driver = PiritDriver("/dev/ttyFAKE", FAST, serial_opener=held)
    snapshot = driver.read_health()
    assert snapshot.link.state is LinkState.BUSY and snapshot.link.last_error == "PORT_BUSY"


# ------------------------------------------------------------------ end to end


@pytest.fixture(params=["tcp", "pty"])
def simulator(request: pytest.FixtureRequest) -> Iterator[Runner]:
    emulator = PiritEmulator(default_state())
    runner = TcpServer(emulator) if request.param == "tcp" else PtyServer(emulator)
    with runner:
        yield runner


@pytest.fixture
def tcp_simulator() -> Iterator[TcpServer[PiritEmulator]]:
    with TcpServer(PiritEmulator(default_state())) as runner:
        yield runner


def _emulator(runner: Runner) -> PiritEmulator:
    return runner.device


def _second(moment: datetime | None) -> datetime | None:
    """Pirit dates carry whole seconds (ddmmyy hhmmss)."""
    return moment.replace(microsecond=0) if moment else None


def _naive(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=None) if moment else None


def assert_matches(snapshot: HealthSnapshot, state: DeviceState) -> None:
    """The snapshot reports what the register holds, field for field."""
    assert not snapshot.stale and snapshot.link.state is LinkState.OK
    device, fn, ofd, shift = snapshot.device, snapshot.fn, snapshot.ofd, snapshot.shift
    assert (device.vendor, device.serial) == ("pirit", state.serial)
    assert device.model == MODEL_NAMES[state.model_code or DEFAULT_MODEL_CODE]
    assert (device.rnm, device.inn, device.firmware) == (state.rnm, state.inn, state.firmware)
    assert device.ffd.model_dump() == state.ffd.model_dump()
    assert fn.serial == state.fn.serial and fn.firmware == state.fn.firmware
    assert fn.phase is not None and fn.phase.raw == state.fn.phase
    assert fn.valid_until == state.fn.valid_until
    assert fn.days_left == (state.fn.valid_until - snapshot.taken_at.date()).days
    assert fn.warnings.raw == state.fn.warnings
    assert fn.last_document_number == state.fn.last_document_number
    last_at = _second(state.fn.last_document_at) if state.fn.last_document_number else None
    assert _naive(fn.last_document_at) == last_at
    if "78/18" in state.unsupported:
        assert fn.documents_left is None and fn.storage_30d_free_kb is None
    else:
        assert fn.documents_left == state.fn.documents_left
        assert fn.storage_30d_free_kb == state.fn.storage_30d_free_kb
    assert ofd.unsent_count == state.ofd.unsent_count
    assert ofd.exchange is not None and ofd.exchange.raw == state.ofd.exchange_status
    if state.ofd.unsent_count:
        assert ofd.first_unsent_number == state.first_unsent_number()
        assert _naive(ofd.first_unsent_at) == _second(state.ofd.first_unsent_at)
    assert shift.number == state.shift.number
    assert shift.state is not None and shift.state.value == state.shift.state
    expected_opened = _second(state.shift.opened_at) if state.shift.is_open else None
    assert _naive(shift.opened_at) == expected_opened
    paper = "ok" if state.printer.paper == "near_end" else state.printer.paper  # no such bit
    assert snapshot.printer.paper is not None and snapshot.printer.paper.value == paper
    assert snapshot.printer.cover_open == state.printer.cover_open
    assert snapshot.printer.fault == state.printer.fault
    assert snapshot.clock.skew_s is not None
    assert abs(snapshot.clock.skew_s - state.clock_offset_s) < 2


def test_snapshot_reports_the_registers_facts(simulator: Runner) -> None:
    driver = PiritDriver(simulator.url, FAST)
    snapshot = driver.read_health()
    assert_matches(snapshot, _emulator(simulator).state)
    assert snapshot.device.transport in {"socket", "serial"}
    assert snapshot.link.bytes_rx > snapshot.link.bytes_tx > 0
    assert snapshot.block_reason == "shift_24_hours"
    if isinstance(simulator, PtyServer):
        assert driver.baudrate == BAUD_RATES[0], "probed: a pty answers at the first rate"
    assert _emulator(simulator).forbidden_received == []


SCENARIOS = ["fn_expiring", "ofd_stale", "paper_out", "shift_expired", "not_fiscal"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_problem_scenarios(name: str) -> None:
    with TcpServer(PiritEmulator(load_builtin(name))) as runner:
        snapshot = PiritDriver(runner.url, FAST).read_health()
        assert_matches(snapshot, _emulator(runner).state)


def test_problem_facts_travel_through(tcp_simulator: TcpServer[PiritEmulator]) -> None:
    state = _emulator(tcp_simulator).state
    state.fn.warnings = 0x8B
    state.ofd.unsent_count = 3
    state.ofd.first_unsent_at = state.fn.last_document_at - timedelta(days=2)
    state.printer.fault = True
    state.clock_offset_s = 400.0
    state.shift.state = "closed"
    state.unsupported = ["78/18"]
    snapshot = PiritDriver(tcp_simulator.url, FAST).read_health()
    assert_matches(snapshot, state)
    assert snapshot.fn.warnings.critical_error and snapshot.printer.raw["fatal"] == 64
    assert snapshot.ofd.oldest_unsent_age_h is not None and snapshot.ofd.oldest_unsent_age_h >= 48
    assert snapshot.block_reason == "ofd_30_days"


def test_unsupported_memory_is_asked_once(tcp_simulator: TcpServer[PiritEmulator]) -> None:
    emulator = _emulator(tcp_simulator)
    emulator.state.unsupported = ["78/18"]
    driver = PiritDriver(tcp_simulator.url, FAST)
    assert driver.read_health().fn.memory_used_pct is None
    asked = len([r for r in emulator.requests if r.command == 0x78 and r.fields == (b"18",)])
    driver.read_health()
    again = len([r for r in emulator.requests if r.command == 0x78 and r.fields == (b"18",)])
    assert asked == again == 1


def test_expired_then_closed_shift(tcp_simulator: TcpServer[PiritEmulator]) -> None:
    state = _emulator(tcp_simulator).state
    state.shift.state = "expired"
    state.shift.opened_at = state.fn.last_document_at - timedelta(hours=30)
    driver = PiritDriver(tcp_simulator.url, FAST)
    assert driver.read_health().shift.state is ShiftState.EXPIRED
    state.shift.state = "closed"
    closed = driver.read_health().shift
    assert closed.state is ShiftState.CLOSED and closed.opened_at is None


FAULTS: dict[str, Callable[[DeviceState], None]] = {
    "one refused frame": lambda s: setattr(s.faults, "nak_frames", 1),
    "refusal storm within limits": lambda s: setattr(s.faults, "nak_frames", 2),
    "slow answers": lambda s: setattr(s.faults, "slow_answer_s", 0.05),
    "busy printing": lambda s: setattr(s.faults, "busy_printing", True),
    "recovery reply at connect": lambda s: setattr(s.faults, "pending_answer", True),
    "stray 0xFF (ignored by Pirit)": lambda s: setattr(s.faults, "stray_ff", True),
}
RETRIED = {"one refused frame", "refusal storm within limits"}


@pytest.mark.parametrize("fault", FAULTS)
def test_recoverable_faults_still_give_the_facts(simulator: Runner, fault: str) -> None:
    emulator = _emulator(simulator)
    FAULTS[fault](emulator.state)
    snapshot = PiritDriver(simulator.url, FAST).read_health()
    assert_matches(snapshot, emulator.state)
    assert emulator.forbidden_received == []
    if fault in RETRIED:
        assert snapshot.link.retries >= 1
    if fault == "busy printing":
        assert snapshot.printer.raw["document"] == 0x82


def test_reply_later_than_the_wait_is_taken_once_enq_proves_the_register_alive(
    tcp_simulator: TcpServer[PiritEmulator],
) -> None:
    emulator = _emulator(tcp_simulator)
    emulator.state.faults.slow_answer_s = 0.08
    impatient = FAST.model_copy(update={"answer_timeout_s": 0.03})
    snapshot = PiritDriver(tcp_simulator.url, impatient).read_health()
    assert_matches(snapshot, emulator.state)
    assert snapshot.link.retries >= 1, "each silence cost one ENQ"


@contextmanager
def ack_only_register() -> Iterator[str]:
    """A TCP peer that ACKs every ENQ and never answers a frame: alive, not answering."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(0.05)
                while not stop.is_set():
                    try:
                        data = conn.recv(512)
                    except TimeoutError:
                        continue
                    if not data:
                        break
                    conn.sendall(bytes([ACK]) * data.count(ENQ))

    thread = threading.Thread(target=serve, name="ack-only-register")
    thread.start()
    try:
        host, port = listener.getsockname()[:2]
        yield f"tcp://{host}:{port}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_register_that_only_acks_enq_is_busy_with_no_answer() -> None:
    with ack_only_register() as url:
        snapshot = PiritDriver(url, FAST).read_health()
    assert snapshot.stale and snapshot.link.state is LinkState.BUSY
    assert (snapshot.link.last_error, snapshot.link.busy_reason) == ("NO_ANSWER", "no_answer")
    assert snapshot.link.retries >= 3, "an ENQ per ask, and the ask again"


def test_tcp_url_without_port_uses_50003() -> None:
    try:
        runner = TcpServer(PiritEmulator(default_state()), port=TCP_PORT)
    except ConfigError:
        pytest.skip(f"port {TCP_PORT} is taken on this machine")
    with runner:
        snapshot = PiritDriver("tcp://127.0.0.1", FAST).read_health()
        assert_matches(snapshot, _emulator(runner).state)


def _recording(written: list[bytes]) -> Callable[..., Transport]:
    def opener(url: str, baudrate: int | None = None) -> Transport:
        transport = open_transport(url, baudrate=baudrate)
        original = transport.write

        def write(data: bytes) -> None:
            written.append(data)
            original(data)

        transport.write = write  # type: ignore[method-assign]
        return transport

    return opener


def test_every_frame_the_driver_writes_is_on_the_allowlist() -> None:
    """Walk every path that emits commands: probing, identity, variants, retries."""
    written: list[bytes] = []
    with PtyServer(PiritEmulator(default_state())) as runner:
        emulator = _emulator(runner)
        driver = PiritDriver(runner.url, FAST, serial_opener=_recording(written))
        driver.identify()
        emulator.state.faults.nak_frames = 1
        emulator.state.faults.wrong_lrc_answers = 1
        driver.read_health()
        emulator.state.fn.serial = "9999078900000002"  # FN swap: identity again
        emulator.state.ffd.device = "1.05"  # short 78h/14: 78h/22 too
        emulator.state.unsupported = ["02/70"]  # firmware id instead of the version
        emulator.state.shift.number += 1
        driver.read_health()
        forbidden = emulator.forbidden_received
    assert {data for data in written if data[:1] != b"\x02"} == {bytes([ENQ])}
    asked = set()
    for data in (data for data in written if data[:1] == b"\x02"):
        request = decode_request_frame(data)
        assert is_allowed(request.command, request.fields), f"sent {data.hex(' ')}"
        asked.add((request.command, request.fields[0].decode() if request.fields else None))
    assert {(0x02, sub) for sub in ("1", "2", "3", "4", "5", "14", "17", "21", "70")} <= asked
    assert {(0x78, sub) for sub in ("1", "2", "3", "6", "7", "14", "18", "22")} <= asked
    assert {(0x00, None), (0x04, None), (0x13, None)} <= asked
    assert forbidden == []


def test_connection_password_comes_from_the_options() -> None:
    """The agent's config (devices.connection_password) and the CLI set it, not only code."""
    with TcpServer(PiritEmulator(default_state(), password="DRRB")) as server:
        refused = PiritDriver(server.url, FAST).read_health()
        options = FAST.model_copy(update={"connection_password": "DRRB"})
        good = PiritDriver(server.url, options).read_health()
    assert refused.stale
    assert not good.stale and good.fn.serial == default_state().fn.serial
