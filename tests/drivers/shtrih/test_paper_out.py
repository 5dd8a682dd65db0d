"""Paper-out through the driver, end to end over TCP and a pty (issue 13 item 8).

Paper running out in the middle of a document is submode 2: paper out. Once paper is
back the register sits in submode 3, waiting for B0h "continue printing": the paper is
fine, but nothing prints until someone at the POS continues, so the snapshot says paper
as sensed and a printer fault, with the submode in the raw facts. The agent never sends
B0h (the vendor's Java driver loops sending it): the register stays in submode 3 poll
after poll until a POS continues.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kktmon.drivers.base import DriverOptions
from kktmon.drivers.shtrih.driver import ShtrihDriver
from kktmon.drivers.transport import Transport, open_transport
from kktmon.protocol.health import HealthSnapshot, PaperState
from kktmon.protocol.shtrih.frame import decode_frame
from kktmon.simulators.scenario import default_state
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
CONTINUE_PRINTING = 0xB0


@pytest.fixture(params=["tcp", "pty"])
def simulator(
    request: pytest.FixtureRequest,
) -> Iterator[TcpServer[ShtrihEmulator] | PtyServer[ShtrihEmulator]]:
    emulator = ShtrihEmulator(default_state())
    runner = TcpServer(emulator) if request.param == "tcp" else PtyServer(emulator)
    with runner:
        yield runner


class Recorder:
    """A transport factory that keeps the command of every frame the driver writes."""

    def __init__(self) -> None:
        self.commands: list[int] = []

    def __call__(self, url: str) -> Transport:
        transport = open_transport(url)
        original = transport.write

        def write(data: bytes) -> None:
            if data[:1] == b"\x02":
                self.commands.append(decode_frame(data).code)
            original(data)

        transport.write = write  # type: ignore[method-assign]
        return transport


def printer(snapshot: HealthSnapshot) -> tuple[PaperState | None, bool | None, int]:
    assert not snapshot.stale, snapshot.link.last_error
    return snapshot.printer.paper, snapshot.printer.fault, snapshot.printer.raw["submode"]


def test_paper_out_mid_document_then_waiting_for_continue(
    simulator: TcpServer[ShtrihEmulator] | PtyServer[ShtrihEmulator],
) -> None:
    emulator = simulator.device
    state = emulator.state
    recorder = Recorder()
    driver = ShtrihDriver(simulator.url, FAST, transport_factory=recorder)

    state.faults.busy_printing = True
    state.printer.paper = "out"
    assert printer(driver.read_health()) == (PaperState.OUT, False, 2)

    state.printer.paper = "ok"  # the cashier loads a new roll
    waiting = driver.read_health()
    assert printer(waiting) == (PaperState.OK, True, 3)
    assert printer(driver.read_health()) == (PaperState.OK, True, 3), "the agent never resumes"

    assert recorder.commands and CONTINUE_PRINTING not in recorder.commands
    assert emulator.forbidden_received == []


def test_paper_out_while_idle_is_just_paper_out(simulator: TcpServer | PtyServer) -> None:
    state = simulator.device.state
    state.printer.paper = "out"
    driver = ShtrihDriver(simulator.url, FAST)
    assert printer(driver.read_health()) == (PaperState.OUT, False, 1)
    state.printer.paper = "near_end"
    assert printer(driver.read_health()) == (PaperState.NEAR_END, False, 0)
