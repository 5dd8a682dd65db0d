"""A pyusb backend with fixture devices, so ``usb.core.find(backend=...)`` runs for real.

pyusb lets a caller pass the backend object; this one implements the methods pyusb
calls to enumerate devices and read their string descriptors (``enumerate_devices``,
``get_device_descriptor``, ``open_device``, ``close_device``, ``ctrl_transfer``), from
descriptors written here instead of a bus. A device can refuse to open (EACCES, what
libusb reports for a node without permission), and every open is recorded, so a test
can check that nothing but GET_DESCRIPTOR reached a device.

Also: a fake sysfs tree and a fake pyserial port list for the same devices.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import usb.core  # type: ignore[import-untyped]
from serial.tools.list_ports_common import ListPortInfo

GET_DESCRIPTOR = 0x06
STRING_DESCRIPTOR = 0x03
ENGLISH_US = 0x0409


@dataclass
class FakeUsbDevice:
    """One device on the fake bus: its ids, place, strings and how it behaves."""

    vid: int
    pid: int
    bus: int
    ports: tuple[int, ...]
    address: int
    manufacturer: str | None = None
    product: str | None = None
    serial: str | None = None
    #: libusb_open fails with EACCES (no udev rule for this node).
    denied: bool = False

    @property
    def sysfs_name(self) -> str:
        return f"{self.bus}-{'.'.join(str(p) for p in self.ports)}"


@dataclass
class _Descriptor:
    """What pyusb's Device copies out of a backend's device descriptor."""

    idVendor: int  # noqa: N815 - the USB field names pyusb reads
    idProduct: int  # noqa: N815
    bus: int
    address: int
    port_numbers: tuple[int, ...]
    port_number: int
    iManufacturer: int  # noqa: N815
    iProduct: int  # noqa: N815
    iSerialNumber: int  # noqa: N815
    bLength: int = 18  # noqa: N815
    bDescriptorType: int = 1  # noqa: N815
    bcdUSB: int = 0x0200  # noqa: N815
    bDeviceClass: int = 0  # noqa: N815
    bDeviceSubClass: int = 0  # noqa: N815
    bDeviceProtocol: int = 0  # noqa: N815
    bMaxPacketSize0: int = 64  # noqa: N815
    bcdDevice: int = 0x0100  # noqa: N815
    bNumConfigurations: int = 1  # noqa: N815
    speed: int = 2


@dataclass
class FakeBackend:
    """The pyusb backend interface over :class:`FakeUsbDevice` fixtures."""

    devices: list[FakeUsbDevice]
    #: (device, bmRequestType, bRequest, wValue) of every control transfer.
    requests: list[tuple[FakeUsbDevice, int, int, int]] = field(default_factory=list)
    open_handles: int = 0

    def enumerate_devices(self) -> Iterator[FakeUsbDevice]:
        yield from self.devices

    def get_device_descriptor(self, dev: FakeUsbDevice) -> _Descriptor:
        strings = (dev.manufacturer, dev.product, dev.serial)
        index = [n + 1 if text is not None else 0 for n, text in enumerate(strings)]
        return _Descriptor(
            idVendor=dev.vid,
            idProduct=dev.pid,
            bus=dev.bus,
            address=dev.address,
            port_numbers=dev.ports,
            port_number=dev.ports[-1],
            iManufacturer=index[0],
            iProduct=index[1],
            iSerialNumber=index[2],
        )

    def open_device(self, dev: FakeUsbDevice) -> FakeUsbDevice:
        if dev.denied:
            raise usb.core.USBError("Access denied (insufficient permissions)", -3, errno.EACCES)
        self.open_handles += 1
        return dev

    def close_device(self, handle: FakeUsbDevice) -> None:
        self.open_handles -= 1

    def ctrl_transfer(  # noqa: PLR0917 - pyusb's backend interface is positional
        self,
        handle: FakeUsbDevice,
        bmRequestType: int,  # noqa: N803 - pyusb's argument names
        bRequest: int,  # noqa: N803
        wValue: int,  # noqa: N803
        wIndex: int,  # noqa: N803
        data: Any,
        timeout: int,
    ) -> int:
        self.requests.append((handle, bmRequestType, bRequest, wValue))
        if bRequest != GET_DESCRIPTOR or wValue >> 8 != STRING_DESCRIPTOR:
            raise usb.core.USBError("Pipe error", -9, errno.EPIPE)
        payload = _string_descriptor(handle, wValue & 0xFF)
        size = min(len(payload), len(data))
        for offset, byte in enumerate(payload[:size]):  # data is pyusb's array('B')
            data[offset] = byte
        return size


def _string_descriptor(dev: FakeUsbDevice, index: int) -> bytes:
    if index == 0:
        body = ENGLISH_US.to_bytes(2, "little")
    else:
        text = (dev.manufacturer, dev.product, dev.serial)[index - 1] or ""
        body = text.encode("utf-16-le")
    return bytes([len(body) + 2, STRING_DESCRIPTOR]) + body


def make_sysfs(root: Path, dev: FakeUsbDevice, ttys: dict[str, str] | None = None) -> Path:
    """The device's folder under ``root/bus/usb/devices`` with its strings, and a tty per
    interface: ``{"1.0": "tty/ttyACM0"}`` (cdc_acm's layout) or ``{"1.0": "ttyUSB0"}``
    (usb-serial drivers'); interfaces without a tty when ``ttys`` is empty."""
    device = root / "bus" / "usb" / "devices" / dev.sysfs_name
    device.mkdir(parents=True)
    for name, value in (
        ("manufacturer", dev.manufacturer),
        ("product", dev.product),
        ("serial", dev.serial),
    ):
        if value is not None:
            (device / name).write_text(value + "\n", encoding="utf-8")
    for interface, tty in (ttys or {"1.0": ""}).items():
        folder = device / f"{dev.sysfs_name}:{interface}"
        folder.mkdir()
        if tty:
            (folder / tty).mkdir(parents=True)
    return device


def port_info(device: str, dev: FakeUsbDevice, interface: str | None = "1.0") -> ListPortInfo:
    """pyserial's entry for ``device`` (a tty path) on ``dev``, as its Linux lister fills it."""
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid = dev.vid
    info.pid = dev.pid
    info.serial_number = dev.serial
    info.manufacturer = dev.manufacturer
    info.product = dev.product
    info.location = f"{dev.sysfs_name}:{interface}" if interface else dev.sysfs_name
    info.apply_usb_info()
    return info


def make_by_id(root: Path, name: str, tty: str) -> Path:
    """A ``/dev/serial/by-id``-style link ``root/name`` -> ``../../<tty>``."""
    root.mkdir(parents=True, exist_ok=True)
    link = root / name
    os.symlink(f"../../{tty}", link)
    return link
