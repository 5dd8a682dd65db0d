"""Registers on USB: who is plugged in, which tty each has now, and ``usb://`` URLs.

Two jobs, both read-only (nothing here sends a byte to a register):

* :func:`find_usb_registers` lists the USB devices whose VID:PID is in
  :data:`~kktmon.drivers.usb_ids.KNOWN_IDS`, through pyusb, so a register that is
  plugged in but has no tty (no CDC/serial driver bound, a vendor-specific USB mode) or
  that we may not open is still listed, with what to do about it. Its tty comes from
  sysfs (``/sys/bus/usb/devices/<bus>-<ports>:<cfg>.<intf>/tty*``), else pyserial's port
  list, and its stable name from ``/dev/serial/by-id``. Every root is injectable.
* :class:`UsbResolver` turns ``usb://VID:PID?serial=S`` (or ``?index=N`` for devices
  without a serial number) into the tty the register has *now*, at every open, so a
  replug that makes ttyACM0 into ttyACM1 does not stop monitoring; the change is logged.
  It needs pyserial only (no libusb).

A missing libusb is :class:`UsbBackendMissingError` (scan says "USB not scanned:
libusb missing"); an absent register is :class:`UnreachableError` naming the URL.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from kktmon.drivers.usb_ids import UsbId, lookup
from kktmon.protocol.errors import ConfigError, TransportError, UnreachableError

log = logging.getLogger(__name__)

Comports = Callable[[], Iterable[ListPortInfo]]
DEFAULT_BAUDRATE = 115200  # as serial://
SYSFS_ROOT = Path("/sys")
BY_ID_ROOT = Path("/dev/serial/by-id")

NO_TTY = "no tty: no CDC/serial driver bound (vendor-specific USB mode?)"
NO_TTY_FIX = (
    "switch the register's USB mode to CDC/VCOM (virtual COM port) in its service menu or"
    " setup utility, or load the driver (modprobe cdc_acm, ftdi_sio, pl2303, ch341 or"
    " cp210x), then replug it"
)
NO_PERMISSION = "no permission: cannot open the USB device to read its descriptors"
NO_PERMISSION_FIX = (
    "install deploy/udev/99-kktmon.rules (see README) and add the service user to the dialout group"
)


class UsbBackendMissingError(TransportError):
    """pyusb found no backend (libusb is not installed): USB devices cannot be listed."""


@dataclass(frozen=True)
class UsbRegister:
    """One USB device from the table: a register, or a bridge that may be one.

    ``family`` is the registry's vendor name when the VID:PID is a register maker's,
    None for a bridge (``bridge`` True: only a probe can tell). ``problem`` and ``fix``
    say why it cannot be monitored as it is and what to do (None when it can).
    """

    vid: int
    pid: int
    serial_number: str | None
    manufacturer: str | None
    product: str | None
    bus: int | None
    address: int | None
    family: str | None
    bridge: bool
    tty: str | None
    by_id: str | None
    problem: str | None
    fix: str | None
    #: The sysfs name of the USB port path (``1-1.2``): stable while it stays in that port.
    port: str | None = None
    #: Among same-VID:PID devices without a serial number, this one's place by port path.
    index: int = 0

    @property
    def url(self) -> str:
        """The ``usb://`` URL that finds this register again after a replug."""
        return usb_url(self.vid, self.pid, self.serial_number, self.index)


@dataclass(frozen=True)
class UsbSelector:
    """A parsed ``usb://`` URL: which device, and the serial speed to open it at."""

    vid: int
    pid: int
    serial: str | None
    index: int
    baudrate: int


def usb_url(vid: int, pid: int, serial: str | None = None, index: int = 0) -> str:
    """``usb://vvvv:pppp?serial=S``, or ``?index=N`` (only when N > 0) without a serial."""
    base = f"usb://{vid:04x}:{pid:04x}"
    if serial:
        return f"{base}?serial={quote(serial, safe='')}"
    return f"{base}?index={index}" if index else base


