"""``usb://VID:PID?serial=...``: the register's tty found again at every poll.

End to end: a Shtrih-M simulator on a pty stands for the register's ttyACM; a fake
pyserial port list says which pty the USB device with that VID:PID and serial number
is on. The driver polls through ``usb://``; a replug moves it to another pty (a second
simulator for the same register, a few receipts later) and the next poll reads from
there, logged; unplugged, the
poll is a stale snapshot with the link unreachable, never an exception.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from fake_usb import FakeUsbDevice, port_info
from serial.tools.list_ports_common import ListPortInfo

from kktmon.agent.config import load_config
from kktmon.cli.main import main
from kktmon.drivers.base import DriverOptions
from kktmon.drivers.shtrih.driver import ShtrihDriver
from kktmon.drivers.transport import open_transport
from kktmon.drivers.usb import UsbResolver, UsbSelector, find_tty, parse_usb_url, usb_url
from kktmon.protocol.errors import ConfigError, UnreachableError
from kktmon.protocol.health import LinkState
from kktmon.simulators.scenario import default_state
from kktmon.simulators.server import PtyServer
from kktmon.simulators.shtrih.emulator import ShtrihEmulator

FAST = DriverOptions(
    control_timeout_s=0.3,
    answer_timeout_s=1.0,
    archive_timeout_s=1.0,
    byte_timeout_s=0.3,
    enq_tries=4,
    poll_deadline_s=20,
)
REGISTER = FakeUsbDevice(0x1FC9, 0x0083, 1, (2,), 5, "NXP", "SHTRIH-M", "0012345678")
URL = "usb://1fc9:0083?serial=0012345678"


class Ports:
    """A pyserial port list the test rewrites: plug, replug, unplug."""

    def __init__(self) -> None:
        self.ports: list[ListPortInfo] = []

    def __call__(self) -> list[ListPortInfo]:
        return list(self.ports)

    def plug(self, tty: str, device: FakeUsbDevice = REGISTER) -> None:
        self.ports = [port_info(tty, device, "1.0")]


def simulator(last_document: int) -> PtyServer[ShtrihEmulator]:
    """The register, as its last document number tells which pty a poll read."""
    state = default_state()
    state.fn.last_document_number = last_document
    return PtyServer(ShtrihEmulator(state))


@pytest.fixture
def first() -> Iterator[PtyServer[ShtrihEmulator]]:
    with simulator(425) as runner:
        yield runner


@pytest.fixture
def second() -> Iterator[PtyServer[ShtrihEmulator]]:
    with simulator(431) as runner:
        yield runner


def test_a_replugged_register_is_polled_at_its_new_tty(
    first: PtyServer[ShtrihEmulator],
    second: PtyServer[ShtrihEmulator],
    caplog: pytest.LogCaptureFixture,
) -> None:
    ports = Ports()
    resolver = UsbResolver(comports=ports)
    driver = ShtrihDriver(
        URL, FAST, transport_factory=partial(open_transport, usb_resolver=resolver)
    )
    caplog.set_level(logging.INFO, logger="kktmon.drivers.usb")

    ports.plug(first.path)
    snapshot = driver.read_health()
    assert not snapshot.stale, snapshot.link.last_error
    assert snapshot.fn.last_document_number == 425
    assert snapshot.device.transport == "usb"

    ports.plug(second.path)  # replugged: ttyACM0 became ttyACM1
    snapshot = driver.read_health()
    assert not snapshot.stale, snapshot.link.last_error
    assert snapshot.fn.last_document_number == 431
    assert resolver.last(URL) == second.path
    assert f"{URL} now at {second.path} (was {first.path})" in caplog.messages

    ports.ports = []  # unplugged
    snapshot = driver.read_health()
    assert snapshot.stale and snapshot.link.state is LinkState.UNREACHABLE
    assert snapshot.link.last_error == "UNREACHABLE"
    assert f"{URL} is gone (was {second.path})" in caplog.messages


def test_the_same_tty_again_is_not_logged_again(
    first: PtyServer[ShtrihEmulator], caplog: pytest.LogCaptureFixture
) -> None:
    ports = Ports()
    ports.plug(first.path)
    resolver = UsbResolver(comports=ports)
    caplog.set_level(logging.INFO, logger="kktmon.drivers.usb")
    for _ in range(3):
        open_transport(URL, usb_resolver=resolver).close()
    assert [m for m in caplog.messages if URL in m] == [f"{URL} at {first.path}"]


def test_an_absent_register_is_unreachable_naming_the_url() -> None:
    resolver = UsbResolver(comports=Ports())
    with pytest.raises(UnreachableError, match=r"usb://1fc9:0083\?serial=0012345678"):
        open_transport(URL, usb_resolver=resolver)


def test_baudrate_in_the_url_reaches_the_port(first: PtyServer[ShtrihEmulator]) -> None:
    ports = Ports()
    ports.plug(first.path)
    transport = open_transport(f"{URL}&baudrate=9600", usb_resolver=UsbResolver(comports=ports))
    with transport:
        assert transport.describe() == "usb"
        assert transport._port.baudrate == 9600  # type: ignore[attr-defined]


def test_a_composite_device_resolves_to_its_first_interface() -> None:
    """An ATOL register has two VCOM ports (MI_00, MI_02); the register speaks on MI_00."""
    atol = FakeUsbDevice(0x2912, 0x0005, 1, (3,), 6, serial="00106107751234")
    ports = [port_info("/dev/ttyACM5", atol, "1.2"), port_info("/dev/ttyACM4", atol, "1.0")]
    selector = parse_usb_url("usb://2912:0005?serial=00106107751234")
    assert find_tty(selector, ports) == "/dev/ttyACM4"


def test_index_picks_among_devices_without_a_serial_by_port_path() -> None:
    one = FakeUsbDevice(0x1A86, 0x7523, 1, (1, 9), 8)
    two = FakeUsbDevice(0x1A86, 0x7523, 1, (1, 10), 9)
    # single-interface devices: pyserial's location has no interface part
    ports = [port_info("/dev/ttyUSB0", two, None), port_info("/dev/ttyUSB1", one, None)]
    assert find_tty(parse_usb_url("usb://1a86:7523"), ports) == "/dev/ttyUSB1"
    assert find_tty(parse_usb_url("usb://1a86:7523?index=1"), ports) == "/dev/ttyUSB0"
    assert find_tty(parse_usb_url("usb://1a86:7523?index=2"), ports) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("usb://1fc9:0083?serial=0012", UsbSelector(0x1FC9, 0x0083, "0012", 0, 115200)),
        ("usb://1FC9:0083?serial=A%2FB", UsbSelector(0x1FC9, 0x0083, "A/B", 0, 115200)),
        ("usb://1a86:7523?index=2&baudrate=9600", UsbSelector(0x1A86, 0x7523, None, 2, 9600)),
        ("usb://1a86:7523?baud=57600", UsbSelector(0x1A86, 0x7523, None, 0, 57600)),
        ("usb://1a86:7523", UsbSelector(0x1A86, 0x7523, None, 0, 115200)),
    ],
)
def test_usb_urls_parse(url: str, expected: UsbSelector) -> None:
    assert parse_usb_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "usb://1fc9?serial=1",
        "usb://1fc9:83?serial=1",
        "usb://zzzz:0083",
        "usb://1fc9:0083?port=1",
        "usb://1fc9:0083?serial=1&index=1",
        "usb://1fc9:0083?index=-1",
        "usb://1fc9:0083?baudrate=fast",
        "usb://1fc9:0083?baudrate=0",
    ],
)
def test_malformed_usb_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="usb://"):
        parse_usb_url(url)


def test_usb_url_round_trips() -> None:
    for vid, pid, serial, index in [
        (0x1FC9, 0x0083, "0012345678", 0),
        (0x1A86, 0x7523, None, 3),
        (0x1FC9, 0x0083, "a b/c&d", 0),
    ]:
        selector = parse_usb_url(usb_url(vid, pid, serial, index))
        assert (selector.vid, selector.pid, selector.serial, selector.index) == (
            vid,
            pid,
            serial,
            index,
        )


CONFIG = """
site = "store-001"
[agent]
state_dir = "{state}"
[[devices]]
vendor = "shtrih"
url = "{url}"
"""


def test_check_config_accepts_a_usb_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(CONFIG.format(state=tmp_path, url=URL), encoding="utf-8")
    assert main(["check-config", "--config", str(path)]) == 0
    assert load_config(path).devices[0].url == URL


def test_check_config_names_a_malformed_usb_url(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(CONFIG.format(state=tmp_path, url="usb://1fc9:83"), encoding="utf-8")
    assert main(["check-config", "--config", str(path)]) == 2
    assert "devices[0].url" in capsys.readouterr().err
