"""Typed records parsed from Shtrih-M answers (shtrih-m.md sections 7-8).

Each ``parse_*`` takes the answer :class:`Frame`, checks the command and error code via
:func:`answer_payload` and returns a frozen record. The FN commands (FFxxh) carry the
fiscal drive's own answers byte for byte: :mod:`kktmon.protocol.fn` reads them into the
records every vendor shares (re-exported here under the names the driver uses). Two
date orders exist (quirk 11.7): classic commands use DD MM YY + HH MM SS, FN commands
YY MM DD [HH MM]. All datetimes are naive register wall-clock time; drivers attach the
zone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from kktmon.protocol import fn
from kktmon.protocol.errors import MalformedAnswerError
from kktmon.protocol.fields import FieldCursor
from kktmon.protocol.shtrih.commands import answer_payload, command_name
from kktmon.protocol.shtrih.frame import Frame

_Fields = FieldCursor

# The fiscal drive's records, shared with every vendor (kktmon.protocol.fn).
FnStatus = fn.FnStatus
FnValidity = fn.FnValidity
FnFirmware = fn.FnFirmware
FnRegistration = fn.FnRegistration
OfdStatus = fn.OfdStatus
ShiftParameters = fn.ShiftParameters
FnResource = fn.FnResource


def _text(raw: bytes, encoding: str = "cp1251") -> str:
    """Text cut at the first NUL (the bytes after it may be junk, example E5)."""
    return raw.split(b"\x00", 1)[0].decode(encoding, errors="replace").strip()


def _classic_datetime(day_month_year: bytes, hour_min_sec: bytes, what: str) -> datetime:
    day, month, year = day_month_year
    hour, minute, second = hour_min_sec
    try:
        return datetime(2000 + year, month, day, hour, minute, second)
    except ValueError as exc:
        raise MalformedAnswerError(f"{what}: impossible date/time {exc}") from exc


# ------------------------------------------------------------------ records


@dataclass(frozen=True)
class DeviceType:
    device_type: int
    subtype: int
    protocol_version: str
    model_number: int
    language: int
    name: str


def parse_device_type(frame: Frame) -> DeviceType:
    f = _Fields(answer_payload(frame, 0xFC), "FCh")
    dtype, subtype, major, minor, model, language = f.take(6)
    return DeviceType(
        dtype, subtype, f"{major}.{minor}", model, language, _text(f.take(len(f.payload) - 6))
    )


@dataclass(frozen=True)
class ModelParameters:
    capabilities: int
    fs_table: int
    ofd_table: int
    ffd_table: int | None
    ffd_field: int | None

    @property
    def fiscal_drive_supported(self) -> bool:
        return bool(self.capabilities >> 43 & 1)


def parse_model_parameters(frame: Frame) -> ModelParameters:
    payload = answer_payload(frame, 0xF7)
    f = _Fields(payload, "F7h 01h")
    capabilities = f.uint(8)
    tables = payload[31:36]  # offsets 32..36 counting the error byte; answers may stop early
    fs_table = tables[0] if len(tables) > 0 and tables[0] else 18
    ofd_table = tables[1] if len(tables) > 1 and tables[1] else 19
    ffd_table = tables[3] if len(tables) > 3 and tables[3] else None
    ffd_field = tables[4] if len(tables) > 4 and tables[4] else None
    return ModelParameters(capabilities, fs_table, ofd_table, ffd_table, ffd_field)


@dataclass(frozen=True)
class RegisterFlags:
    """The 2-byte register flags of 10h/11h (section 7)."""

    raw: int

    @property
    def receipt_roll(self) -> bool:
        return bool(self.raw & 1 << 1)

    @property
    def receipt_paper(self) -> bool:
        return bool(self.raw & 1 << 7)

    @property
    def receipt_lever_lowered(self) -> bool:
        return bool(self.raw & 1 << 9)

    @property
    def cover_open(self) -> bool:
        return bool(self.raw & 1 << 10)


@dataclass(frozen=True)
class ShortStatus:
    operator: int
    flags: RegisterFlags
    mode: int
    submode: int
    operations: int
    battery_raw: int
    supply_raw: int
    key_update_status: int
    last_print_result: int | None

    @property
    def mode_number(self) -> int:
        return self.mode & 0x0F


def parse_short_status(frame: Frame) -> ShortStatus:
    f = _Fields(answer_payload(frame, 0x10), "10h")
    operator, flags = f.uint(1), f.uint(2)
    mode, submode, ops_low, battery, supply = f.take(5)
    f.take(2)  # reserved / key-update error (quirk 11.5: not zero, don't validate)
    ops_high = f.uint(1)
    f.take(2)  # head temperature, previous mode
    key_status = f.uint(1)
    last_print = f.uint(1) if f.has(1) else None
    return ShortStatus(
        operator,
        RegisterFlags(flags),
        mode,
        submode,
        ops_high << 8 | ops_low,
        battery,
        supply,
        key_status,
        last_print,
    )


@dataclass(frozen=True)
class LongStatus:
    operator: int
    firmware: str
    firmware_build: int
    firmware_date: date | None
    document_number: int
    flags: RegisterFlags
    mode: int
    submode: int
    port: int
    device_time: datetime
    serial_low: int
    last_closed_shift: int
    inn: str | None
    serial_high: int | None

    @property
    def mode_number(self) -> int:
        return self.mode & 0x0F


def parse_long_status(frame: Frame) -> LongStatus:
    f = _Fields(answer_payload(frame, 0x11), "11h")
    operator = f.uint(1)
    firmware = ".".join(f.take(2).decode("cp1251", errors="replace"))
    build = f.uint(2)
    day, month, year = f.take(3)
    f.take(1)  # number in hall
    document, flags = f.uint(2), f.uint(2)
    mode, submode, port = f.take(3)
    f.take(7)  # legacy fiscal-memory fields: junk on FN models (quirk 11.5)
    device_time = _classic_datetime(f.take(3), f.take(3), "11h device clock")
    f.take(1)
    serial_low, last_shift = f.uint(4), f.uint(2)
    f.take(4)  # legacy FP records and registration counters
    inn_raw = f.take(6)
    inn = None if inn_raw == b"\xff" * 6 else str(int.from_bytes(inn_raw, "little"))
    serial_high = None
    if f.has(4):
        f.take(2)
        serial_high = f.uint(2)
    return LongStatus(
        operator,
        firmware,
        build,
        _safe_date(year, month, day),
        document,
        RegisterFlags(flags),
        mode,
        submode,
        port,
        device_time,
        serial_low,
        last_shift,
        inn,
        serial_high,
    )


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(2000 + year, month, day)
    except ValueError:
        return None  # firmware date is informational; never fail a poll over it


def parse_table_value(frame: Frame) -> bytes:
    """Raw value of a table field (1Fh); use :func:`table_text` or :func:`table_int`."""
    return answer_payload(frame, 0x1F)


def table_text(raw: bytes) -> str:
    return _text(raw)


def table_int(raw: bytes) -> int:
    return int.from_bytes(raw, "little")


@dataclass(frozen=True)
class TableStructure:
    name: str
    rows: int
    fields: int


def parse_table_structure(frame: Frame) -> TableStructure:
    f = _Fields(answer_payload(frame, 0x2D), "2Dh")
    return TableStructure(_text(f.take(40)), f.uint(2), f.uint(1))


@dataclass(frozen=True)
class FieldStructure:
    name: str
    is_text: bool
    size: int


def parse_field_structure(frame: Frame) -> FieldStructure:
    f = _Fields(answer_payload(frame, 0x2E), "2Eh")
    return FieldStructure(_text(f.take(40)), f.uint(1) == 1, f.uint(1))


# ------------------------------------------------------------------ 15h, 1Ah, 1Bh, 6Bh

#: Speed codes of 14h/15h (shtrih-m.md section 1); 7-9 only on some models.
BAUD_RATES = {
    0: 2400,
    1: 4800,
    2: 9600,
    3: 19200,
    4: 38400,
    5: 57600,
    6: 115200,
    7: 230400,
    8: 460800,
    9: 921600,
}


def byte_timeout_ms(code: int) -> int:
    """The byte timeout a 15h code stands for: 0-150 ms in 1 ms steps, then 150 ms
    steps up to 15 s (151-249), then 15 s steps (250-255), as the vendor encodes it."""
    if code <= 150:
        return code
    if code <= 249:
        return (code - 149) * 150
    return (code - 248) * 15_000


@dataclass(frozen=True)
class ExchangeParameters:
    baud_code: int
    baud: int | None  # None: a code this table does not know
    byte_timeout_ms: int


def parse_exchange_parameters(frame: Frame) -> ExchangeParameters:
    f = _Fields(answer_payload(frame, 0x15), "15h")
    baud_code, timeout = f.take(2)
    return ExchangeParameters(baud_code, BAUD_RATES.get(baud_code), byte_timeout_ms(timeout))


@dataclass(frozen=True)
class RegisterValue:
    """A money (1Ah, kopecks) or operating (1Bh, a count) register and who asked."""

    operator: int
    value: int


def parse_money_register(frame: Frame) -> RegisterValue:
    f = _Fields(answer_payload(frame, 0x1A), "1Ah")
    return RegisterValue(f.uint(1), f.uint(6))


def parse_operating_register(frame: Frame) -> RegisterValue:
    f = _Fields(answer_payload(frame, 0x1B), "1Bh")
    return RegisterValue(f.uint(1), f.uint(2))


def parse_error_text(frame: Frame) -> str:
    """6Bh: the register's text for an error code (Windows-1251, cut at a NUL)."""
    return _text(answer_payload(frame, 0x6B))


