"""What every wire emulator shares, so that a vendor package holds only the vendor.

A wire vendor (``simulators/<vendor>/``) has three role modules: ``emulator`` (the
device: a :class:`WireEmulator` with the vendor's dispatch table, command -> answer
builder), ``link`` (the register's side of the link layer: a :class:`DeviceLink` per
connection, framing from ``kktmon.protocol.<vendor>.frame``) and ``answers`` (the answer
builders, from the :class:`~kktmon.simulators.scenario.DeviceState`). This module is
the part each of them used to re-implement:

* :class:`RefusalError`: an answer builder's way of answering with a vendor error code;
* :class:`Context`: what a builder sees, the state and the device's clock (a vendor
  adds its own facts, such as the operator a password belongs to);
* :class:`WireEmulator`: the state, the host clock and the device time
  (``clock_offset_s`` ahead of it), the log of what the host sent (``received``, and
  ``forbidden_received`` for what the read-only allowlist refuses: what the allowlist
  tests read), and the seeded dice of the ``garbage_before_stx`` noise;
* :class:`DeviceLink`: one connection's fault hooks where every vendor applies the same
  logic: ``silent``, ``pending_answer`` at connect, ``slow_answer_s`` and
  ``busy_printing`` delays, ``wrong_lrc_answers`` / ``cut_answers`` spoiling an answer,
  ``lost_answers`` losing one on the wire, ``stray_ff`` and ``disconnect_after``. What a
  fault *means* on a vendor's link (which byte answers a NAK storm, where a stale answer
  surfaces) stays in its ``link``.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from kktmon.simulators.scenario import DeviceState, Faults, default_state
from kktmon.simulators.server import Close, Link, Output, Transport, Write

STRAY = 0xFF  # the stray byte of quirk 11.1 (Shtrih-M TCP bridges)


class RefusalError(Exception):
    """Answer with the vendor's error ``code`` instead of data.

    ``reason`` is an extended reason the register reports afterwards, for the vendors
    that keep one (Pirit 06h/1); 0 elsewhere.
    """

    def __init__(self, code: int, reason: int = 0) -> None:
        super().__init__(f"error {code:02X}h")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Context:
    """What an answer builder reads: the device state at the device's own time."""

    state: DeviceState
    now: datetime  # the device's clock


C = TypeVar("C")  # how the log names a command: its code, or its bytes


class WireEmulator(ABC, Generic[C]):
    """A register on the wire: state, clock, dice and the log of what arrived.

    ``received`` lists every intact command, in order (those a fault then refused
    included); those off the read-only allowlist are also in ``forbidden_received``.
    ``clock`` is the host's clock (naive local); the device runs ``clock_offset_s`` ahead
    of it. ``seed`` makes the ``garbage_before_stx`` noise repeatable.
    """

    def __init__(
        self,
        state: DeviceState | None = None,
        clock: Callable[[], datetime] = datetime.now,
        seed: int | None = None,
    ) -> None:
        self.state = state if state is not None else default_state()
        self.clock = clock
        self.received: list[C] = []
        self.forbidden_received: list[C] = []
        self.rng = random.Random(seed)

    @abstractmethod
    def open_link(self, transport: Transport) -> Link:
        """A fresh link for one connection (the device state is shared)."""

    def device_time(self) -> datetime:
        return self.clock() + timedelta(seconds=self.state.clock_offset_s)

    def log(self, command: C, *, allowed: bool) -> None:
        """Record a command that arrived intact; ``allowed``: on the read-only allowlist."""
        self.received.append(command)
        if not allowed:
            self.forbidden_received.append(command)

    def noise(self) -> bytes:
        """``garbage_before_stx`` printable bytes (never a control byte of any vendor)."""
        count = self.state.faults.garbage_before_stx
        return bytes(self.rng.randrange(0x20, 0x7F) for _ in range(count))


E = TypeVar("E", bound=WireEmulator[Any])


class DeviceLink(ABC, Generic[E]):
    """The register's side of one connection: the :class:`~kktmon.simulators.server.Link`
    a runner drives, with the fault hooks every vendor applies alike.

    A vendor link implements :meth:`receive` (bytes from a host that is heard),
    :meth:`timeout`, :attr:`mid_frame` and :meth:`hold_stale_answer`.
    """

    byte_timeout_s: float  # the register's own inter-byte timeout
    busy_delay_s = 0.0  # extra answer delay while a document is printing

    def __init__(self, emulator: E, transport: Transport) -> None:
        self.emulator = emulator
        self.transport = transport

    @property
    def faults(self) -> Faults:
        return self.emulator.state.faults

    @property
    @abstractmethod
    def mid_frame(self) -> bool:
        """True while the runner should call :meth:`timeout` when the line goes quiet."""

    def start(self) -> list[Output]:
        """The connection opened; ``pending_answer``: an answer another program left."""
        if self.faults.pending_answer:
            self.hold_stale_answer()
        return []

    def feed(self, data: bytes) -> list[Output]:
        """Bytes arrived; a ``silent`` register hears nothing."""
        return [] if self.faults.silent else self.receive(data)

    @abstractmethod
    def hold_stale_answer(self) -> None:
        """Keep the answer a POS program failed to collect, to surface it the vendor's way."""

    @abstractmethod
    def receive(self, data: bytes) -> list[Output]:
        """Bytes from the host, while the register is not silent."""

    @abstractmethod
    def timeout(self) -> list[Output]:
        """The line stayed quiet for ``byte_timeout_s`` while :attr:`mid_frame`."""

    # ------------------------------------------------------------------ fault hooks

    def answer_delay(self) -> float:
        """How long the answer takes: ``slow_answer_s``, more while printing."""
        faults = self.faults
        return faults.slow_answer_s + (self.busy_delay_s if faults.busy_printing else 0.0)

    def spoil(self, frame: bytes, corrupt: Callable[[bytes], bytes], shortest: int) -> bytes:
        """An answer frame as the faults let it out: lost on the wire (nothing at all,
        ``lost_answers``), with a wrong checksum (``corrupt`` makes one), then cut in half
        (never below ``shortest`` bytes).

        A lost answer is lost after the register sent it: its link goes on as if the host
        had it (a Shtrih-M register keeps it for the next ENQ, an ATOL task keeps its
        result for ``C3``, a Pirit reply is simply gone), so each vendor's own recovery
        meets it; each sending of an answer uses up one.
        """
        if self.faults.take("lost_answers"):
            return b""
        if self.faults.take("wrong_lrc_answers"):
            frame = corrupt(frame)
        if self.faults.take("cut_answers"):
            frame = frame[: max(shortest, len(frame) // 2)]
        return frame

    def stray(self, default: bool = False) -> list[Output]:
        """The stray FFh after an exchange: ``stray_ff``, or ``default`` when unset."""
        wanted = self.faults.stray_ff
        return [Write(bytes([STRAY]))] if (default if wanted is None else wanted) else []

    def hang_up_after(self, count: int) -> list[Output]:
        """Drop the connection once ``count`` exchanges reach ``disconnect_after``."""
        limit = self.faults.disconnect_after
        return [Close()] if limit is not None and count >= limit else []


def flip_last_byte(frame: bytes) -> bytes:
    """The frame with a wrong one-byte checksum (LRC) at its end."""
    return frame[:-1] + bytes([frame[-1] ^ 0x55])