def parse_usb_url(url: str) -> UsbSelector:
    """Validate a ``usb://VID:PID[?serial=S|index=N][&baudrate=B]`` URL (ConfigError)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "usb":
        raise ConfigError(f"{url}: not a usb:// URL")
    vid, pid = _parse_ids(url, parts.netloc + parts.path)
    options = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(options) - {"serial", "index", "baudrate", "baud"}
    if unknown:
        raise ConfigError(
            f"{url}: unknown option {sorted(unknown)[0]!r}; usb URLs take serial, index"
            " and baudrate"
        )
    serial = options.get("serial") or None
    index = _int_option(url, options, "index", 0, minimum=0)
    if serial is not None and "index" in options:
        raise ConfigError(f"{url}: give serial or index, not both")
    baudrate = _int_option(
        url, options, "baudrate", _int_option(url, options, "baud", DEFAULT_BAUDRATE, minimum=1)
    )
    return UsbSelector(vid, pid, serial, index, baudrate)


def _parse_ids(url: str, ids: str) -> tuple[int, int]:
    vid_text, sep, pid_text = ids.partition(":")
    try:
        if not sep or len(vid_text) != 4 or len(pid_text) != 4:
            raise ValueError(ids)
        return int(vid_text, 16), int(pid_text, 16)
    except ValueError:
        raise ConfigError(
            f"{url}: expected usb://VID:PID with 4 hex digits each, e.g. usb://0403:6001"
            "?serial=A50285BI"
        ) from None


def _int_option(url: str, options: dict[str, str], key: str, default: int, minimum: int = 1) -> int:
    if key not in options:
        return default
    try:
        value = int(options[key])
    except ValueError:
        raise ConfigError(f"{url}: {key} must be a number, not {options[key]!r}") from None
    if value < minimum:
        raise ConfigError(f"{url}: {key} must be at least {minimum}, not {value}")
    return value


class UsbResolver:
    """Finds the tty a ``usb://`` URL's register has now, and remembers the last one.

    One instance serves every poll thread (:data:`RESOLVER`); ``comports`` is pyserial's
    port list, injectable for tests. A change of tty is logged at INFO once.
    """

    def __init__(self, comports: Comports = list_ports.comports) -> None:
        self.comports = comports
        self._last: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def resolve(self, url: str) -> tuple[str, int]:
        """The register's tty and the URL's baud rate; UnreachableError when it is absent."""
        selector = parse_usb_url(url)
        tty = find_tty(selector, self.comports())
        self._note(url, tty)
        if tty is None:
            raise UnreachableError(
                f"{url}: no such USB register is plugged in with a tty now; check the cable"
                " and power, `kktmon scan` lists what is there"
            )
        return tty, selector.baudrate

    def last(self, url: str) -> str | None:
        """The tty ``url`` resolved to last time (None: never, or absent then)."""
        with self._lock:
            return self._last.get(url)

    def _note(self, url: str, tty: str | None) -> None:
        with self._lock:
            known = url in self._last
            before = self._last.get(url)
            self._last[url] = tty
        if known and before == tty:
            return
        if tty is None:
            if before is not None:
                log.warning("%s is gone (was %s)", url, before)
        elif before is None:
            log.info("%s at %s", url, tty)
        else:
            log.info("%s now at %s (was %s)", url, tty, before)


#: The agent's resolver: one per process, so the last resolution of each URL is shared.
RESOLVER = UsbResolver()


def find_tty(selector: UsbSelector, ports: Iterable[ListPortInfo]) -> str | None:
    """The first-interface tty of the device ``selector`` names among ``ports``."""
    devices: dict[str, list[ListPortInfo]] = {}
    for port in ports:
        if port.vid != selector.vid or port.pid != selector.pid:
            continue
        if selector.serial is not None and port.serial_number != selector.serial:
            continue
        devices.setdefault(_device_key(port), []).append(port)
    ordered = [devices[key] for key in sorted(devices, key=_port_path_key)]
    if selector.serial is None:
        ordered = ordered[selector.index : selector.index + 1]
    elif len(ordered) > 1:
        count = len(ordered)
        log.warning("%d USB devices share serial %s; using the first", count, selector.serial)
    if not ordered:
        return None
    return min(ordered[0], key=lambda p: (_interface_key(p), p.device)).device


def _device_key(port: ListPortInfo) -> str:
    """The USB device a tty belongs to: pyserial's location without the interface."""
    location: str | None = port.location
    return location.partition(":")[0] if location else port.device


