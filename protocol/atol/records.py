"""Typed records parsed from ATOL answers (atol.md section 5).

Every ``parse_*`` takes the command answer as the link machines deliver it
(``link.answer``: after the FE ``A3``/``A6 TID`` status, or the unstuffed LEGACY DATA),
checks its shape and error code through
:func:`~kktmon.protocol.atol.commands.answer_payload` and returns a frozen record, or
raises a :class:`~kktmon.protocol.errors.ProtocolError` subclass: ``DeviceError`` for an
error code, ``MalformedAnswerError`` for a short answer or an impossible value.

Offsets in the comments are the reference's, into the whole answer. Encodings differ by
command (quirk Q7): 3Fh, 9Dh and the 91h registers are BCD, most significant first; the
FN pass-through answers (A4h) are the fiscal drive's own, binary little-endian with
binary ``YY MM DD [hh mm]`` dates: :mod:`kktmon.protocol.fn` reads them into the records
every vendor shares (re-exported here under the names the driver uses). Answers longer
than documented are accepted; extra bytes are ignored. All datetimes are naive register
wall-clock time; drivers attach the zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kktmon.protocol import fn
from kktmon.protocol.atol import commands as cmd
from kktmon.protocol.atol.commands import answer_payload, bcd_digits, bcd_to_int
from kktmon.protocol.errors import MalformedAnswerError
from kktmon.protocol.fields import FieldCursor

# The fiscal drive's records, shared with every vendor (kktmon.protocol.fn).
FnStatus = fn.FnStatus
FnValidity = fn.FnValidity
FnFirmware = fn.FnFirmware
FnRegistration = fn.FnRegistration
Registration = fn.FnRegistration  # the driver's name for it
OfdStatus = fn.OfdStatus
ShiftParameters = fn.ShiftParameters
FnResource = fn.FnResource


class _Fields(FieldCursor):
    """The shared cursor plus ATOL's BCD fields."""

    def bcd(self, size: int) -> int:
        return bcd_to_int(self.take(size), self.what)


def _datetime(parts: tuple[int, ...], what: str) -> datetime:
    """``(YY, MM, DD[, hh, mm[, ss]])`` with YY counted from 2000."""
    year, month, day, hour, minute, second = (*parts, 0, 0, 0)[:6]
    try:
        return datetime(2000 + year, month, day, hour, minute, second)
    except ValueError as exc:
        raise MalformedAnswerError(f"{what}: impossible date/time {parts}") from exc


def _bcd_parts(raw: bytes, what: str) -> tuple[int, ...]:
    return tuple(bcd_to_int(bytes([byte]), what) for byte in raw)


# ------------------------------------------------------------------ 3Fh device state


@dataclass(frozen=True)
class StateFlags:
    """Offset 9 of the 3Fh answer."""

    raw: int

    @property
    def fiscalized(self) -> bool:
        return bool(self.raw & 0x01)

    @property
    def shift_open(self) -> bool:
        return bool(self.raw & 0x02)

    @property
    def drawer_or_presenter(self) -> bool:
        """Cash drawer open (old manuals) or paper in the presenter (3.x) [M]."""
        return bool(self.raw & 0x04)

    @property
    def paper_present(self) -> bool:
        return bool(self.raw & 0x08)

    @property
    def cover_open(self) -> bool:
        return bool(self.raw & 0x20)

    @property
    def fn_active(self) -> bool:
        return bool(self.raw & 0x40)

    @property
    def battery_low(self) -> bool:
        return bool(self.raw & 0x80)


@dataclass(frozen=True)
class DeviceState:
    cashier: int
    kkt_number: int
    device_time: datetime
    flags: StateFlags
    serial_low: str  # the low 8 digits only; the full serial is register 16h
    model: int
    mode: int  # low nibble of offset 17
    submode: int  # high nibble
    next_receipt: int
    last_closed_shift: int  # the last closed shift, not the current one (Q7)
    receipt_state: int  # 0 closed, 1 sale, 2 sale return, 4 purchase, ...
    receipt_total: int  # minor units
    decimals: int
    interface: int  # 1 RS-232, 4 USB, 5 Bluetooth, 6 Ethernet, 7 Wi-Fi