# ------------------------------------------------------------------ FN (FFxxh) answers


def _fn(frame: Frame, code: int) -> tuple[bytes, str]:
    """The drive's own answer inside an FFxxh frame, and the command's name for errors."""
    return answer_payload(frame, code), command_name(code)


def parse_fn_status(frame: Frame) -> FnStatus:
    return fn.parse_fn_status(*_fn(frame, 0xFF01))


def parse_fn_serial(frame: Frame) -> str:
    return fn.parse_fn_serial(*_fn(frame, 0xFF02))


def parse_fn_validity(frame: Frame) -> FnValidity:
    return fn.parse_fn_validity(*_fn(frame, 0xFF03))


def parse_fn_firmware(frame: Frame) -> FnFirmware:
    return fn.parse_fn_firmware(*_fn(frame, 0xFF04))


def parse_registration(frame: Frame) -> FnRegistration:
    return fn.parse_registration(*_fn(frame, 0xFF09))


def parse_ofd_status(frame: Frame) -> OfdStatus:
    return fn.parse_ofd_status(*_fn(frame, 0xFF39))


def parse_unconfirmed_count(frame: Frame) -> int:
    return fn.parse_unconfirmed_count(*_fn(frame, 0xFF3F))


def parse_shift_parameters(frame: Frame) -> ShiftParameters:
    return fn.parse_shift_parameters(*_fn(frame, 0xFF40))


def parse_fn_resource(frame: Frame) -> FnResource:
    return fn.parse_fn_resource(*_fn(frame, 0xFF63))


# FN archive document types (FF0Ah): not the same codes as FF01h's "current document".
DOC_SHIFT_OPEN = 2
DOC_SHIFT_CLOSE = 5


@dataclass(frozen=True)
class ArchiveDocument:
    doc_type: int
    ofd_receipt_received: bool
    at: datetime | None
    number: int
    shift_number: int | None


def parse_archive_document(frame: Frame) -> ArchiveDocument:
    f = _Fields(answer_payload(frame, 0xFF0A), "FF0Ah")
    doc_type, receipt = f.take(2)
    at = fn.fn_datetime(f.take(5), "FF0Ah document")
    number = f.uint(4)
    f.take(4)  # fiscal sign
    shift = f.uint(2) if doc_type in (DOC_SHIFT_OPEN, DOC_SHIFT_CLOSE) and f.has(2) else None
    return ArchiveDocument(doc_type, bool(receipt), at, number, shift)
