"""What a scan reports: one :class:`Finding` per port, host or server register.

A finding is what the technician installing kktmon acts on, so every one that is not a
register found says what went wrong (``problem``) and what to do about it (``fix``).
``url`` is the stable address the agent's configuration should use, set only for a
register that answered. ``attempts`` keeps each probe's vendor, speed, time and
outcome, so ``benchmarks/scan.py`` can say what a scan's time went on.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class Status(StrEnum):
    """How a port or host ended up."""

    FOUND = "found"  # a register identified itself
    HELD = "held"  # another program has the port open: never taken from it
    SILENT = "silent"  # nothing answered at any speed
    GARBLED = "garbled"  # bytes came back that no vendor's framing accepts
    NO_TTY = "no_tty"  # a USB register without a serial port to talk through
    UNREACHABLE = "unreachable"  # the port or host could not be opened
    REFUSED = "refused"  # a driver server or a register refused to serve the read
    BUSY = "busy"  # a driver server's register is busy with the POS right now
    ERROR = "error"  # anything else the port or server said (permission, ...)
    TIMED_OUT = "timed_out"  # the scan's time ran out before this one finished


class Source(StrEnum):
    """How a register was found (the table's "how found" column)."""

    SERIAL = "serial"  # the machine's serial ports
    USB = "usb"  # a USB device matched against the register vendors' ids
    KKMSERVER = "kkmserver"  # listed by a kkmserver
    ATOL_WEB = "atol-web"  # the default device of an ATOL Web Requests server
    TCP = "tcp"  # a host named with --tcp
    NET = "net"  # a host:port found open by the --net sweep


class Attempt(BaseModel):
    """One probe: a vendor's identification at one speed (None: not a serial port)."""

    model_config = ConfigDict(extra="forbid")

    vendor: str
    baudrate: int | None = None
    seconds: float
    outcome: Status


class Finding(BaseModel):
    """One port, host or driver-server register and what the scan learnt about it.

    ``vendor`` is the driver to configure (``shtrih``, ``atol``, ``pirit``, ``atol-web``,
    ``kkmserver``); ``family`` the register's own family, which differs from ``vendor``
    behind a driver server. ``holder`` names the program holding a port where ``/proc``
    tells.
    """

    model_config = ConfigDict(extra="forbid")

    port: str
    found_by: Source
    status: Status
    vendor: str | None = None
    family: str | None = None
    model: str | None = None
    serial: str | None = None
    fn_serial: str | None = None
    firmware: str | None = None
    url: str | None = None
    baudrate: int | None = None
    holder: str | None = None
    problem: str | None = None
    fix: str | None = None
    seconds: float = 0.0
    attempts: list[Attempt] = Field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.status is Status.FOUND


class ScanReport(BaseModel):
    """The whole scan: its findings, how long it took and whether it was cut short."""

    model_config = ConfigDict(extra="forbid")

    findings: list[Finding] = Field(default_factory=list)
    seconds: float = 0.0
    interrupted: bool = False
    timed_out: bool = False
    #: What the scan could not look at, and why (no libusb: USB not scanned).
    notes: list[str] = Field(default_factory=list)

    @property
    def registers(self) -> list[Finding]:
        return [finding for finding in self.findings if finding.found]
