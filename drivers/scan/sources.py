"""Where a scan looks: serial ports, USB registers, named hosts and a bounded net sweep.

* :func:`serial_ports`: pyserial's port list (device, USB VID:PID and serial number)
  with the stable ``/dev/serial/by-id`` link pointing at each, and the USB register
  (:func:`kktmon.drivers.usb.find_usb_registers`) that owns the tty, if any;
* :func:`usb_without_tty`: USB registers and bridges that have no tty to probe (no
  CDC driver bound, a vendor-specific USB mode, no permission), listed as they are;
* :func:`tcp_targets`: ``--tcp HOST[:PORT]``; a host without a port means each wire
  vendor's default port;
* :func:`sweep`: ``--net CIDR``, a connect to each vendor port of each address in a
  thread pool, every connect bounded; a network bigger than a /22 is refused unless
  forced, so a typo cannot start a sweep of a whole /8.

Every source takes its system view as an argument (the port lister, the by-id folder,
the USB lister), so tests hand it ptys and fixtures.
"""

from __future__ import annotations

import ipaddress
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from kktmon.drivers.transport import open_transport
from kktmon.drivers.usb import usb_url
from kktmon.protocol.errors import ConfigError, KktmonError

BY_ID = Path("/dev/serial/by-id")
#: ``--net`` refuses a bigger network unless forced: a /22 is 1024 addresses.
MAX_SWEEP_ADDRESSES = 1024


class PortInfo(Protocol):
    """What a scan reads of pyserial's ``ListPortInfo`` (tests pass their own)."""

    @property
    def device(self) -> str: ...

    @property
    def vid(self) -> int | None: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def serial_number(self) -> str | None: ...


class UsbDevice(Protocol):
    """What a scan reads of a :class:`kktmon.drivers.usb.UsbRegister`."""

    @property
    def vid(self) -> int: ...

    @property
    def pid(self) -> int: ...

    @property
    def serial_number(self) -> str | None: ...

    @property
    def bus(self) -> int | None: ...

    @property
    def address(self) -> int | None: ...

    @property
    def family(self) -> str | None: ...

    @property
    def bridge(self) -> bool: ...

    @property
    def tty(self) -> str | None: ...

    @property
    def problem(self) -> str | None: ...

    @property
    def fix(self) -> str | None: ...

    @property
    def port(self) -> str | None:
        """The sysfs name of its USB port path (``1-1.2``)."""
        ...


PortLister = Callable[[], Iterable[PortInfo]]
UsbLister = Callable[[], Sequence[UsbDevice]]


def system_ports() -> list[PortInfo]:
    """pyserial's list of this machine's serial ports."""
    from serial.tools.list_ports import comports

    return list(comports())


def system_usb() -> tuple[list[UsbDevice], str | None]:
    """The register vendors' USB devices on this machine, or why none could be listed."""
    from kktmon.drivers.usb import find_usb_registers

    try:
        return list(find_usb_registers()), None
    except KktmonError as exc:  # libusb missing: the serial ports are still scanned
        return [], str(exc)


@dataclass(frozen=True)
class SerialPort:
    """A serial port to probe, with the names that survive a reboot or a replug."""

    device: str
    by_id: str | None = None
    vid: int | None = None
    pid: int | None = None
    serial_number: str | None = None
    usb: UsbDevice | None = None

    @property
    def usb_id(self) -> str | None:
        """``VID:PID`` in hex, as ``lsusb`` prints it."""
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04x}:{self.pid:04x}"

    def config_url(self, baudrate: int | None) -> str:
        """The URL the agent's configuration should use for a register found here.

        A USB register with a serial number: ``usb://VID:PID?serial=...``, resolved at
        every poll to whatever tty it has now; else the ``/dev/serial/by-id`` link, else
        the device itself; with the speed it answered at (None: the driver's default).
        """
        speed = f"baudrate={baudrate}" if baudrate else ""
        usb = self.usb
        if usb is not None and usb.serial_number:
            base = usb_url(usb.vid, usb.pid, usb.serial_number)
            return f"{base}&{speed}" if speed else base
        base = f"serial://{self.by_id or self.device}"
        return f"{base}?{speed}" if speed else base


def by_id_links(folder: Path = BY_ID) -> dict[str, str]:
    """Real device path -> its ``/dev/serial/by-id`` link (none on this machine: empty)."""
    links: dict[str, str] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return links
    for link in entries:
        links.setdefault(os.path.realpath(link), str(link))
    return links


