"""The ATOL driver reads a whole snapshot whichever way the register reports its results,
and names the register's model as the register does.

FE results come in the reply to ``C1`` (synchronous) or in an unsolicited ``F0`` packet
after ``A2`` (asynchronous, atol.md 3.4); real firmware uses both, the emulator's
default mixes them per command. Each path is proved on the bytes the driver received,
through real TCP and a real pty. The model name: the emulator is an АТОЛ 30Ф (code 61)
unless a scenario names an ATOL model, and a register whose A5h answer carries no name
gets the same name from the driver's table of codes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import pytest

from kktmon.drivers.atol.driver import AtolDriver
from kktmon.drivers.base import DriverOptions
from kktmon.drivers.transport import Transport, open_transport
from kktmon.protocol.atol.frame import ASYNC_ID, PacketReader, decode_packet
from kktmon.protocol.atol.records import MODEL_NAMES
from kktmon.protocol.health import HealthSnapshot, LinkState
from kktmon.simulators.atol.emulator import AtolEmulator, TaskResults
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
PATHS: list[TaskResults] = ["sync", "async", "mixed"]


@dataclass
class Received:
    """The FE packets the driver read, sorted by how a command answer came."""

    at_once: int = 0  # A3/A4 + answer in the reply to C1 or C3
    by_f0: int = 0  # A6/A7 TID + answer in an F0 packet
    reader: PacketReader = field(default_factory=PacketReader)

    def feed(self, data: bytes) -> None:
        while data:
            raw, data = self.reader.feed(data)
            if raw is None:
                return
            packet = decode_packet(raw)
            status = packet.data[:1]
            if packet.id == ASYNC_ID and status in (b"\xa6", b"\xa7"):
                self.by_f0 += 1
            elif status in (b"\xa3", b"\xa4") and len(packet.data) > 1:  # C2's A3 is bare
                self.at_once += 1


def _watching(received: Received) -> Callable[[str], Transport]:
    def factory(url: str) -> Transport:
        transport = open_transport(url)
        original = transport.read

        def read(max_bytes: int, timeout: float) -> bytes:
            data = original(max_bytes, timeout)
            received.feed(data)
            return data

        transport.read = read  # type: ignore[method-assign]
        return transport

    return factory


@pytest.fixture(params=["tcp", "pty"])
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def _read(
    state: DeviceState, results: TaskResults | None, kind: str = "tcp"
) -> tuple[HealthSnapshot, Received]:
    if results is None:
        emulator = AtolEmulator(state, link_layer="fe")
    else:
        emulator = AtolEmulator(state, link_layer="fe", task_results=results)
    received = Received()
    runner = TcpServer(emulator) if kind == "tcp" else PtyServer(emulator)
    with runner:
        driver = AtolDriver(f"{runner.url}?link=fe", FAST, transport_factory=_watching(received))
        snapshot = driver.read_health()
        assert emulator.forbidden_received == []
    return snapshot, received


def _minute(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=None, second=0, microsecond=0) if moment else None


def _assert_healthy(snapshot: HealthSnapshot, state: DeviceState) -> None:
    """Every section of the snapshot holds the register's facts."""
    assert not snapshot.stale and snapshot.link.state is LinkState.OK, snapshot.link.last_error
    device, fn, ofd, shift = snapshot.device, snapshot.fn, snapshot.ofd, snapshot.shift
    assert (device.model, device.serial) == ("АТОЛ 30Ф", state.serial[-14:])
    assert (device.rnm, device.inn, device.ffd.fn) == (state.rnm, state.inn, state.ffd.fn)
    assert fn.phase is not None and fn.phase.raw == state.fn.phase
    assert (fn.serial, fn.valid_until) == (state.fn.serial, state.fn.valid_until)
    assert fn.last_document_number == state.fn.last_document_number
    assert _minute(fn.last_document_at) == _minute(state.fn.last_document_at)
    assert (fn.documents_left, fn.firmware) == (state.fn.documents_left, state.fn.firmware)
    assert ofd.unsent_count == state.ofd.unsent_count and ofd.exchange is not None
    assert shift.number == state.shift.number and shift.opened_at is not None
    assert shift.state is not None and shift.state.value == state.shift.state
    assert snapshot.printer.paper is not None and snapshot.clock.skew_s is not None


@pytest.mark.parametrize("results", PATHS)
def test_a_whole_snapshot_on_each_path(results: TaskResults, kind: str) -> None:
    state = default_state()
    snapshot, received = _read(state, results, kind)
    _assert_healthy(snapshot, state)
    assert (received.at_once > 0, received.by_f0 > 0) == {
        "sync": (True, False),
        "async": (False, True),
        "mixed": (True, True),
    }[results]


def test_the_default_register_mixes_both_paths_in_one_poll() -> None:
    state = default_state()
    snapshot, received = _read(state, None)
    _assert_healthy(snapshot, state)
    assert received.at_once and received.by_f0


@pytest.mark.parametrize("results", ["async", "mixed"])
def test_a_refusal_through_f0_degrades_one_answer_as_at_once(results: TaskResults) -> None:
    """not_fiscal: A4h 43h is refused (D4h) in an A7 packet; registration becomes null."""
    sync, _ = _read(load_builtin("not_fiscal"), "sync")
    snapshot, received = _read(load_builtin("not_fiscal"), results)
    assert not snapshot.stale and received.by_f0
    assert snapshot.device.rnm is None and snapshot.fn.phase is not None
    timing: dict[str, bool | set[str]] = {  # what depends on when it was read
        **dict.fromkeys(["taken_at", "last_good_at", "link", "clock"], True),
        "shift": {"hours_open"},
        "fn": {"days_left"},
        "ofd": {"oldest_unsent_age_h"},
    }
    assert snapshot.model_dump(exclude=timing) == sync.model_dump(exclude=timing)


# ------------------------------------------------------------------ the model's name


def test_the_default_register_is_an_atol_30f_named_as_the_drivers_table_names_code_61() -> None:
    snapshot, _ = _read(default_state(), None)
    assert snapshot.device.model == "АТОЛ 30Ф" == MODEL_NAMES[61]
    assert snapshot.device.firmware == "3.0 build 5199"


@pytest.mark.parametrize(("code", "name"), [(61, "АТОЛ 30Ф"), (62, "АТОЛ 55Ф")])
def test_a_register_without_a_name_gets_the_vendors_name_for_its_code(code: int, name: str) -> None:
    """Spelt as the vendor's driver and its web server spell it, so a register read on
    the wire and through that server has one name; a name alone brings its code."""
    nameless = default_state()
    nameless.model, nameless.model_code = "", code
    assert _read(nameless, None)[0].device.model == name
    named = default_state()
    named.model = name
    assert _read(named, None)[0].device.model == name