def _interface_key(port: ListPortInfo) -> tuple[int, ...]:
    location: str | None = port.location
    return _numbers(location.partition(":")[2]) if location else ()


def _port_path_key(name: str) -> tuple[int, ...]:
    """``1-1.10`` after ``1-1.9``: port paths compare as numbers."""
    return _numbers(name.replace("-", "."))


def _numbers(text: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else -1 for part in text.split(".") if part)


# --- finding USB registers -------------------------------------------------------------


@dataclass(frozen=True)
class _Strings:
    manufacturer: str | None = None
    product: str | None = None
    serial_number: str | None = None
    denied: bool = False


def find_usb_registers(
    backend: object | None = None,
    *,
    sysfs_root: Path = SYSFS_ROOT,
    comports: Comports = list_ports.comports,
    by_id_root: Path = BY_ID_ROOT,
) -> list[UsbRegister]:
    """Every USB device in the table (registers and bridges), with its tty and problem.

    ``backend`` is a pyusb backend (None: pyusb picks libusb); raises
    :class:`UsbBackendMissingError` when there is none. Reading a device's strings is
    the only USB traffic (standard GET_DESCRIPTOR requests, nothing vendor-specific).
    """
    devices = _enumerate(backend)
    ports = list(comports())
    by_id = _by_id_links(by_id_root)
    found = [
        _describe(device, known, sysfs_root, ports, by_id)
        for device in devices
        if (known := lookup(int(device.idVendor), int(device.idProduct))) is not None
    ]
    found.sort(key=lambda r: (r.vid, r.pid, _port_path_key(r.port or ""), r.address or 0))
    return _with_indexes(found)


def _enumerate(backend: object | None) -> list[Any]:
    import usb.core  # type: ignore[import-untyped]

    try:
        return list(usb.core.find(find_all=True, backend=backend))
    except usb.core.NoBackendError as exc:
        raise UsbBackendMissingError(
            "USB not scanned: libusb missing (install libusb-1.0, e.g. apt install libusb-1.0-0)"
        ) from exc


def _describe(
    device: Any,
    known: UsbId,
    sysfs_root: Path,
    ports: Sequence[ListPortInfo],
    by_id: dict[str, str],
) -> UsbRegister:
    port = _port_name(device)
    sysfs = sysfs_root / "bus" / "usb" / "devices" / port if port else None
    strings = _read_strings(device)
    if strings.denied and sysfs is not None:
        # sysfs holds the same strings, readable by anyone
        strings = _Strings(
            _sysfs_line(sysfs, "manufacturer"),
            _sysfs_line(sysfs, "product"),
            _sysfs_line(sysfs, "serial"),
            denied=True,
        )
    tty = _sysfs_tty(sysfs) if sysfs is not None else None
    tty = tty or _comports_tty(known, port, strings.serial_number, ports)
    problem, fix = _problem(tty, strings.denied)
    return UsbRegister(
        vid=known.vid,
        pid=known.pid,
        serial_number=strings.serial_number,
        manufacturer=strings.manufacturer,
        product=strings.product,
        bus=_optional_int(getattr(device, "bus", None)),
        address=_optional_int(getattr(device, "address", None)),
        family=known.family,
        bridge=known.bridge,
        tty=tty,
        by_id=by_id.get(Path(tty).name) if tty else None,
        problem=problem,
        fix=fix,
        port=port,
    )


