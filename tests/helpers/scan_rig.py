"""Simulated registers for ``kktmon scan`` tests and its benchmark.

:class:`BaudPtyServer` is a :class:`~kktmon.simulators.server.PtyServer` whose register
listens at one speed only, as a real UART does: the pty pair carries the speed the
host set (``termios`` on either side), and while it differs from the register's, the
register hears noise and answers nothing. A scan must then find the speed.

:func:`distinct_state` gives each simulator its own serial, so findings can be told
apart; :class:`FakePorts` is a pyserial-style port list that points at ptys.
"""

from __future__ import annotations

import termios
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from serial.tools.list_ports_common import ListPortInfo

from kktmon.simulators.registry import make_emulator
from kktmon.simulators.scenario import DeviceState, default_state
from kktmon.simulators.server import DeviceEmulator, Link, Output, PtyServer, Transport


class _SpeedLink:
    """The emulator's link, deaf while the line runs at another speed."""

    def __init__(self, link: Link, at_speed: Callable[[], bool]) -> None:
        self._link = link
        self._at_speed = at_speed
        self.byte_timeout_s = link.byte_timeout_s

    @property
    def mid_frame(self) -> bool:
        return self._link.mid_frame

    def start(self) -> list[Output]:
        return self._link.start()

    def feed(self, data: bytes) -> list[Output]:
        return self._link.feed(data) if self._at_speed() else []

    def timeout(self) -> list[Output]:
        return self._link.timeout()


class _AtSpeed:
    """A :class:`DeviceEmulator` whose links hear only bytes sent at its speed."""

    def __init__(self, emulator: DeviceEmulator, at_speed: Callable[[], bool]) -> None:
        self.emulator = emulator
        self._at_speed = at_speed

    @property
    def state(self) -> DeviceState:
        return self.emulator.state

    def open_link(self, transport: Transport) -> Link:
        return _SpeedLink(self.emulator.open_link(transport), self._at_speed)


class BaudPtyServer(PtyServer[_AtSpeed]):
    """A register on a pty that answers only at ``baudrate``."""

    def __init__(self, emulator: DeviceEmulator, baudrate: int) -> None:
        self.emulator = emulator
        self.baudrate = baudrate
        self._speed: int = getattr(termios, f"B{baudrate}")
        super().__init__(_AtSpeed(emulator, self._at_speed))

    def _at_speed(self) -> bool:
        try:
            attributes = termios.tcgetattr(self._master)
        except termios.error:
            return False  # closing
        speed: int = attributes[4]  # the input speed the host set
        return speed == self._speed


def distinct_state(serial: str) -> DeviceState:
    """The default healthy register with its own 16-digit factory number."""
    state = default_state()
    state.serial = serial
    return state


def emulator(vendor: str, serial: str) -> DeviceEmulator:
    """``vendor``'s emulator with serial ``serial`` (the emulators read it from the state)."""
    device = make_emulator(vendor)
    device.state.serial = serial
    return device


@dataclass
class FakePorts:
    """pyserial's port list for the given tty paths (no USB ids)."""

    devices: Sequence[str]

    def __call__(self) -> list[ListPortInfo]:
        return [ListPortInfo(device, skip_link_detection=True) for device in self.devices]


def off_allowlist(emulator: object) -> list[object]:
    """What reached a wire emulator that its vendor's read-only allowlist forbids."""
    found: list[object] = getattr(emulator, "forbidden_received")  # noqa: B009
    return found
