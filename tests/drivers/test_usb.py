"""find_usb_registers through pyusb with a test backend (tests/helpers/fake_usb.py).

pyusb's own ``usb.core.find`` enumerates the fixture devices and reads their string
descriptors through the backend; the tty comes from a fake sysfs tree and a fake
pyserial port list, the stable name from a fake ``/dev/serial/by-id``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import usb.backend.libusb0  # type: ignore[import-untyped]
import usb.backend.libusb1  # type: ignore[import-untyped]
import usb.backend.openusb  # type: ignore[import-untyped]
from fake_usb import (
    GET_DESCRIPTOR,
    FakeBackend,
    FakeUsbDevice,
    make_by_id,
    make_sysfs,
    port_info,
)
from serial.tools.list_ports_common import ListPortInfo

from kktmon.drivers.usb import (
    NO_PERMISSION,
    NO_PERMISSION_FIX,
    NO_TTY,
    UsbBackendMissingError,
    UsbRegister,
    find_usb_registers,
)
from kktmon.drivers.usb_ids import KNOWN_IDS, lookup

SHTRIH = FakeUsbDevice(0x1FC9, 0x0083, 1, (2,), 5, "NXP", "SHTRIH-M", "0012345678")
ATOL = FakeUsbDevice(0x2912, 0x0005, 1, (3,), 6, "ATOL", "ATOL FPrint", "00106107751234")
ATOL_DENIED = FakeUsbDevice(
    0x2912, 0x0005, 2, (1, 4), 3, "ATOL", "ATOL FPrint", "00106107759999", denied=True
)
CH340 = FakeUsbDevice(0x1A86, 0x7523, 1, (4,), 7, None, "USB Serial", None)
KEYBOARD = FakeUsbDevice(0x046D, 0xC31C, 1, (1,), 2, "Logitech", "USB Keyboard", None)


def scan(
    tmp_path: Path,
    devices: list[FakeUsbDevice],
    ports: list[ListPortInfo] | None = None,
    backend: FakeBackend | None = None,
) -> list[UsbRegister]:
    return find_usb_registers(
        backend or FakeBackend(devices),
        sysfs_root=tmp_path / "sys",
        comports=lambda: list(ports or []),
        by_id_root=tmp_path / "dev" / "serial" / "by-id",
    )


def test_a_register_with_a_tty(tmp_path: Path) -> None:
    make_sysfs(tmp_path / "sys", SHTRIH, {"1.0": "tty/ttyACM0", "1.1": ""})
    link = make_by_id(tmp_path / "dev/serial/by-id", "usb-NXP_SHTRIH-M_0012345678-if00", "ttyACM0")
    backend = FakeBackend([KEYBOARD, SHTRIH])

    (found,) = scan(tmp_path, [], backend=backend)

    assert (found.family, found.bridge, found.tty, found.by_id) == (
        "shtrih",
        False,
        "/dev/ttyACM0",
        str(link),
    )
    assert (found.manufacturer, found.product, found.serial_number) == (
        "NXP",
        "SHTRIH-M",
        "0012345678",
    )
    assert (found.bus, found.address, found.port) == (1, 5, "1-2")
    assert found.problem is None and found.fix is None
    assert found.url == "usb://1fc9:0083?serial=0012345678"
    # Only standard GET_DESCRIPTOR (string) requests reached the register, and the
    # handle pyusb opened for them was closed again.
    assert {(request, value >> 8) for _, _, request, value in backend.requests} == {
        (GET_DESCRIPTOR, 3)
    }
    assert backend.open_handles == 0


def test_a_usb_serial_driver_tty_is_found_in_the_interface_folder(tmp_path: Path) -> None:
    make_sysfs(tmp_path / "sys", CH340, {"1.0": "ttyUSB0"})
    (found,) = scan(tmp_path, [CH340])
    assert found.tty == "/dev/ttyUSB0"


def test_a_register_without_a_tty_is_listed_with_what_to_do(tmp_path: Path) -> None:
    make_sysfs(tmp_path / "sys", ATOL, {"1.0": "", "1.2": ""})  # vendor-specific USB mode

    (found,) = scan(tmp_path, [ATOL])

    assert (found.family, found.serial_number, found.tty, found.by_id) == (
        "atol",
        "00106107751234",
        None,
        None,
    )
    assert found.problem == NO_TTY
    assert found.fix is not None and "CDC" in found.fix and "cdc_acm" in found.fix


def test_a_register_without_permission_says_to_install_the_udev_rules(tmp_path: Path) -> None:
    make_sysfs(tmp_path / "sys", ATOL_DENIED, {"1.0": "tty/ttyACM3", "1.2": "tty/ttyACM4"})

    (found,) = scan(tmp_path, [ATOL_DENIED])

    assert found.problem == NO_PERMISSION and found.fix == NO_PERMISSION_FIX
    assert "99-kktmon.rules" in found.fix and "dialout" in found.fix
    # sysfs still tells the strings (world-readable), and the first interface's tty
    assert (found.serial_number, found.product) == ("00106107759999", "ATOL FPrint")
    assert found.tty == "/dev/ttyACM3"
    assert found.url == "usb://2912:0005?serial=00106107759999"


def test_no_tty_and_no_permission_names_both_fixes(tmp_path: Path) -> None:
    make_sysfs(tmp_path / "sys", ATOL_DENIED)

    (found,) = scan(tmp_path, [ATOL_DENIED])

    assert found.problem == NO_TTY
    assert found.fix is not None and "cdc_acm" in found.fix and "99-kktmon.rules" in found.fix


def test_a_bridge_chip_is_a_maybe_for_the_probe(tmp_path: Path) -> None:
    make_sysfs(tmp_path / "sys", CH340, {"1.0": "ttyUSB0"})

    (found,) = scan(tmp_path, [CH340, KEYBOARD])

    assert (found.bridge, found.family, found.serial_number) == (True, None, None)
    assert found.problem is None
    assert found.url == "usb://1a86:7523"  # no serial number: the first CH340


def test_the_tty_comes_from_pyserial_when_sysfs_has_none(tmp_path: Path) -> None:
    """No sysfs tree (another root, a container): pyserial's location is the same port."""
    (found,) = scan(tmp_path, [SHTRIH], [port_info("/dev/ttyACM7", SHTRIH, "1.0")])
    assert found.tty == "/dev/ttyACM7" and found.problem is None