def parse_state(answer: bytes) -> DeviceState:
    f = _Fields(answer_payload(answer, cmd.STATE), "3Fh")  # offset 1 onwards
    cashier, kkt_number = f.bcd(1), f.uint(1)
    device_time = _datetime(_bcd_parts(f.take(6), "3Fh clock"), "3Fh clock")
    flags = StateFlags(f.uint(1))
    serial_low = bcd_digits(f.take(4), "3Fh serial")
    model = f.uint(1)
    f.take(2)  # firmware in old models / reserved: encoding unclear
    mode = f.uint(1)
    return DeviceState(
        cashier=cashier,
        kkt_number=kkt_number,
        device_time=device_time,
        flags=flags,
        serial_low=serial_low,
        model=model,
        mode=mode & 0x0F,
        submode=mode >> 4,
        next_receipt=f.bcd(2),
        last_closed_shift=f.bcd(2),
        receipt_state=f.uint(1),
        receipt_total=f.bcd(5),
        decimals=f.uint(1),
        interface=f.uint(1),
    )


# ------------------------------------------------------------------ 45h status code


@dataclass(frozen=True)
class PrinterFlags:
    """Byte 2 of the 45h answer; 1 = the condition is present."""

    raw: int

    @property
    def no_paper(self) -> bool:
        return bool(self.raw & 0x01)

    @property
    def printer_offline(self) -> bool:
        return bool(self.raw & 0x02)

    @property
    def mechanical_error(self) -> bool:
        return bool(self.raw & 0x04)

    @property
    def cutter_error(self) -> bool:
        return bool(self.raw & 0x08)

    @property
    def overheat(self) -> bool:
        return bool(self.raw & 0x10)

    @property
    def paper_jam(self) -> bool:
        return bool(self.raw & 0x20)

    @property
    def presenter_error(self) -> bool:
        return bool(self.raw & 0x40)

    @property
    def paper_near_end(self) -> bool:
        return bool(self.raw & 0x80)


@dataclass(frozen=True)
class StatusCode:
    mode: int
    submode: int
    printer: PrinterFlags


def parse_status_code(answer: bytes) -> StatusCode:
    f = _Fields(answer_payload(answer, cmd.STATUS_CODE), "45h")
    mode, printer = f.take(2)
    return StatusCode(mode & 0x0F, mode >> 4, PrinterFlags(printer))


# ------------------------------------------------------------------ A5h device type

# TerminalClient's table of online models [M]; older non-online models left out. Names
# are spelt as the vendor's driver (DTO 10) and its web server name them ("АТОЛ 30Ф"),
# so a register read on the wire and through that server gets one name.
MODEL_NAMES: dict[int, str] = {
    57: "АТОЛ 25Ф",
    61: "АТОЛ 30Ф",
    62: "АТОЛ 55Ф",
    63: "FPrint-22ПТК",
    64: "АТОЛ 52Ф",
    67: "АТОЛ 11Ф",
    69: "АТОЛ 77Ф",
    76: "Paymaster (Казначей)",
    77: "АТОЛ 42ФС",
    78: "АТОЛ 15Ф",
    81: "АТОЛ 20Ф",
    82: "АТОЛ 91Ф",
}


@dataclass(frozen=True)
class DeviceType:
    protocol: int
    device_type: int  # 1 = register
    model: int
    mode_raw: int  # offsets 4-5, meaning not established
    version: str  # "major.minor"
    language: int
    build: int
    name: str

    @property
    def model_name(self) -> str | None:
        return MODEL_NAMES.get(self.model)


def _version(raw: bytes, what: str) -> str:
    major, minor = _bcd_parts(raw, what)
    return f"{major}.{minor}"


def parse_device_type(answer: bytes) -> DeviceType:
    f = _Fields(answer_payload(answer, cmd.DEVICE_TYPE), "A5h")  # offset 1 onwards
    protocol, device_type, model = f.take(3)
    mode_raw = int.from_bytes(f.take(2), "big")
    version = _version(f.take(2), "A5h version")
    language, build = f.uint(1), f.bcd(2)
    name = f.rest().decode("cp866").strip(" \x00")
    return DeviceType(protocol, device_type, model, mode_raw, version, language, build, name)


# ------------------------------------------------------------------ 9Dh firmware


@dataclass(frozen=True)
class Firmware:
    version: str
    language: int  # 0 = Russian
    build: int


def parse_firmware(answer: bytes) -> Firmware:
    f = _Fields(answer_payload(answer, cmd.FIRMWARE), "9Dh")
    version = _version(f.take(2), "9Dh version")
    return Firmware(version, f.uint(1), f.bcd(2))


# ------------------------------------------------------------------ 91h registers


def parse_register(answer: bytes, register: int) -> bytes:
    """Raw value of any allowed register (11h has no documented layout: use 3Fh's clock)."""
    return answer_payload(answer, cmd.READ_REGISTER, register)