def _problem(tty: str | None, denied: bool) -> tuple[str | None, str | None]:
    if tty is None:
        fix = f"{NO_TTY_FIX}; also {NO_PERMISSION_FIX}" if denied else NO_TTY_FIX
        return NO_TTY, fix
    if denied:
        return NO_PERMISSION, NO_PERMISSION_FIX
    return None, None


def _read_strings(device: Any) -> _Strings:
    """Manufacturer, product and serial through pyusb; ``denied`` on EACCES."""
    import usb.core
    import usb.util  # type: ignore[import-untyped]

    try:
        langids = usb.util.get_langids(device)
        if not langids:
            return _Strings()
        langid = langids[0]
        return _Strings(
            manufacturer=_string(device, device.iManufacturer, langid),
            product=_string(device, device.iProduct, langid),
            serial_number=_string(device, device.iSerialNumber, langid),
        )
    except usb.core.USBError as exc:
        if exc.errno == errno.EACCES:
            return _Strings(denied=True)
        log.debug("cannot read the strings of USB %s: %s", _port_name(device), exc)
        return _Strings()
    finally:
        usb.util.dispose_resources(device)


def _string(device: Any, index: int, langid: int) -> str | None:
    import usb.util

    text: str | None = usb.util.get_string(device, index, langid)
    return text.strip() or None if text else None


def _port_name(device: Any) -> str | None:
    """The sysfs name of the device (``<bus>-<port>.<port>...``), None when unknown."""
    bus = getattr(device, "bus", None)
    ports = getattr(device, "port_numbers", None)
    if bus is None or not ports:
        return None
    return f"{int(bus)}-{'.'.join(str(int(n)) for n in ports)}"


def _sysfs_tty(device_dir: Path) -> str | None:
    """The tty of the device's first interface that has one (cdc_acm: ``<intf>/tty/X``;
    usb-serial drivers: ``<intf>/ttyUSBn``)."""
    interfaces = sorted(
        device_dir.glob(f"{device_dir.name}:*"),
        key=lambda p: _numbers(p.name.partition(":")[2]),
    )
    for interface in interfaces:
        names = sorted(p.name for p in (interface / "tty").glob("*"))
        names += sorted(p.name for p in interface.glob("tty?*"))
        if names:
            return f"/dev/{names[0]}"
    return None


def _comports_tty(
    known: UsbId, port: str | None, serial: str | None, ports: Sequence[ListPortInfo]
) -> str | None:
    """pyserial's view: the same USB port path, else the same VID:PID and serial."""
    mine = [p for p in ports if p.vid == known.vid and p.pid == known.pid]
    if port is not None:
        same_place = [p for p in mine if _device_key(p) == port]
        if same_place:
            return min(same_place, key=lambda p: (_interface_key(p), p.device)).device
    if serial is None:
        return None
    return find_tty(UsbSelector(known.vid, known.pid, serial, 0, DEFAULT_BAUDRATE), mine)


def _by_id_links(root: Path) -> dict[str, str]:
    """tty name -> its ``/dev/serial/by-id`` link (udev's stable name)."""
    links: dict[str, str] = {}
    try:
        entries = sorted(root.iterdir())
    except OSError:
        return links  # no USB serial device at all: udev made no folder
    for link in entries:
        try:
            target = os.readlink(link)
        except OSError:
            continue
        links.setdefault(Path(target).name, str(link))
    return links


def _sysfs_line(device_dir: Path, name: str) -> str | None:
    try:
        return (device_dir / name).read_text(encoding="utf-8", errors="replace").strip() or None
    except OSError:
        return None


def _optional_int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def _with_indexes(found: list[UsbRegister]) -> list[UsbRegister]:
    """Number the devices with a tty per VID:PID in port-path order, as :func:`find_tty`
    counts them for ``?index=N`` (the URL of a device without a serial number)."""
    counts: dict[tuple[int, int], int] = {}
    numbered = []
    for register in found:
        if register.tty is None:
            numbered.append(register)
            continue
        key = (register.vid, register.pid)
        counts[key] = counts.get(key, 0) + 1
        numbered.append(replace(register, index=counts[key] - 1))
    return numbered