def serial_ports(
    lister: PortLister = system_ports,
    by_id: Path = BY_ID,
    usb: Sequence[UsbDevice] = (),
) -> list[SerialPort]:
    """Each serial port once, with its by-id link and the USB register owning it."""
    links = by_id_links(by_id)
    usb_by_tty = {os.path.realpath(device.tty): device for device in usb if device.tty}
    ports: dict[str, SerialPort] = {}
    for info in lister():
        real = os.path.realpath(info.device)
        ports.setdefault(
            real,
            SerialPort(
                device=info.device,
                by_id=links.get(real),
                vid=info.vid,
                pid=info.pid,
                serial_number=info.serial_number or None,
                usb=usb_by_tty.get(real),
            ),
        )
    return list(ports.values())


def named_ports(
    devices: Iterable[str], known: Sequence[SerialPort] = (), by_id: Path = BY_ID
) -> list[SerialPort]:
    """Ports the user named (``--port``), probed instead of the machine's list; one the
    list knows keeps its by-id link and USB register (so its ``usb://`` name)."""
    links = by_id_links(by_id)
    listed = {os.path.realpath(port.device): port for port in known}
    ports = []
    for device in devices:
        real = os.path.realpath(device)
        ports.append(listed.get(real) or SerialPort(device, by_id=links.get(real)))
    return ports


def usb_without_tty(usb: Sequence[UsbDevice], ports: Sequence[SerialPort]) -> list[UsbDevice]:
    """USB devices of the register vendors that no probed serial port belongs to."""
    owned = {id(port.usb) for port in ports if port.usb is not None}
    return [device for device in usb if id(device) not in owned and not _has_port(device, ports)]


def _has_port(device: UsbDevice, ports: Sequence[SerialPort]) -> bool:
    if not device.tty:
        return False
    real = os.path.realpath(device.tty)
    return any(os.path.realpath(port.device) == real for port in ports)


@dataclass(frozen=True)
class TcpTarget:
    """A host and port to probe with the wire vendors' protocols."""

    host: str
    port: int

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"tcp://{self.address}"


def tcp_targets(spec: str, default_ports: Sequence[int]) -> list[TcpTarget]:
    """``HOST``, ``HOST:PORT``, ``[V6]`` or ``[V6]:PORT`` -> the targets to probe."""
    host, port = _split_host_port(spec)
    if not host:
        raise ConfigError(f"--tcp {spec!r}: no host")
    ports = [port] if port is not None else list(default_ports)
    return [TcpTarget(host, each) for each in ports]


def _split_host_port(spec: str) -> tuple[str, int | None]:
    text = spec.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else (rest or None)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    else:
        host, port_text = text, None  # a bare name or a bare IPv6 address
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"--tcp {spec!r}: the port must be a number 1-65535")
    return host, int(port_text)


def network_hosts(cidr: str, *, force: bool = False) -> list[str]:
    """The addresses of ``--net CIDR``; bigger than :data:`MAX_SWEEP_ADDRESSES` needs force."""
    try:
        network = ipaddress.ip_network(cidr, strict=False)
    except ValueError as exc:
        raise ConfigError(f"--net {cidr!r}: {exc}") from exc
    if network.num_addresses > MAX_SWEEP_ADDRESSES and not force:
        raise ConfigError(
            f"--net {cidr}: {network.num_addresses} addresses is more than a /22"
            f" ({MAX_SWEEP_ADDRESSES}); narrow it, or add --force"
        )
    hosts = list(network.hosts()) or [network.network_address]
    return [str(address) for address in hosts]


def sweep(
    hosts: Sequence[str],
    ports: Sequence[int],
    *,
    connect_timeout_s: float,
    jobs: int,
    cancel: threading.Event,
    deadline: float | None = None,
) -> list[TcpTarget]:
    """The ``(host, port)`` pairs that accept a TCP connection, in address order.

    Connects not started by ``deadline`` (monotonic) or after ``cancel`` are skipped.
    """
    candidates = [TcpTarget(host, port) for host in hosts for port in ports]

    def accepts(target: TcpTarget) -> bool:
        if cancel.is_set() or (deadline is not None and time.monotonic() >= deadline):
            return False
        try:
            open_transport(target.url, timeout=connect_timeout_s).close()
        except KktmonError:
            return False
        return True

    pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="scan-net")
    try:
        futures = [pool.submit(accepts, target) for target in candidates]
        return [
            target for target, future in zip(candidates, futures, strict=True) if future.result()
        ]
    except BaseException:
        cancel.set()  # Ctrl-C: the connects still queued are dropped, not waited for
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