@dataclass(frozen=True)
class ShiftRegister:
    """Register 12h [L]: the stamp is the shift's open time or its 24 h expiry."""

    state: int
    stamp: datetime | None


def parse_shift_register(answer: bytes) -> ShiftRegister:
    f = _Fields(parse_register(answer, cmd.REG_SHIFT), "91h 12h")
    state, raw = f.uint(1), f.take(6)
    if not any(raw):
        return ShiftRegister(state, None)
    day, month, year, hour, minute, second = _bcd_parts(raw, "91h 12h stamp")
    return ShiftRegister(state, _datetime((year, month, day, hour, minute, second), "91h 12h"))


def parse_serial_register(answer: bytes) -> str:
    """Register 16h: 14 BCD digits on online models (8 on old ones), leading zeros kept."""
    value = parse_register(answer, cmd.REG_SERIAL)
    if len(value) not in (4, 7):
        raise MalformedAnswerError(f"91h 16h: serial of {len(value)} bytes")
    return bcd_digits(value, "91h 16h")


def parse_unsent_register(answer: bytes) -> int:
    """Register 2Ch [L]: documents not sent to the OFD, decimal digits; prefer A4h 20h."""
    value = parse_register(answer, cmd.REG_UNSENT)
    if not value:
        raise MalformedAnswerError("91h 2Ch: empty value")
    return bcd_to_int(value, "91h 2Ch")


FFD_NAMES: dict[int, str] = {1: "1.0", 2: "1.05", 3: "1.1", 4: "1.2"}


@dataclass(frozen=True)
class FfdVersions:
    """Register 36h: FFD codes of the register (byte 0) and the FN (byte 1)."""

    kkt_code: int
    fn_code: int

    @property
    def kkt(self) -> str | None:
        return FFD_NAMES.get(self.kkt_code)

    @property
    def fn(self) -> str | None:
        return FFD_NAMES.get(self.fn_code)


def parse_ffd_versions(answer: bytes) -> FfdVersions:
    f = _Fields(parse_register(answer, cmd.REG_FFD), "91h 36h")
    return FfdVersions(f.uint(1), f.uint(1))


def parse_extended_error(answer: bytes) -> int:
    """Register 37h: the extended code behind error EEh, bytes 0-1 big-endian."""
    f = _Fields(parse_register(answer, cmd.REG_EXTENDED_ERROR), "91h 37h")
    return int.from_bytes(f.take(2), "big")


# ------------------------------------------------------------------ A4h FN queries


def _fn(answer: bytes, sub: int) -> tuple[bytes, str]:
    """The drive's own answer after ``55 err``, and the command's name for errors."""
    return answer_payload(answer, cmd.FN_QUERY, sub), cmd.command_name(cmd.FN_QUERY, sub)


def parse_shift_parameters(answer: bytes) -> ShiftParameters:
    return fn.parse_shift_parameters(*_fn(answer, cmd.FN_SHIFT))


def parse_ofd_status(answer: bytes) -> OfdStatus:
    return fn.parse_ofd_status(*_fn(answer, cmd.FN_OFD_STATUS))


def parse_fn_status(answer: bytes) -> FnStatus:
    return fn.parse_fn_status(*_fn(answer, cmd.FN_STATUS))


def parse_fn_serial(answer: bytes) -> str:
    return fn.parse_fn_serial(*_fn(answer, cmd.FN_SERIAL))


def parse_fn_validity(answer: bytes) -> FnValidity:
    return fn.parse_fn_validity(*_fn(answer, cmd.FN_VALIDITY))


def parse_fn_firmware(answer: bytes) -> FnFirmware:
    return fn.parse_fn_firmware(*_fn(answer, cmd.FN_FIRMWARE))


def parse_unconfirmed_count(answer: bytes) -> int:
    """A4h 42h [M]: documents still without an OFD receipt (2 bytes, or 4 as on Shtrih)."""
    return fn.parse_unconfirmed_count(*_fn(answer, cmd.FN_UNCONFIRMED))


def parse_registration(answer: bytes) -> FnRegistration:
    """A4h 43h [M]: the prefix always, the tail where this FN generation sends it."""
    return fn.parse_registration(*_fn(answer, cmd.FN_REGISTRATION))


def parse_fn_resource(answer: bytes) -> FnResource:
    """A4h 3Dh [L, FN-M only]: documents left, 30-day storage left."""
    return fn.parse_fn_resource(*_fn(answer, cmd.FN_RESOURCE))