def test_bridges_without_a_serial_number_are_numbered_by_port_path(tmp_path: Path) -> None:
    first = FakeUsbDevice(0x1A86, 0x7523, 1, (1, 9), 8)
    second = FakeUsbDevice(0x1A86, 0x7523, 1, (1, 10), 9)
    make_sysfs(tmp_path / "sys", second, {"1.0": "ttyUSB0"})
    make_sysfs(tmp_path / "sys", first, {"1.0": "ttyUSB1"})

    found = scan(tmp_path, [second, first])

    assert [(r.port, r.tty, r.url) for r in found] == [
        ("1-1.9", "/dev/ttyUSB1", "usb://1a86:7523"),
        ("1-1.10", "/dev/ttyUSB0", "usb://1a86:7523?index=1"),
    ]


def test_no_libusb_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in (usb.backend.libusb1, usb.backend.openusb, usb.backend.libusb0):
        monkeypatch.setattr(module, "get_backend", lambda *args, **kwargs: None)
    with pytest.raises(UsbBackendMissingError, match="USB not scanned: libusb missing"):
        find_usb_registers()


def test_the_table_has_one_row_per_id_and_marks_only_bridges_without_a_family() -> None:
    keys = [known.key for known in KNOWN_IDS]
    assert len(keys) == len(set(keys))
    assert {k.family for k in KNOWN_IDS if not k.bridge} == {"shtrih", "atol"}
    assert lookup(0x2912, 0x20C8) is None  # the other user of VID 2912 (Audioengine)
    atol = lookup(0x2912, 0x0005)
    assert atol is not None and atol.family == "atol"
