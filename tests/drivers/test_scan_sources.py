"""Where a scan looks: serial ports with their stable names, USB registers, hosts, nets.

USB devices come from :func:`kktmon.drivers.usb.find_usb_registers` over pyusb with the
fixture backend of ``tests/helpers/fake_usb.py`` (a register with a tty, one without,
one without permission, a bridge); the ``--net`` sweep connects to real loopback ports.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from fake_usb import FakeBackend, FakeUsbDevice, make_by_id, make_sysfs, port_info
from scan_rig import FakePorts, emulator
from serial.tools.list_ports_common import ListPortInfo

from kktmon.drivers.scan import ProbeSettings, ScanRequest, Source, Status, run_scan
from kktmon.drivers.scan.sources import (
    MAX_SWEEP_ADDRESSES,
    SerialPort,
    TcpTarget,
    network_hosts,
    serial_ports,
    sweep,
    tcp_targets,
    usb_without_tty,
)
from kktmon.drivers.scan.vendors import (
    WIRE_VENDORS,
    WireVendor,
    serial_plan,
    tcp_order,
    wire_vendors,
)
from kktmon.drivers.usb import NO_TTY, UsbRegister, find_usb_registers
from kktmon.protocol.errors import ConfigError
from kktmon.simulators.server import TcpServer

SHTRIH = FakeUsbDevice(0x1FC9, 0x0083, 1, (2,), 5, "NXP", "SHTRIH-M", "0012345678")
ATOL_NO_TTY = FakeUsbDevice(0x2912, 0x0005, 1, (3,), 6, "ATOL", "ATOL FPrint", "00106107751234")
ATOL_DENIED = FakeUsbDevice(
    0x2912, 0x0005, 2, (1, 4), 3, "ATOL", "ATOL FPrint", "00106107759999", denied=True
)
CH340 = FakeUsbDevice(0x1A86, 0x7523, 1, (4,), 7, None, "USB Serial", None)


def _usb(
    tmp_path: Path, devices: list[FakeUsbDevice], ports: list[ListPortInfo]
) -> list[UsbRegister]:
    return find_usb_registers(
        FakeBackend(devices),
        sysfs_root=tmp_path / "sys",
        comports=lambda: list(ports),
        by_id_root=tmp_path / "by-id",
    )


def test_serial_ports_carry_their_by_id_link_and_their_usb_register(tmp_path: Path) -> None:
    make_sysfs(tmp_path / "sys", SHTRIH, {"1.0": "tty/ttyACM0"})
    make_sysfs(tmp_path / "sys", CH340, {"1.0": "ttyUSB0"})
    by_id = tmp_path / "by-id"
    make_by_id(by_id, "usb-NXP_SHTRIH-M_0012345678-if00", "ttyACM0")
    make_by_id(by_id, "usb-1a86_USB_Serial-if00-port0", "ttyUSB0")
    listed = [
        port_info("/dev/ttyACM0", SHTRIH),
        port_info("/dev/ttyUSB0", CH340),
        *FakePorts(["/dev/ttyS0"])(),
    ]
    usb = _usb(tmp_path, [SHTRIH, CH340], listed)
    ports = serial_ports(lambda: listed, tmp_path / "dev-by-id-unused", usb)
    acm, bridge, plain = ports
    assert acm.usb is not None and acm.usb.family == "shtrih"
    assert acm.config_url(115200) == "usb://1fc9:0083?serial=0012345678&baudrate=115200"
    assert bridge.usb is not None and bridge.usb.bridge
    assert plain.usb is None and plain.config_url(9600) == "serial:///dev/ttyS0?baudrate=9600"
    assert usb_without_tty(usb, ports) == []


def test_a_port_without_a_usb_serial_number_is_named_by_its_by_id_link(tmp_path: Path) -> None:
    real = tmp_path / "ttyUSB0"
    real.touch()
    link = tmp_path / "by-id" / "usb-1a86_USB_Serial-if00-port0"
    link.parent.mkdir()
    link.symlink_to(real)
    (port,) = serial_ports(FakePorts([str(real)]), link.parent)
    assert port.by_id == str(link)
    assert port.config_url(57600) == f"serial://{link}?baudrate=57600"


def test_usb_registers_without_a_tty_are_listed_with_their_problem_and_fix(
    tmp_path: Path,
) -> None:
    make_sysfs(tmp_path / "sys", SHTRIH, {"1.0": "tty/ttyACM0"})
    make_sysfs(tmp_path / "sys", ATOL_NO_TTY)
    make_sysfs(tmp_path / "sys", ATOL_DENIED)
    listed = [port_info("/dev/ttyACM0", SHTRIH)]
    usb = _usb(tmp_path, [SHTRIH, ATOL_NO_TTY, ATOL_DENIED], listed)
    ports = serial_ports(lambda: listed, tmp_path / "by-id", usb)
    lonely = usb_without_tty(usb, ports)
    assert sorted(d.serial_number or "" for d in lonely) == ["00106107751234", "00106107759999"]
    report = run_scan(ScanRequest(usb_without_tty=lonely))
    assert [f.status for f in report.findings] == [Status.NO_TTY, Status.NO_TTY]
    assert all(f.found_by is Source.USB and f.family == "atol" for f in report.findings)
    assert all(f.problem == NO_TTY and f.fix for f in report.findings)
    denied = next(f for f in report.findings if f.port.startswith("usb 2-1.4 "))
    assert "udev" in (denied.fix or ""), "no permission either: the udev rules say how"


@pytest.mark.parametrize(
    ("spec", "targets"),
    [
        ("10.0.0.7:7778", [("10.0.0.7", 7778)]),
        ("pos-2", [("pos-2", 7778), ("pos-2", 5555), ("pos-2", 50003)]),
        ("[fe80::1]:5555", [("fe80::1", 5555)]),
        ("fe80::1", [("fe80::1", 7778), ("fe80::1", 5555), ("fe80::1", 50003)]),
    ],
)
def test_tcp_targets_without_a_port_try_each_vendors_default_port(
    spec: str, targets: list[tuple[str, int]]
) -> None:
    found = tcp_targets(spec, [vendor.tcp_port for vendor in WIRE_VENDORS])
    assert [(t.host, t.port) for t in found] == targets


@pytest.mark.parametrize("spec", ["host:0", "host:99999", "host:x", ":7778"])
def test_a_bad_tcp_target_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError):
        tcp_targets(spec, [7778])


def test_a_net_bigger_than_a_22_is_refused_unless_forced() -> None:
    assert len(network_hosts("192.168.4.0/22")) == MAX_SWEEP_ADDRESSES - 2
    with pytest.raises(ConfigError, match="more than a /22"):
        network_hosts("10.0.0.0/21")
    assert len(network_hosts("10.0.0.0/21", force=True)) == 2046
    with pytest.raises(ConfigError):
        network_hosts("not-a-net")
    with pytest.raises(ConfigError, match="/22"):
        run_scan(ScanRequest(nets=["10.0.0.0/16"]))


def test_the_sweep_keeps_the_ports_that_accept_a_connection(
    refusing_address: tuple[str, int],
) -> None:
    with TcpServer(emulator("shtrih", "0011111111111111")) as server:
        found = sweep(
            ["127.0.0.1"],
            [server.port, refusing_address[1]],
            connect_timeout_s=1.0,
            jobs=4,
            cancel=threading.Event(),
        )
    assert found == [TcpTarget("127.0.0.1", server.port)]


def test_a_register_found_by_the_net_sweep_is_identified() -> None:
    device = emulator("atol", "0022222222222222")
    with TcpServer(device) as server:
        vendors = (WireVendor("atol", (115200,), server.port),)
        request = ScanRequest(nets=["127.0.0.1/32"], vendors=vendors, probe=ProbeSettings())
        (finding,) = run_scan(request).findings
    assert (finding.status, finding.found_by, finding.vendor) == (Status.FOUND, Source.NET, "atol")
    assert finding.url == f"tcp://127.0.0.1:{server.port}"
    assert getattr(device, "forbidden_received") == []  # noqa: B009


def test_the_plan_tries_every_vendor_at_its_factory_speed_first() -> None:
    plan = serial_plan(WIRE_VENDORS)
    assert plan[:3] == [("shtrih", 115200), ("atol", 115200), ("pirit", None)]
    assert [rate for vendor, rate in plan if vendor == "shtrih"] == [
        115200,
        4800,
        57600,
        38400,
        19200,
        9600,
        2400,
    ]
    assert [rate for vendor, rate in plan if vendor == "atol"] == [
        115200,
        57600,
        38400,
        19200,
        9600,
        4800,
    ]
    assert [rate for vendor, rate in plan if vendor == "pirit"] == [None]
    assert tcp_order(WIRE_VENDORS, 50003) == ["pirit", "shtrih", "atol"]
    assert [v.name for v in wire_vendors(["pirit", "shtrih"])] == ["shtrih", "pirit"]
    with pytest.raises(ConfigError):
        wire_vendors(["kkmserver"])


def test_a_named_port_is_probed_as_given() -> None:
    assert SerialPort("/dev/ttyS3").config_url(4800) == "serial:///dev/ttyS3?baudrate=4800"


def test_a_host_named_without_a_port_reports_only_the_ports_that_listen(
    refusing_address: tuple[str, int],
) -> None:
    device = emulator("atol", "0022222222222222")
    closed = refusing_address[1]
    with TcpServer(device) as server:
        vendors = (
            WireVendor("shtrih", (115200,), closed),
            WireVendor("atol", (115200,), server.port),
        )
        (finding,) = run_scan(ScanRequest(tcp=["127.0.0.1"], vendors=vendors)).findings
    assert (finding.status, finding.vendor, finding.port) == (
        Status.FOUND,
        "atol",
        f"127.0.0.1:{server.port}",
    )


def test_a_host_where_nothing_listens_is_said_once(refusing_address: tuple[str, int]) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        ports = [refusing_address[1], other.getsockname()[1]]
        vendors = tuple(
            WireVendor(name, (115200,), port)
            for name, port in zip(("shtrih", "atol"), ports, strict=True)
        )
        (finding,) = run_scan(ScanRequest(tcp=["127.0.0.1"], vendors=vendors)).findings
    assert (finding.status, finding.port) == (Status.UNREACHABLE, "127.0.0.1")
    assert (
        finding.problem
        == f"nothing accepts a connection on the vendors' ports ({ports[0]}, {ports[1]})"
    )
    assert finding.fix and "--tcp HOST:PORT" in finding.fix


def test_a_port_whose_speed_is_unknown_is_written_without_one() -> None:
    assert SerialPort("/dev/ttyS3").config_url(None) == "serial:///dev/ttyS3"
